/**
 * `npm run postman:export`: the Portman-generated collection (every operation, with the
 * contract tests and error variations of scripts/postman/portman-config.json) as a file to
 * import into Postman. It carries no token: set the collection variable `bearerToken`
 * (and `otherBearerToken`, a second user's, for the 403 checks) after importing. Run it
 * whole, in order (the Collection Runner): requests pass ids on through variables
 * (`taskId`, `otherTaskId`, and for 1.2.0's moves, client id and filters `clientTaskId`,
 * `ownTaskId`, `neighbourTaskId`), which a request sent on its own lacks.
 *
 *   npm run postman:export [-- --base-url http://localhost:8000 --out dist/todo-api.postman_collection.json]
 */
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { SPEC_PATH } from '../src/contract/spec.ts';
import { generateCollection } from './postman/portman.ts';

const { values } = parseArgs({
  options: {
    'base-url': { type: 'string', default: 'http://localhost:8000' },
    out: { type: 'string', default: 'dist/todo-api.postman_collection.json' },
  },
});
const out = resolve(values.out);
const workDir = await mkdtemp(join(tmpdir(), 'todo-api-postman-export-'));
try {
  const { file, collection } = await generateCollection({ spec: SPEC_PATH, baseUrl: values['base-url'], workDir, timeoutMs: 120_000 });
  await mkdir(dirname(out), { recursive: true });
  await copyFile(file, out);
  const count = (items: typeof collection.item): number => items.reduce((n, i) => n + (i.item ? count(i.item) : 1), 0);
  console.log(`postman:export: ${count(collection.item)} requests for ${values['base-url']} written to ${out}`);
  console.log('In Postman: Import -> this file; then set the collection variable bearerToken (npm run -s token -- --sub alice)');
  console.log('and run the whole collection in order (Collection Runner): later requests use ids the earlier ones set.');
} finally {
  await rm(workDir, { recursive: true, force: true });
}
