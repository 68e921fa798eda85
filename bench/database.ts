import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import postgres from 'postgres';
import { createSql, type Sql } from '../src/db/client.ts';
import { makeTemporaryDataDir, startEmbeddedPostgres, type EmbeddedDatabase } from '../src/dev/embedded.ts';
import { migrate } from '../src/db/migrate.ts';

/**
 * The PostgreSQL the bench runs on: DATABASE_URL's server (its role needs CREATEDB),
 * or an embedded one in a temporary directory. Each server under test gets a fresh
 * database of its own, migrated with the project's migrations and dropped at the end.
 */
export class Cluster {
  private readonly created: string[] = [];
  private readonly admin: postgres.Sql;

  private readonly baseUrl: string;
  private readonly embedded: EmbeddedDatabase | undefined;
  private readonly dir: string | undefined;

  private constructor(baseUrl: string, embedded: EmbeddedDatabase | undefined, dir: string | undefined) {
    this.baseUrl = baseUrl;
    this.embedded = embedded;
    this.dir = dir;
    this.admin = postgres(baseUrl, { max: 1, onnotice: () => {} });
  }

  static async start(databaseUrl: string | undefined): Promise<Cluster> {
    if (databaseUrl) return new Cluster(databaseUrl, undefined, undefined);
    const dir = await makeTemporaryDataDir('todo-api-bench-');
    try {
      const embedded = await startEmbeddedPostgres({ dataDir: dir });
      return new Cluster(embedded.url, embedded, dir);
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
  }

  /** The server's URL (its default database). */
  get url(): string {
    return this.baseUrl;
  }

  get isEmbedded(): boolean {
    return this.embedded !== undefined;
  }

  /**
   * A new database migrated with the project's migrations (or those of `migrations`, a
   * folder); its URL keeps DATABASE_URL's query parameters.
   */
  async freshDatabase(label: string, migrations?: string): Promise<{ url: string; sql: Sql }> {
    const { url, sql } = await this.create(label);
    await migrate(sql, migrations);
    return { url, sql };
  }

  /** A copy of another of the bench's databases (`template`: its URL), which must have no other connection. */
  async cloneDatabase(template: string, label: string): Promise<{ url: string; sql: Sql }> {
    return this.create(label, `TEMPLATE ${new URL(template).pathname.slice(1)}`);
  }

  private async create(label: string, clause = ''): Promise<{ url: string; sql: Sql }> {
    const name = `bench_${label}_${randomBytes(4).toString('hex')}`;
    await this.admin.unsafe(`CREATE DATABASE ${name} ${clause}`);
    this.created.push(name);
    const url = new URL(this.baseUrl);
    url.pathname = `/${name}`;
    return { url: url.toString(), sql: createSql(url.toString(), { max: 4 }) };
  }

  async stop(): Promise<void> {
    for (const name of this.created.splice(0)) {
      await this.admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => {});
    }
    await this.admin.end({ timeout: 5 }).catch(() => {});
    await this.embedded?.stop();
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
  }
}

/**
 * The notes a seeded task may carry (0003's task model): 40 % of tasks have none, the rest
 * one of these. SEARCH_TERM is in two of them ("milk", "Emil"), so it matches about 15 % of
 * the seeded tasks, titles never (they are "task N").
 */
const NOTES = [
  'Buy milk, eggs and bread on the way home.',
  'Call the dentist to move the appointment to next week.',
  'Ask Sam for the slides before the review on Thursday.',
  'Renew the car insurance; compare at least three quotes.',
  'Reply to Emil about the budget for the new laptops.',
  'Send the invoice for November and chase the one from October.',
  'Water the plants on the balcony and the ones in the office.',
  'Book a table for the team dinner: twelve people, Friday evening.',
];

/** A three-letter `q` that matches a fair share (about 15 %) of the seeded tasks, in their notes. */
export const SEARCH_TERM = 'mil';

export interface SeedOptions {
  /**
   * Rows as contract 1.1 stored them (migrations 0001-0002 only: no notes, due date,
   * completion time or position), to time the task-model migration on them.
   */
  legacy?: boolean;
}

/**
 * `user-1` … `user-N`, each with `perUser` tasks, one millisecond apart, a third of them
 * completed (`completed_at` = their last change). Unless `legacy`: 60 % of tasks have a due
 * date spread over two years (2025-2026), 60 % have notes (see NOTES), and the manual order
 * is newest first, as 0003 backfills it (`todo_key_for_index(0)` the newest), with
 * `users.top_position` the lowest key of the user. Deterministic: the same seed every run.
 */
