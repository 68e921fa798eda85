/**
 * Fails when a committed copy of the generated types (the server's and the client
 * package's) is not what `npm run generate` makes of openapi.yaml now (someone
 * changed the contract and did not regenerate).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const committed = ['src/generated/openapi.ts', 'clients/typescript/src/generated/openapi.ts'];
const dir = mkdtempSync(join(tmpdir(), 'todo-api-types-'));
try {
  const fresh = join(dir, 'openapi.ts');
  execFileSync(join('node_modules', '.bin', 'openapi-typescript'), ['openapi.yaml', '-o', fresh], { stdio: 'pipe' });
  const expected = readFileSync(fresh, 'utf8');
  const stale = committed.filter((file) => {
    try {
      return readFileSync(file, 'utf8') !== expected;
    } catch {
      return true;
    }
  });
  for (const file of stale) console.error(`${file} is stale: run \`npm run generate\` and commit the result.`);
  if (stale.length > 0) process.exit(1);
  console.log(`${committed.join(' and ')} match openapi.yaml`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
