/**
 * The real process entry, `node --import tsx src/server.ts`: it refuses a bad
 * configuration with one line on stderr, serves over real HTTP, logs JSON
 * without tokens, shuts down cleanly on SIGTERM, and in embedded mode leaves no
 * PostgreSQL behind and finds its data again on the next start.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import postgres from 'postgres';
import t from 'tap';
import { freePort, runningPostmaster, startEmbeddedPostgres } from '../src/dev/embedded.ts';
import { migrate } from '../src/db/migrate.ts';
import { createSql } from '../src/db/client.ts';
import { freshSchema, token, type Test } from './helper.ts';
import { SECRET_KEY, call, sleep, startServer, tempDataDir as tempDir, waitForHealth } from './process/server-process.ts';

/** Nothing listens here: if a bad configuration were accepted, the start fails fast instead of touching a real database. */
const NOWHERE = 'postgres://nobody:nothing@127.0.0.1:1/none';

/** Every non-empty stdout line, parsed; a line that is not JSON fails the test. */
function logLines(t: Test, stdout: string): Array<Record<string, unknown>> {
  const lines = stdout.split('\n').filter((l) => l.trim() !== '');
  const parsed: Array<Record<string, unknown>> = [];
  const notJson: string[] = [];
  for (const line of lines) {
    try {
      parsed.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      notJson.push(line);
    }
  }
  t.same(notJson, [], 'every stdout line is JSON');
  t.ok(
    parsed.every((l) => typeof l.level === 'number' && typeof l.time === 'number' && typeof l.msg === 'string'),
    'every line is a pino record (level, time, msg)',
  );
  return parsed;
}

// The cases are separate processes on separate databases: run them side by side.
t.jobs = 4;

