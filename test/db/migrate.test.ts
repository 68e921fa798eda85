/**
 * The migration runner against a real PostgreSQL: once only, safe when two
 * instances start at the same moment, all or nothing, strict about file names;
 * and the schema it builds has the indexes the list query relies on.
 */
import { randomBytes } from 'node:crypto';
import { chmod, copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import t from 'tap';
import { createSql, type Sql } from '../../src/db/client.ts';
import { listMigrations, migrate, MIGRATIONS_DIR } from '../../src/db/migrate.ts';
import { databaseUrl, urlWithSchema, type Test } from '../helper.ts';

interface Schema {
  name: string;
  url: string;
  /** A pool of its own on the schema, ended at teardown. */
  sql: Sql;
  tables(): Promise<string[]>;
  migrations(): Promise<Array<{ version: number; name: string }>>;
}

/** An empty schema of its own (nothing migrated), dropped at teardown. */
async function emptySchema(t: Test): Promise<Schema> {
  const name = `test_${randomBytes(6).toString('hex')}`;
  const admin = postgres(databaseUrl(), { max: 1, onnotice: () => {} });
  await admin.unsafe(`CREATE SCHEMA ${name}`);
  const url = urlWithSchema(databaseUrl(), name);
  const sql = createSql(url, { max: 2 });
  t.teardown(async () => {
    await sql.end();
    await admin.unsafe(`DROP SCHEMA ${name} CASCADE`);
    await admin.end();
  });
  return {
    name,
    url,
    sql,
    tables: async () =>
      (await admin<{ tablename: string }[]>`SELECT tablename FROM pg_tables WHERE schemaname = ${name} ORDER BY tablename`).map(
        (r) => r.tablename,
      ),
    migrations: async () => [
      ...(await admin<{ version: number; name: string }[]>`
        SELECT version, name FROM ${admin(name)}.schema_migrations ORDER BY version`),
    ],
  };
}

/** A temporary migrations directory holding the real 0001 and the given files (the other real ones are left out). */
async function migrationsDir(t: Test, files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'todo-api-migrations-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await chmod(dir, 0o755);
  await copyFile(join(MIGRATIONS_DIR, '0001_init.sql'), join(dir, '0001_init.sql'));
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
  return dir;
}

/** What the real migrations create. */
const REAL_TABLES = ['idempotency_keys', 'retired_task_ids', 'schema_migrations', 'task_tombstones', 'tasks', 'users'];

t.test('the real migrations are well named and start at 0001', async (t) => {
  const migrations = await listMigrations();
  t.ok(migrations.length >= 1, 'there is at least one migration');
  t.same(
    migrations.map((m) => m.version),
    migrations.map((_, i) => i + 1),
    'versions are 1, 2, 3, ... with no gap',
  );
  t.equal(migrations[0]?.name, '0001_init.sql');
});

t.test('migrate applies 0001 once; a second run applies nothing', async (t) => {
  const schema = await emptySchema(t);
  const all = (await listMigrations()).map((m) => m.name);

  t.same(await schema.tables(), [], 'the schema starts empty');
  t.same(await migrate(schema.sql), all, 'the first run applies every migration');
  t.same(await schema.tables(), REAL_TABLES);
  t.same(await migrate(schema.sql), [], 'the second run applies nothing');
  t.same(
    (await schema.migrations()).map((m) => m.name),
    all,
    'each migration is recorded once',
  );
});

t.test('two instances migrating at the same moment: both succeed, 0001 is applied once', async (t) => {
  const schema = await emptySchema(t);
  const a = createSql(schema.url, { max: 1 });
  const b = createSql(schema.url, { max: 1 });
  t.teardown(async () => {
    await a.end();
    await b.end();
  });
  // Connected first, so that both transactions really start together.
  await Promise.all([a`SELECT 1`, b`SELECT 1`]);

  const results = await Promise.allSettled([migrate(a), migrate(b)]);
  t.same(
    results.map((r) => r.status),
    ['fulfilled', 'fulfilled'],
    `both runs succeed ${JSON.stringify(results.map((r) => (r.status === 'rejected' ? String(r.reason) : 'ok')))}`,
  );
  const applied = results.map((r) => (r.status === 'fulfilled' ? r.value : ['(failed)']));
  const all = (await listMigrations()).map((m) => m.name);
  t.same(
    applied.sort((x, y) => x.length - y.length),
    [[], all],
    'one run applies everything, the other finds nothing to do',
  );
  const versions = (await schema.migrations()).map((m) => m.version);
  t.equal(versions.filter((v) => v === 1).length, 1, 'schema_migrations records 0001 exactly once');
});

t.test('a failing migration rejects and leaves nothing of itself behind', async (t) => {
  const schema = await emptySchema(t);
  await migrate(schema.sql);
  const dir = await migrationsDir(t, {
    '0099_broken.sql': 'CREATE TABLE ok_table (x int);\nSELECT * FROM nonexistent;\n',
  });

  await t.rejects(migrate(schema.sql, dir), { code: '42P01' }, 'the run fails with the SQL error (undefined table)');
  t.same(await schema.tables(), REAL_TABLES, 'ok_table, created earlier in 0099, was rolled back');
  t.same(
    (await schema.migrations()).map((m) => m.version),
    (await listMigrations()).map((m) => m.version),
    'schema_migrations lists the real migrations, not 0099',
  );

  // The pool is still usable, and the good migrations are still in place.
  const [row] = await schema.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM tasks`;
  t.equal(row?.n, 0, 'the pool still works after the failed run');
});

t.test('pending migrations are applied all or nothing', async (t) => {
  const schema = await emptySchema(t);
  const dir = await migrationsDir(t, {
    '0002_broken.sql': 'CREATE TABLE ok_table (x int);\nSELECT * FROM nonexistent;\n',
  });
  await t.rejects(migrate(schema.sql, dir), { code: '42P01' });
  t.same(await schema.tables(), [], 'not even 0001 (applied in the same run) is left behind');

  // With 0002 fixed, the next run applies both.
  await writeFile(join(dir, '0002_broken.sql'), 'CREATE TABLE ok_table (x int);\n');
  t.same(await migrate(schema.sql, dir), ['0001_init.sql', '0002_broken.sql']);
  t.same(await schema.tables(), ['ok_table', 'schema_migrations', 'tasks', 'users']);
});

t.test('a misnamed migration file is an error, not skipped', async (t) => {
  const schema = await emptySchema(t);
  const dir = await migrationsDir(t, { '2_bad.sql': 'CREATE TABLE never (x int);\n' });
  await t.rejects(listMigrations(dir), { message: /0001_name\.sql: 2_bad\.sql/ }, 'listMigrations names the file');
  await t.rejects(migrate(schema.sql, dir), { message: /2_bad\.sql/ }, 'migrate refuses to run');
  t.same(await schema.tables(), [], 'nothing was applied, not even 0001');

  const other = await migrationsDir(t, { '0002_Upper_Case.sql': 'SELECT 1;\n' });
  await t.rejects(listMigrations(other), { message: /0002_Upper_Case\.sql/ }, 'upper case is refused too');
});

t.test('the schema has the indexes the list query needs', async (t) => {
  const schema = await emptySchema(t);
  await migrate(schema.sql);

  const indexes = await schema.sql<{ indexname: string; indexdef: string }[]>`
    SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = ${schema.name} AND tablename = 'tasks'`;
  const def = (name: string) => indexes.find((i) => i.indexname === name)?.indexdef ?? '(missing)';
  t.match(def('tasks_user_created_idx'), /\(user_id, created_at, id\)$/);
  t.match(def('tasks_user_status_created_idx'), /\(user_id, status, created_at, id\)$/);

  // A few users with many more tasks than a page, and real statistics: the case
  // the index exists for. (With a handful of rows a bitmap scan and a sort is
  // cheaper, and the planner rightly prefers it.)
  await schema.sql`INSERT INTO users (id) SELECT 'u' || g FROM generate_series(0, 3) AS g`;
  await schema.sql`
    INSERT INTO tasks (user_id, title, status, created_at, position)
    SELECT 'u' || (g % 4), 'task ' || g, CASE WHEN g % 3 = 0 THEN 'completed' ELSE 'pending' END,
           now() - g * interval '1 second', todo_key_for_index(g)
    FROM generate_series(1, 4000) AS g`;
  await schema.sql`ANALYZE tasks`;

  const explain = (query: string) =>
    schema.sql.begin(async (tx) => {
      await tx`SET LOCAL enable_seqscan = off`;
      const rows = await tx.unsafe<Array<{ 'QUERY PLAN': string }>>(`EXPLAIN ${query}`);
      return rows.map((r) => r['QUERY PLAN']).join('\n');
    });

  const all = await explain(`
    SELECT id, user_id, title, status, created_at, updated_at FROM tasks
    WHERE user_id = 'u1' ORDER BY created_at DESC, id DESC LIMIT 51`);
  t.match(all, /Index Scan Backward using tasks_user_created_idx on tasks/, 'the list reads tasks_user_created_idx backwards');
  t.notMatch(all, /Sort/, 'the index gives the order: no sort');

  const pending = await explain(`
    SELECT id, user_id, title, status, created_at, updated_at FROM tasks
    WHERE user_id = 'u1' AND status = 'pending' ORDER BY created_at DESC, id DESC LIMIT 51`);
  t.match(
    pending,
    /Index Scan Backward using tasks_user_status_created_idx on tasks/,
    'the filtered list reads tasks_user_status_created_idx backwards',
  );
  t.notMatch(pending, /Sort/, 'no sort with the status filter either');
});

t.test('0003 on existing tasks: the manual order starts newest first, completed_at is filled, the indexes are those of a fresh schema', async (t) => {
  const indexes = async (schema: Schema) =>
    (
      await schema.sql<{ indexname: string; indexdef: string }[]>`
        SELECT indexname, replace(indexdef, ${schema.name} || '.', '') AS indexdef FROM pg_indexes WHERE schemaname = ${schema.name} ORDER BY indexname`
    ).map((r) => `${r.indexname}: ${r.indexdef}`);
  const fresh = await emptySchema(t);
  await migrate(fresh.sql);
  const upgraded = await emptySchema(t);
  await migrate(upgraded.sql, await migrationsDir(t, { '0002_retries_and_sync.sql': await readFile(join(MIGRATIONS_DIR, '0002_retries_and_sync.sql'), 'utf8') }));
  t.same((await upgraded.migrations()).map((m) => m.version), [1, 2]);

  // Tasks as 0001–0002 stored them: two users, created one second apart, some completed.
  await upgraded.sql`INSERT INTO users (id) VALUES ('ann'), ('bob')`;
  await upgraded.sql`
    INSERT INTO tasks (user_id, title, status, created_at, updated_at)
    SELECT CASE WHEN g % 3 = 0 THEN 'bob' ELSE 'ann' END, 'task ' || g, CASE WHEN g % 4 = 0 THEN 'completed' ELSE 'pending' END,
           timestamptz '2026-01-01' + g * interval '1 second', timestamptz '2026-02-01' + g * interval '1 second'
    FROM generate_series(1, 30) AS g`;
  const before = await indexes(upgraded);
  t.same(await migrate(upgraded.sql), ['0003_task_model.sql']);
  const after = await indexes(upgraded);
  // (0003 replaces idempotency_keys_created_idx by a partial index on purpose.)
  const kept = before.filter((x) => !x.startsWith('idempotency_keys_created_idx:'));
  t.same(kept.filter((x) => !after.includes(x)), [], 'every other index of 0001–0002 is still there, as it was');

  const rows = await upgraded.sql<{ user_id: string; title: string; status: string; position: string; completed_at: string | null; updated_at: string; notes: string; due_date: string | null }[]>`
    SELECT user_id, title, status, position, completed_at, updated_at, notes, due_date FROM tasks ORDER BY user_id, created_at DESC`;
  t.equal(rows.length, 30);
  for (const user of ['ann', 'bob']) {
    const mine = rows.filter((r) => r.user_id === user).map((r) => r.position);
    t.same(mine, [...mine].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)), `${user}: newest first is the manual order`);
    t.equal(new Set(mine).size, mine.length, `${user}: no two positions alike`);
    const [top] = await upgraded.sql<{ top_position: string }[]>`SELECT top_position FROM users WHERE id = ${user}`;
    t.equal(top?.top_position, mine[0], `${user}: top_position is their lowest position`);
  }
  t.ok(rows.every((r) => r.completed_at === (r.status === 'completed' ? r.updated_at : null)), 'completed tasks were completed at their last change; pending ones not');
  t.ok(rows.every((r) => r.notes === '' && r.due_date === null), 'no notes, no due dates');

  t.same(await indexes(upgraded), await indexes(fresh), 'every index of a fresh schema, and no other');
  const constraints = async (schema: Schema) =>
    (
      await schema.sql<{ conname: string; def: string }[]>`
        SELECT conname, pg_get_constraintdef(c.oid) AS def FROM pg_constraint AS c JOIN pg_namespace AS n ON n.oid = c.connamespace
        WHERE n.nspname = ${schema.name} ORDER BY conname`
    ).map((r) => `${r.conname}: ${r.def}`);
  t.same(await constraints(upgraded), await constraints(fresh), 'every constraint of a fresh schema (the primary key included)');
});
