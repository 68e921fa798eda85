/**
 * How long a migration takes on the bench's large data set, run on demand (not by the test
 * suite): the rows are seeded as the schema before it stored them, then the migration runs
 * as a deploy runs it (src/db/migrate.ts: every pending file in one transaction, holding
 * its locks to the end), on a copy, and again statement by statement on another copy.
 *
 *   node --import tsx bench/migration-time.ts                  the task model (sql/0003 onwards) on 1,100,000 tasks
 *   node --import tsx bench/migration-time.ts --from 3 --users 10000 --per-user 100 --heavy 100000
 *   node --import tsx bench/migration-time.ts --migrations DIR   a variant of sql/ (a candidate change to a migration)
 *
 * Uses DATABASE_URL's server when set (its role needs CREATEDB), else an embedded PostgreSQL.
 * Only the total and the shares mean much: absolute figures move with the machine's load.
 */
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { listMigrations, migrate } from '../src/db/migrate.ts';
import type { Sql } from '../src/db/client.ts';
import { analyze, bulkLoad, Cluster, seedUsers } from './database.ts';

const { values } = parseArgs({
  options: {
    from: { type: 'string', default: '3' },
    users: { type: 'string', default: '10000' },
    'per-user': { type: 'string', default: '100' },
    heavy: { type: 'string', default: '100000' },
    migrations: { type: 'string' },
  },
});
const from = Number(values.from);
const users = Number(values.users);
const perUser = Number(values['per-user']);
const heavy = Number(values.heavy);

const migrations = values.migrations === undefined ? undefined : resolve(values.migrations);
const all = await listMigrations(migrations);
const before = all.filter((m) => m.version < from);
const timed = all.filter((m) => m.version >= from);
if (before.length === 0 || timed.length === 0) {
  console.error(`--from ${from}: no migration before it or none from it (${all.map((m) => m.name).join(', ')})`);
  process.exit(2);
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const load = () => loadavg().map((n) => n.toFixed(1)).join(' ');

/** The statements of a migration file: split at a `;` ending a line, outside dollar-quoted bodies. */
function statements(text: string): string[] {
  const found: string[] = [];
  let current: string[] = [];
  let quoted = false;
  for (const line of text.split('\n')) {
    current.push(line);
    if ((line.match(/\$\$/g)?.length ?? 0) % 2 === 1) quoted = !quoted;
    if (!quoted && /;\s*(--.*)?$/.test(line)) {
      const statement = current.join('\n').trim();
      if (statement.replace(/--.*$/gm, '').trim()) found.push(statement);
      current = [];
    }
  }
  if (current.join('').trim()) found.push(current.join('\n'));
  return found;
}

async function sizes(sql: Sql): Promise<string> {
  const [row] = await sql<{ table: string; indexes: string; count: number }[]>`
    SELECT pg_size_pretty(pg_table_size('tasks')) AS table, pg_size_pretty(pg_indexes_size('tasks')) AS indexes,
      (SELECT count(*) FROM pg_index WHERE indrelid = 'tasks'::regclass)::int AS count`;
  return `tasks ${row?.table}, its ${row?.count} indexes ${row?.indexes}`;
}

const cluster = await Cluster.start(process.env.DATABASE_URL);
const dir = await mkdtemp(join(tmpdir(), 'todo-api-migration-time-'));
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.error(`\n${signal}: stopping the database`);
    void Promise.all([cluster.stop(), rm(dir, { recursive: true, force: true })]).finally(() => process.exit(130));
  });
}
let ok = true;
try {
  console.log(`# ${new Date().toISOString()} · node ${process.version} · ${cluster.isEmbedded ? 'embedded PostgreSQL' : 'DATABASE_URL'} · load average ${load()}`);
  for (const m of before) await cp(m.path, join(dir, m.name));
  const template = await cluster.freshDatabase('migration_template', dir);
  let started = Date.now();
  await bulkLoad(template.sql, async (tx) => {
    await seedUsers(tx, users, perUser, 'user-', { legacy: true });
    await seedUsers(tx, 1, heavy, 'heavy-', { legacy: true });
  });
  await analyze(template.sql);
  await template.sql`CHECKPOINT`;
  console.log(
    `# ${(users * perUser + heavy).toLocaleString('en-US')} tasks (${users.toLocaleString('en-US')} users x ${perUser}, one with ` +
      `${heavy.toLocaleString('en-US')}) seeded as ${before.map((m) => m.name).join(' + ')} stores them in ${seconds(Date.now() - started)}: ${await sizes(template.sql)}`,
  );
  await template.sql.end({ timeout: 5 });

  // As a deploy runs it: every pending file in one transaction.
  const whole = await cluster.cloneDatabase(template.url, 'migration_whole');
  await whole.sql`SELECT 1`;
  console.log(`\n## ${timed.map((m) => m.name).join(' + ')} as src/db/migrate.ts applies them (one transaction; load average ${load()})\n`);
  started = Date.now();
  const applied = await migrate(whole.sql, migrations);
  const total = Date.now() - started;
  console.log(`${applied.join(' + ')}: ${seconds(total)}; after it, ${await sizes(whole.sql)}`);
  await whole.sql.end({ timeout: 5 });

  // The same statements one by one (one transaction again), to see where the time goes.
  const parts = await cluster.cloneDatabase(template.url, 'migration_parts');
  console.log(`\n## Statement by statement (load average ${load()})\n`);
  const rows: Array<[string, number]> = [];
  await parts.sql.begin(async (tx) => {
    for (const m of timed) {
      for (const statement of statements(await readFile(m.path, 'utf8'))) {
        const t0 = Date.now();
        await tx.unsafe(statement);
        const head = statement.replace(/^(--.*\n)+/, '').split('\n')[0] ?? '';
        rows.push([`${m.name}: ${head.slice(0, 110)}`, Date.now() - t0]);
      }
    }
  });
  const sum = rows.reduce((s, [, ms]) => s + ms, 0);
  for (const [what, ms] of rows) if (ms >= 50) console.log(`${seconds(ms).padStart(8)}  ${((100 * ms) / sum).toFixed(0).padStart(3)} %  ${what}`);
  console.log(`${seconds(sum).padStart(8)}  in all (statements under 50 ms not listed)`);
  await parts.sql.end({ timeout: 5 });
} catch (err) {
  ok = false;
  console.error(`migration-time failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
} finally {
  await cluster.stop();
  await rm(dir, { recursive: true, force: true });
}
process.exit(ok ? 0 : 1);
