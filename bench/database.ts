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

  private constructor(
    private readonly baseUrl: string,
    private readonly embedded: EmbeddedDatabase | undefined,
    private readonly dir: string | undefined,
  ) {
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

  /** A new, migrated database; its URL keeps DATABASE_URL's query parameters. */
  async freshDatabase(label: string): Promise<{ url: string; sql: Sql }> {
    const name = `bench_${label}_${randomBytes(4).toString('hex')}`;
    await this.admin.unsafe(`CREATE DATABASE ${name}`);
    this.created.push(name);
    const url = new URL(this.baseUrl);
    url.pathname = `/${name}`;
    const sql = createSql(url.toString(), { max: 4 });
    await migrate(sql);
    return { url: url.toString(), sql };
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

/** `user-1` … `user-N`, each with `perUser` tasks, one millisecond apart, a third of them completed. */
export async function seedUsers(sql: Sql, users: number, perUser: number, prefix = 'user-'): Promise<void> {
  await sql`
    INSERT INTO users (id, email)
    SELECT ${prefix}::text || u, ${prefix}::text || u || '@example.com' FROM generate_series(1, ${users}::int) u`;
  // Row by row in user order: each user's index entries are written close together.
  await sql`
    INSERT INTO tasks (user_id, title, status, created_at, updated_at)
    SELECT ${prefix}::text || u, 'task ' || n,
           CASE WHEN n % 3 = 0 THEN 'completed' ELSE 'pending' END,
           t, t
    FROM generate_series(1, ${users}::int) u,
         generate_series(1, ${perUser}::int) n,
         LATERAL (SELECT timestamptz '2026-01-01' + (u * ${perUser}::int + n) * interval '1 millisecond' AS t) ts`;
}

/**
 * Runs a large `seed` quickly: the tasks table's secondary indexes are dropped and built
 * again afterwards (from their own definitions, so new ones are kept too), and, for a
 * superuser, the foreign-key triggers are skipped (the seed writes only rows that match).
 */
export async function bulkLoad(sql: Sql, seed: (tx: Sql) => Promise<void>): Promise<void> {
  await sql.begin(async (tx) => {
    const indexes = await tx<{ name: string; definition: string }[]>`
      SELECT quote_ident(c.relname) AS name, pg_get_indexdef(i.indexrelid) AS definition
      FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
      WHERE i.indrelid = 'tasks'::regclass
        AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)`;
    for (const index of indexes) await tx.unsafe(`DROP INDEX ${index.name}`);
    const [role] = await tx<{ super: boolean }[]>`SELECT rolsuper AS super FROM pg_roles WHERE rolname = current_user`;
    if (role?.super) await tx`SET LOCAL session_replication_role = replica`;
    await tx`SET LOCAL maintenance_work_mem = '256MB'`;
    await seed(tx as unknown as Sql);
    if (role?.super) await tx`SET LOCAL session_replication_role = DEFAULT`;
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
