/**
 * Clients generated from openapi.yaml as frontend teams generate them: @hey-api/openapi-ts
 * (its fetch client and SDK) and orval (fetch, with the Streaming tag left out as the
 * README says, and zod). Both generators need Node >= 22.18, so they run on such a Node
 * (this one, or one fetched with `npx node@24`, as .ci/run does for its other majors);
 * their output is type-checked with tsc --strict and runs test/clients/generated/flow.ts
 * against a live server: an emoji title of 500 characters, a list, a conditional PATCH, a
 * typed 412 and 404, one change-stream page through hey-api's SSE client.
 */
import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import t from 'tap';
import { SPEC_PATH } from '../../src/contract/spec.ts';
import { build, token } from '../helper.ts';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
// Exact versions: a generator's new release is taken on purpose.
const GENERATORS = { '@hey-api/openapi-ts': '0.99.0', orval: '8.38.0', zod: '4.6.7', typescript: '5.9.3' };

/** A Node the generators run on: this one if it is recent enough, else Node 24 from the npm registry. */
async function generatorNode(dir: string): Promise<string | undefined> {
  const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
  if (major > 22 || (major === 22 && minor >= 18)) return process.execPath;
  const probe = join(dir, 'probe.cjs');
  await writeFile(probe, 'console.log(process.execPath)');
  try {
    const { stdout } = await run('npx', ['-y', 'node@24', probe], { timeout: 180_000 });
    return stdout.trim().split('\n').at(-1);
  } catch {
    return undefined;
  }
}

t.test('hey-api and orval clients generated from the contract type-check and work against the server', async (t) => {
  t.setTimeout(600_000);
  const dir = await mkdtemp(join(tmpdir(), 'todo-api-generated-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const node = await generatorNode(dir);
  if (node === undefined) {
    t.fail('no Node >= 22.18 for the generators (npx node@24 failed: is the npm registry reachable?)');
    return;
  }
  // npm and the generators' bins start with `#!/usr/bin/env node`: that Node first on PATH.
  const env = { ...process.env, PATH: `${dirname(node)}${delimiter}${process.env.PATH ?? ''}`, npm_config_update_notifier: 'false' };
  await writeFile(join(dir, 'package.json'), JSON.stringify({ name: 'generated', private: true, type: 'module', dependencies: GENERATORS }));
  await run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: dir, env, timeout: 300_000 });

  const { app } = await build(t);
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  const baseUrl = `http://127.0.0.1:${address.port}`;

  await writeFile(
    join(dir, 'openapi-ts.config.mjs'),
    `export default { input: ${JSON.stringify(SPEC_PATH)}, output: 'hey', plugins: ['@hey-api/client-fetch', '@hey-api/typescript', '@hey-api/sdk'] };\n`,
  );
  await writeFile(
    join(dir, 'orval.config.mjs'),
    `export default {
  fetch: { input: { target: ${JSON.stringify(SPEC_PATH)}, filters: { mode: 'exclude', tags: ['Streaming'] } }, output: { target: 'orval/fetch.ts', client: 'fetch', baseUrl: ${JSON.stringify(baseUrl)} } },
  zod: { input: { target: ${JSON.stringify(SPEC_PATH)} }, output: { target: 'orval/zod.ts', client: 'zod' } },
};\n`,
  );
  await run(node, [join(dir, 'node_modules/.bin/openapi-ts'), '-f', 'openapi-ts.config.mjs'], { cwd: dir, env, timeout: 120_000 });
  await run(node, [join(dir, 'node_modules/.bin/orval'), '--config', 'orval.config.mjs'], { cwd: dir, env, timeout: 120_000 });
  t.notMatch(await readFile(join(dir, 'orval/fetch.ts'), 'utf8'), /streamChanges/, 'orval left the never-ending stream out (the Streaming tag)');

  await copyFile(join(ROOT, 'test/clients/generated/flow.ts'), join(dir, 'flow.ts'));
  await writeFile(
    join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'es2022',
        module: 'esnext',
        moduleResolution: 'bundler',
        strict: true,
        noEmit: true,
        skipLibCheck: true,
        lib: ['es2022', 'dom', 'dom.iterable'],
        types: ['node'],
        typeRoots: [join(ROOT, 'node_modules/@types')],
      },
      include: ['hey', 'orval', 'flow.ts'],
    }),
  );
  const tsc = await run(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', dir]).then(
    () => '',
    (err: { stdout?: string }) => err.stdout ?? String(err),
  );
  t.equal(tsc, '', 'the generated clients and the flow type-check with tsc --strict');

  const { stdout } = await run(process.execPath, ['--import', import.meta.resolve('tsx'), join(dir, 'flow.ts'), baseUrl, token('alice')], { cwd: dir, timeout: 60_000 });
  const result = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as { ok?: boolean; next_since?: string };
  t.equal(result.ok, true, 'the flow ran: 500 emoji, list, conditional PATCH, typed 412 and 404, an SSE page, orval fetch and zod');
  t.match(result.next_since, /^[\w-]+$/, 'the SSE page carried its next_since');
  app.server.closeAllConnections();
});
