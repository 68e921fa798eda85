import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Sql } from './client.ts';
import { fileURLToPath } from 'node:url';

export const MIGRATIONS_DIR = fileURLToPath(new URL('../../sql/', import.meta.url));

// Any fixed number: instances starting at once queue on it instead of racing.
const MIGRATION_LOCK = 7_341_202_601;

export interface Migration {
  version: number;
  name: string;
  path: string;
}

/** `sql/0001_init.sql` and so on, in order; a misnamed file is an error, not skipped. */
export async function listMigrations(dir = MIGRATIONS_DIR): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.sql')).sort();
  return files.map((name) => {
    const match = /^(\d{4})_[a-z0-9_]+\.sql$/.exec(name);
    if (!match?.[1]) throw new Error(`Migration file name must look like 0001_name.sql: ${name}`);
    return { version: Number(match[1]), name, path: join(dir, name) };
  });
}

/**
 * Applies every pending migration in one transaction, forward only. Two
 * instances starting at the same moment serialise on an advisory lock, and the
 * second finds nothing left to do. Returns the names applied.
 */
export async function migrate(sql: Sql, dir = MIGRATIONS_DIR): Promise<string[]> {
  const migrations = await listMigrations(dir);
  return sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK})`;
    await tx`
      CREATE TABLE IF NOT EXISTS schema_migrations (
        version integer PRIMARY KEY,
        name text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
      )`;
    const rows = await tx<{ version: number }[]>`SELECT version FROM schema_migrations`;
    const applied = new Set(rows.map((r) => r.version));
    const done: string[] = [];
    for (const m of migrations) {
      if (applied.has(m.version)) continue;
      await tx.unsafe(await readFile(m.path, 'utf8'));
      await tx`INSERT INTO schema_migrations (version, name) VALUES (${m.version}, ${m.name})`;
      done.push(m.name);
    }
    return done;
  });
}