/** Refusals to start: exit code 1, one line on stderr naming the variable, no stack trace. */
t.test('a bad configuration is refused with one line on stderr', async (t) => {
  const dataDir = await tempDir(t, 'todo-api-server-config-');
  const cases: Array<[string, Record<string, string>, string]> = [
    ['a SECRET_KEY of 10 characters', { SECRET_KEY: 'x'.repeat(10) }, 'SECRET_KEY'],
    ['ENVIRONMENT=production without SECRET_KEY', { ENVIRONMENT: 'production' }, 'SECRET_KEY'],
    ['LOG_LEVEL=loud', { SECRET_KEY, LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
  ];
  // All three at once: each is a separate process.
  await Promise.all(
    cases.map(async ([name, env, variable]) => {
      const server = startServer(t, { DATABASE_URL: NOWHERE, DATA_DIR: dataDir, PORT: '0', ...env });
      // A generous bound against a hang (the machine may be busy), not a timing assertion.
      const exit = await server.exitWithin(30_000);
      t.same(exit, { code: 1, signal: null }, `${name}: exits with code 1`);
      const lines = server.stderr().split('\n').filter((l) => l !== '');
      t.equal(lines.length, 1, `${name}: exactly one line on stderr: ${JSON.stringify(server.stderr())}`);
      t.match(lines[0] ?? '', variable, `${name}: the line names ${variable}`);
      t.notOk(server.stderr().includes('    at '), `${name}: no stack trace`);
      t.equal(server.stdout(), '', `${name}: nothing on stdout`);
    }),
  );
});

t.test('with DATABASE_URL: serves over HTTP, logs JSON without tokens, exits 0 on SIGTERM', async (t) => {
  const { url } = await freshSchema(t);
  const dataDir = await tempDir(t, 'todo-api-server-url-');
  const port = await freePort();
  const server = startServer(t, {
    DATABASE_URL: url,
    DATA_DIR: dataDir,
    SECRET_KEY,
    PORT: String(port),
    HOST: '127.0.0.1',
  });
  await waitForHealth(server, port, 40_000);

  const alice = token('alice', { secret: SECRET_KEY });
  const created = await call(port, 'POST', '/api/tasks', alice, { title: 'over real HTTP' });
  t.equal(created.status, 201, 'a task is created');
  const list = await call(port, 'GET', '/api/tasks', alice);
  t.equal(list.status, 200);
  t.same(
    list.json().items.map((x: { title: string }) => x.title),
    ['over real HTTP'],
  );
  const forged = token('alice', { secret: 'another-secret-that-is-also-32-characters-long' });
  t.equal((await call(port, 'GET', '/api/tasks', forged)).status, 401, 'a token signed with another secret is refused');

  // The server gives itself 10 s (close-with-grace) and exits 1 when that runs out, so code 0
  // means it shut down in time; the wait here is only a bound against a hang.
  server.child.kill('SIGTERM');
  const exit = await server.exitWithin(20_000);
  t.same(exit, { code: 0, signal: null }, 'SIGTERM: exits with code 0');

  const records = logLines(t, server.stdout());
  t.ok(
    records.some((r) => r.msg === 'shutting down'),
    'logged "shutting down"',
  );
  t.ok(
    records.some((r) => r.msg === 'request completed' && r.operationId === 'createTask' && typeof r.taskId === 'string'),
    'logged the creation with its task id (the log is really being read)',
  );
  t.notOk(server.stdout().includes(alice), 'the token never reaches the log');
  t.notOk(server.stdout().includes(forged), 'nor does a refused token');
  t.notOk(server.stdout().includes(SECRET_KEY), 'nor the secret');
  t.equal(server.stderr(), '', 'nothing on stderr');
});

t.test('embedded PostgreSQL: stopped on SIGTERM, and the data is there on the next start', async (t) => {
  const dataDir = await tempDir(t, 'todo-api-server-embedded-');
  const env = (port: number) => ({ DATA_DIR: dataDir, PORT: String(port), HOST: '127.0.0.1' });

  // First run: no SECRET_KEY, so the server makes a development secret in DATA_DIR.
  const port1 = await freePort();
  const first = startServer(t, env(port1));
  await waitForHealth(first, port1, 60_000);
  const secretFile = join(dataDir, 'dev-secret');
  t.ok(existsSync(secretFile), 'the development secret is written to DATA_DIR/dev-secret');
  const bearer = token('alice', { secret: existsSync(secretFile) ? readFileSync(secretFile, 'utf8').trim() : SECRET_KEY });
  const created = await call(port1, 'POST', '/api/tasks', bearer, { title: 'kept across restarts' });
  t.equal(created.status, 201, 'a task is created with a token signed by the development secret');

  first.child.kill('SIGTERM');
  t.same(await first.exitWithin(20_000), { code: 0, signal: null }, 'SIGTERM: exits with code 0');
  t.equal(runningPostmaster(dataDir), undefined, 'no PostgreSQL is left running on the data dir');
  t.notOk(existsSync(join(dataDir, 'postgres', 'postmaster.pid')), 'postmaster.pid is gone (a clean shutdown)');
  t.ok(
    logLines(t, first.stdout()).some((r) => r.msg === 'shutting down'),
    'logged "shutting down"',
  );
  t.equal(first.stderr(), '', 'nothing on stderr');

  // Second run on the same DATA_DIR: same cluster, same development secret.
  const port2 = await freePort();
  const second = startServer(t, env(port2));
  await waitForHealth(second, port2, 40_000);
  const list = await call(port2, 'GET', '/api/tasks', bearer);
  t.equal(list.status, 200, 'the token of the first run is still valid');
  t.same(
    list.json().items?.map((x: { id: string; title: string }) => [x.id, x.title]),
    [[created.json().id, 'kept across restarts']],
    'the task created in the first run is still listed',
  );

  second.child.kill('SIGTERM');
  t.same(await second.exitWithin(20_000), { code: 0, signal: null }, 'the second run exits with code 0 too');
  t.equal(runningPostmaster(dataDir), undefined, 'and leaves no PostgreSQL behind');
  t.equal(second.stderr(), '', 'nothing on stderr');
});

t.test(
  'embedded PostgreSQL: SIGTERM while the server is still starting leaves no PostgreSQL behind',
  async (t) => {
    const dataDir = await tempDir(t, 'todo-api-server-startup-');

    // Prepare the cluster so that the server's migration run will wait: a prepared
    // (two-phase) transaction holds a lock on schema_migrations, and survives restarts.
    let db = await startEmbeddedPostgres({ dataDir });
    const admin = postgres(db.url, { max: 1, onnotice: () => {} });
    await admin`ALTER SYSTEM SET max_prepared_transactions = 2`;
    await admin.end();
    await db.stop();
    db = await startEmbeddedPostgres({ dataDir });
    const setup = createSql(db.url, { max: 1 });
    await migrate(setup);
    await setup.begin(async (tx) => {
      await tx`LOCK TABLE schema_migrations IN ACCESS EXCLUSIVE MODE`;
      await tx.prepare('hold_schema_migrations');
    });
    await setup.end();
    await db.stop();

    const port = await freePort();
    const server = startServer(t, { DATA_DIR: dataDir, SECRET_KEY, PORT: String(port), HOST: '127.0.0.1' });

    // Wait until the server's migration is blocked on that lock: the database is up, the server is not.
    const password = readFileSync(join(dataDir, 'postgres', 'todo-api-password'), 'utf8').trim();
    let waiting = false;
    for (let i = 0; i < 600 && !waiting && server.child.exitCode === null; i++) {
      await sleep(100);
      const pidFile = join(dataDir, 'postgres', 'postmaster.pid');
      const pgPort = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8').split('\n')[3]) : NaN;
      if (!Number.isInteger(pgPort)) continue;
      const probe = postgres({ host: '127.0.0.1', port: pgPort, user: 'postgres', password, database: 'postgres', max: 1, connect_timeout: 2, onnotice: () => {} });
      try {
        const [row] = await probe<{ n: number }[]>`
          SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'todo-api' AND wait_event_type = 'Lock'`;
        waiting = (row?.n ?? 0) > 0;
      } catch {
        // Still starting.
      } finally {
        await probe.end({ timeout: 1 });
      }
    }
    t.ok(waiting, `the server's migration waits on the lock (stderr: ${server.stderr()})`);
    t.not(runningPostmaster(dataDir), undefined, 'its embedded PostgreSQL is running');

    server.child.kill('SIGTERM');
    const exit = await server.exitWithin(20_000);
    t.not(exit, undefined, 'the server exits');
    // Give a clean shutdown of PostgreSQL its moment.
    for (let i = 0; i < 50 && runningPostmaster(dataDir) !== undefined; i++) await sleep(100);
    t.equal(runningPostmaster(dataDir), undefined, 'no PostgreSQL is left running on the data dir');
  },
);

t.test('freePort gives a port below the ephemeral ranges (where outgoing connections go), free to listen on', async (t) => {
  const ports = await Promise.all(Array.from({ length: 5 }, () => freePort()));
  for (const port of ports) {
    t.ok(port >= 20_000 && port < 32_000, `${port} is below 32768`);
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port, host: '127.0.0.1' }, resolve);
    });
    t.pass(`listened on ${port}`);
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});
