/**
 * `npm run spec:bundle` makes one self-contained file that generators accept:
 * openapi-typescript turns it into exactly the committed types.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { parse } from 'yaml';

const bin = (name: string) => join('node_modules', '.bin', name);

t.test('the bundled spec is the contract, and generates the committed types', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'todo-api-bundle-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const bundle = join(dir, 'openapi.bundle.yaml');
  execFileSync(bin('redocly'), ['bundle', 'openapi.yaml', '-o', bundle], { stdio: 'pipe' });

  const text = readFileSync(bundle, 'utf8');
  t.notMatch(text, /\$ref: '?\.\//, 'no reference to another file');
  t.same(parse(text), parse(readFileSync('openapi.yaml', 'utf8')), 'same document');

  const types = join(dir, 'types.ts');
  execFileSync(bin('openapi-typescript'), [bundle, '-o', types], { stdio: 'pipe' });
  t.equal(readFileSync(types, 'utf8'), readFileSync('src/generated/openapi.ts', 'utf8'));
});
