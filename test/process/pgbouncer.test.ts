/**
 * Behind a real PgBouncer in transaction mode (Neon's pooled endpoint, Supabase):
 * two server processes started at the same moment on an empty database, the core
 * flow served across both, and migrations over DATABASE_URL_UNPOOLED. Skipped,
 * with the reason, where Debian's `pgbouncer` is not installed (.ci/run installs it).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { userInfo } from 'node:os';
import postgres from 'postgres';
import t from 'tap';
import { freePort, makeTemporaryDataDir } from '../../src/dev/embedded.ts';
import { databaseUrl, token, type Test } from '../helper.ts';
import { ROOT, SECRET_KEY, call, logRecords, sleep, startServer, waitForHealth } from './server-process.ts';

const installed = spawnSync('pgbouncer', ['--version']).status === 0;

/** A fresh database on the test cluster (dropped at teardown), and PgBouncer in front of the cluster. */
async function pooled(t: Test): Promise<{ direct: string; viaPgBouncer: string }> {
  const admin = postgres(databaseUrl(), { max: 1, onnotice: () => {} });
  const name = `pgb_${randomBytes(5).toString('hex')}`;
  await admin.unsafe(`CREATE DATABASE ${name}`);
  t.teardown(async () => {
    await admin.unsafe(`DROP DATABASE ${name} WITH (FORCE)`);
    await admin.end();
  });
  const server = new URL(databaseUrl());
  const direct = new URL(databaseUrl());
  direct.pathname = `/${name}`;
  direct.search = '';

  const dir = await makeTemporaryDataDir('todo-api-pgbouncer-');
  const port = await freePort();
  const ini = join(dir, 'pgbouncer.ini');
  writeFileSync(join(dir, 'users.txt'), `"${decodeURIComponent(server.username)}" ""\n`);
  writeFileSync(
    ini,
    [
      '[databases]',
      `* = host=${server.hostname} port=${server.port} user=${decodeURIComponent(server.username)} password=${decodeURIComponent(server.password)}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'auth_type = trust',
      `auth_file = ${join(dir, 'users.txt')}`,
      'pool_mode = transaction',
      'default_pool_size = 20',
      'max_client_conn = 500',
      `logfile = ${join(dir, 'pgbouncer.log')}`,
      `pidfile = ${join(dir, 'pgbouncer.pid')}`,
      '',
    ].join('\n'),
  );
  // PgBouncer refuses to run as root: then it runs as the OS user "postgres".
  const asRoot = userInfo().uid === 0;
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    for (const f of [dir, ini, join(dir, 'users.txt')]) chownSync(f, uid, gid);
    execFileSync('runuser', ['-u', 'postgres', '--', 'pgbouncer', '-d', ini]);
  } else {
    execFileSync('pgbouncer', ['-d', ini]);
  }
  t.teardown(async () => {
    const pid = Number(readFileSync(join(dir, 'pgbouncer.pid'), 'utf8'));
    process.kill(pid, 'SIGTERM');
    for (let i = 0; i < 50; i++) {
      try {
        process.kill(pid, 0);
        await sleep(100);
      } catch {
        break;
      }
    }
    execFileSync('rm', ['-rf', dir]);
  });
  const via = new URL(direct.toString());
  via.hostname = '127.0.0.1';
  via.port = String(port);
  via.searchParams.set('prepare', 'false');
  return { direct: direct.toString(), viaPgBouncer: via.toString() };
}

t.test('through PgBouncer 1.18 in transaction mode', { skip: installed ? false : 'pgbouncer is not installed (apt-get install pgbouncer)' }, async (t) => {
  const { direct, viaPgBouncer } = await pooled(t);

  // Two instances at the same moment on an empty database: both migrate through the pooler.
  const ports = [await freePort(), await freePort()];
  const servers = ports.map((port) => startServer(t, { DATABASE_URL: viaPgBouncer, SECRET_KEY, PORT: String(port), HOST: '127.0.0.1' }));
  await Promise.all(servers.map((server, i) => waitForHealth(server, ports[i] ?? 0, 60_000)));
  const check = postgres(direct, { max: 1, onnotice: () => {} });
  t.teardown(() => check.end({ timeout: 5 }));
  const versions = await check<{ version: number }[]>`SELECT version FROM schema_migrations ORDER BY version`;
  t.same(
    versions.map((v) => v.version),
    [...new Set(versions.map((v) => v.version))],
    'concurrent first starts applied each migration once',
  );
  t.ok(versions.length > 0, 'and the schema is there');

  // The core flow, alternating between the two instances.
  const [a = 0, b = 0] = ports;
  const alice = token('alice', { secret: SECRET_KEY });
  const bob = token('bob', { secret: SECRET_KEY });
  const created = await call(a, 'POST', '/api/tasks', alice, { title: 'through the pooler' });
  t.equal(created.status, 201, 'create on instance A');
  const id = created.json().id as string;
  t.equal((await call(b, 'GET', `/api/tasks/${id}`, alice)).status, 200, 'read on instance B');
  t.equal((await call(b, 'GET', `/api/tasks/${id}`, bob)).status, 403, "another user is refused on B");
  const patched = await call(b, 'PATCH', `/api/tasks/${id}`, alice, { status: 'completed' });
  t.equal(patched.json().status, 'completed', 'update on B');
  t.equal((await call(a, 'PUT', `/api/tasks/${id}`, alice, { title: 'renamed' })).status, 200, 'replace on A');
  const bursts = await Promise.all(
    Array.from({ length: 40 }, (_, i) => call(i % 2 ? a : b, 'POST', '/api/tasks', alice, { title: `burst ${i}` })),
  );
  t.same([...new Set(bursts.map((r) => r.status))], [201], '40 concurrent creates across both: all 201');
  const seen: string[] = [];
  for (let cursor: string | null = null, i = 0; i < 10; i++) {
    const page = await call(i % 2 ? a : b, 'GET', `/api/tasks?limit=15${cursor ? `&cursor=${cursor}` : ''}`, alice);
    seen.push(...page.json().items.map((x: { id: string }) => x.id));
    cursor = page.json().next_cursor;
    if (cursor === null) break;
  }
  t.equal(new Set(seen).size, 41, 'paging across both instances lists every task once');
  t.equal((await call(a, 'DELETE', `/api/tasks/${id}`, alice)).status, 204, 'delete on A');
  t.equal((await call(b, 'GET', `/api/tasks/${id}`, alice)).status, 404, 'gone on B');

  for (const server of servers) server.child.kill('SIGTERM');
  for (const server of servers) t.same(await server.exitWithin(20_000), { code: 0, signal: null }, 'exits 0 on SIGTERM');
  t.notOk(servers.some((s) => /prepared statement/i.test(s.stdout() + s.stderr())), 'no prepared-statement errors');

  // With DATABASE_URL_UNPOOLED, migrations take the direct connection.
  const port = await freePort();
  const third = startServer(t, { DATABASE_URL: viaPgBouncer, DATABASE_URL_UNPOOLED: direct, SECRET_KEY, PORT: String(port), HOST: '127.0.0.1' });
  await waitForHealth(third, port, 60_000);
  t.equal((await call(port, 'GET', '/api/tasks', alice)).status, 200, 'serves through the pooler');
  third.child.kill('SIGTERM');
  t.same(await third.exitWithin(20_000), { code: 0, signal: null }, 'exits 0');
  t.same(logRecords(third.stdout()).filter((r) => r.msg === 'migrations applied'), [], 'nothing left to migrate');
});

/** Two empty schemas on the test server, and which of them holds schema_migrations. */
async function twoEmptySchemas(t: Test) {
  const admin = postgres(databaseUrl(), { max: 1, onnotice: () => {} });
  const pooledSchema = `pooled_${randomBytes(5).toString('hex')}`;
  const directSchema = `direct_${randomBytes(5).toString('hex')}`;
  await admin.unsafe(`CREATE SCHEMA ${pooledSchema}; CREATE SCHEMA ${directSchema}`);
  t.teardown(async () => {
    await admin.unsafe(`DROP SCHEMA ${pooledSchema} CASCADE; DROP SCHEMA ${directSchema} CASCADE`);
    await admin.end();
  });
  const inSchema = (schema: string) => {
    const u = new URL(databaseUrl());
    u.searchParams.set('search_path', schema);
    return u.toString();
  };
  const migrated = async () =>
    (
      await admin<{ schema: string }[]>`
        SELECT table_schema AS schema FROM information_schema.tables
        WHERE table_name = 'schema_migrations' AND table_schema IN (${pooledSchema}, ${directSchema})`
    ).map((r) => (r.schema === directSchema ? 'unpooled' : 'pooled'));
  return { pooled: inSchema(pooledSchema), direct: inSchema(directSchema), migrated };
}

t.test('the server migrates over DATABASE_URL_UNPOOLED when it is set', async (t) => {
  const { pooled, direct, migrated } = await twoEmptySchemas(t);
  const port = await freePort();
  const server = startServer(t, { DATABASE_URL: pooled, DATABASE_URL_UNPOOLED: direct, SECRET_KEY, PORT: String(port), HOST: '127.0.0.1' });
  await waitForHealth(server, port, 60_000);
  t.same(await migrated(), ['unpooled'], 'the schema was created over DATABASE_URL_UNPOOLED only');
  server.child.kill('SIGTERM');
  t.same(await server.exitWithin(20_000), { code: 0, signal: null }, 'exits 0');
});

t.test('npm run migrate uses DATABASE_URL_UNPOOLED when it is set', async (t) => {
  const { pooled, direct, migrated } = await twoEmptySchemas(t);
  const result = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/migrate.ts'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', DATABASE_URL: pooled, DATABASE_URL_UNPOOLED: direct },
    encoding: 'utf8',
  });
  t.equal(result.status, 0, `exits 0: ${result.stderr}`);
  t.match(result.stdout, /^applied: /, 'reports what it applied');
  t.same(await migrated(), ['unpooled'], 'the schema was created over DATABASE_URL_UNPOOLED only');
});
