/**
 * Fails when src/generated/openapi.ts is not what `npm run generate` makes of
 * openapi.yaml now (someone changed the contract and did not regenerate).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const committed = 'src/generated/openapi.ts';
const dir = mkdtempSync(join(tmpdir(), 'todo-api-types-'));
try {
  const fresh = join(dir, 'openapi.ts');
  execFileSync(join('node_modules', '.bin', 'openapi-typescript'), ['openapi.yaml', '-o', fresh], { stdio: 'pipe' });
  if (readFileSync(fresh, 'utf8') !== readFileSync(committed, 'utf8')) {
    console.error(`${committed} is stale: run \`npm run generate\` and commit the result.`);
    process.exit(1);
  }
  console.log(`${committed} matches openapi.yaml`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