export async function seedUsers(sql: Sql, users: number, perUser: number, prefix = 'user-', options: SeedOptions = {}): Promise<void> {
  await sql`
    INSERT INTO users (id, email)
    SELECT ${prefix}::text || u, ${prefix}::text || u || '@example.com' FROM generate_series(1, ${users}::int) u`;
  // In rounds (task n of every user, then task n + 1): each user's tasks are spread over the
  // table, one page or so each, as tasks written over time by many users are. (Before the
  // ORDER BY, the planner chose: the large set came out so, the small one user by user.)
  if (options.legacy) {
    await sql`
      INSERT INTO tasks (user_id, title, status, created_at, updated_at)
      SELECT ${prefix}::text || u, 'task ' || n,
             CASE WHEN n % 3 = 0 THEN 'completed' ELSE 'pending' END,
             t, t
      FROM generate_series(1, ${users}::int) u,
           generate_series(1, ${perUser}::int) n,
           LATERAL (SELECT timestamptz '2026-01-01' + (u * ${perUser}::int + n) * interval '1 millisecond' AS t) ts
      ORDER BY n, u`;
    return;
  }
  // h: a hash of the task's number, so that notes and due dates do not follow the creation order.
  await sql`
    INSERT INTO tasks (user_id, title, status, created_at, updated_at, notes, due_date, completed_at, position)
    SELECT ${prefix}::text || u, 'task ' || n,
           CASE WHEN n % 3 = 0 THEN 'completed' ELSE 'pending' END,
           t, t,
           CASE WHEN abs(h1 % 100) < 40 THEN '' ELSE (${NOTES}::text[])[1 + abs(h1 / 100 % ${NOTES.length})] END,
           CASE WHEN abs(h2 % 100) < 60 THEN DATE '2025-01-01' + abs(h2 / 100 % 730)::int END,
           CASE WHEN n % 3 = 0 THEN t END,
           todo_key_for_index(${perUser}::int - n)
    FROM generate_series(1, ${users}::int) u,
         generate_series(1, ${perUser}::int) n,
         LATERAL (SELECT timestamptz '2026-01-01' + (u * ${perUser}::int + n) * interval '1 millisecond' AS t,
                         hashint8extended(u * ${perUser}::bigint + n, 1) AS h1,
                         hashint8extended(u * ${perUser}::bigint + n, 2) AS h2) ts
    ORDER BY n, u`;
  // One pass over the tasks (within bulkLoad they have no index on user_id).
  await sql`
    UPDATE users SET top_position = m.top
    FROM (SELECT user_id, min(position) AS top FROM tasks
          WHERE user_id IN (SELECT ${prefix}::text || u FROM generate_series(1, ${users}::int) u)
          GROUP BY user_id) AS m
    WHERE users.id = m.user_id`;
}

/**
 * Runs a large `seed` quickly: the tasks table's secondary indexes and unique constraints
 * (not its primary key) are dropped and built again afterwards (from their own
 * definitions, so new ones are kept too), and, for a superuser, the foreign-key triggers
 * are skipped (the seed writes only rows that match).
 */
export async function bulkLoad(sql: Sql, seed: (tx: Sql) => Promise<void>): Promise<void> {
  await sql.begin(async (tx) => {
    const indexes = await tx<{ name: string; definition: string }[]>`
      SELECT quote_ident(c.relname) AS name, pg_get_indexdef(i.indexrelid) AS definition
      FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
      WHERE i.indrelid = 'tasks'::regclass
        AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)`;
    // Checked row by row while loading, (user_id, position) cost more than all the other indexes built afterwards.
    const uniques = await tx<{ name: string; definition: string }[]>`
      SELECT quote_ident(conname) AS name, pg_get_constraintdef(oid) AS definition
      FROM pg_constraint WHERE conrelid = 'tasks'::regclass AND contype = 'u'`;
    for (const index of indexes) await tx.unsafe(`DROP INDEX ${index.name}`);
    for (const unique of uniques) await tx.unsafe(`ALTER TABLE tasks DROP CONSTRAINT ${unique.name}`);
    const [role] = await tx<{ super: boolean }[]>`SELECT rolsuper AS super FROM pg_roles WHERE rolname = current_user`;
    if (role?.super) await tx`SET LOCAL session_replication_role = replica`;
    await tx`SET LOCAL maintenance_work_mem = '256MB'`;
    await seed(tx as unknown as Sql);
    if (role?.super) await tx`SET LOCAL session_replication_role = DEFAULT`;
    for (const unique of uniques) await tx.unsafe(`ALTER TABLE tasks ADD CONSTRAINT ${unique.name} ${unique.definition}`);
    for (const index of indexes) await tx.unsafe(index.definition);
  });
}

export async function analyze(sql: Sql): Promise<void> {
  await sql`VACUUM ANALYZE users`;
  await sql`VACUUM ANALYZE tasks`;
}

/** Some users' task ids, to address real rows in get and patch requests. */
export async function sampleTasks(sql: Sql, users: number, prefix = 'user-'): Promise<Map<string, string[]>> {
  const rows = await sql<{ user_id: string; ids: string[] }[]>`
    SELECT user_id, array_agg(id) AS ids FROM tasks
    WHERE user_id IN (SELECT id FROM users WHERE id LIKE ${prefix + '%'} ORDER BY random() LIMIT ${users})
    GROUP BY user_id`;
  return new Map(rows.map((r) => [r.user_id, r.ids]));
}
