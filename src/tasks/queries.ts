import type { Sql } from '../db/client.ts';
import type { components } from '../generated/openapi.ts';
import type { CursorPosition } from './cursor.ts';

export type Task = components['schemas']['Task'];
export type TaskStatus = components['schemas']['TaskStatus'];

interface TaskRow {
  id: string;
  user_id: string;
  title: string;
  status: TaskStatus;
  created_at: Date;
  updated_at: Date;
}

/**
 * What an id lookup found: the task (when the caller owns it), or who owns it
 * otherwise, so one statement can tell 403 from 404.
 */
export type Lookup = { kind: 'found'; task: Task } | { kind: 'forbidden' } | { kind: 'missing' };

const toTask = (row: TaskRow): Task => ({
  id: row.id,
  title: row.title,
  status: row.status,
  user_id: row.user_id,
  created_at: row.created_at.toISOString(),
  updated_at: row.updated_at.toISOString(),
});

type LookupRow = Partial<TaskRow> & { owner_id: string | null };

function toLookup(row: LookupRow | undefined, userId: string): Lookup {
  if (!row || row.owner_id === null) return { kind: 'missing' };
  if (row.owner_id !== userId) return { kind: 'forbidden' };
  // The owner matched but no row came back: it was deleted in the meantime.
  if (row.id === undefined || row.id === null) return { kind: 'missing' };
  return { kind: 'found', task: toTask(row as TaskRow) };
}

export function createTaskQueries(sql: Sql) {
  // A changed row's updated_at always moves forward, even twice in one millisecond.
  const nextUpdatedAt = sql`GREATEST(clock_timestamp(), tasks.updated_at + interval '1 millisecond')`;

  return {
    /** Records the user on their first write (concurrent first writes included) and adds the task. */
    async create(user: { id: string; email: string | null }, title: string): Promise<Task> {
      const [row] = await sql<TaskRow[]>`
        WITH new_user AS (
          INSERT INTO users (id, email) VALUES (${user.id}, ${user.email})
          ON CONFLICT (id) DO NOTHING
        ),
        -- A plain UPDATE locks nothing when the email is unchanged, so one user's
        -- concurrent creates do not queue behind each other.
        new_email AS (
          UPDATE users SET email = ${user.email}
          WHERE id = ${user.id} AND ${user.email}::text IS NOT NULL AND email IS DISTINCT FROM ${user.email}
        )
        INSERT INTO tasks (user_id, title) VALUES (${user.id}, ${title})
        RETURNING id, user_id, title, status, created_at, updated_at`;
      if (!row) throw new Error('INSERT … RETURNING gave no row');
      return toTask(row);
    },

    /** One page, newest first; asks for one extra row to know whether another page follows. */
    async list(
      userId: string,
      options: { status: TaskStatus | undefined; after: CursorPosition | undefined; limit: number },
    ): Promise<{ tasks: Task[]; more: boolean }> {
      const rows = await sql<TaskRow[]>`
        SELECT id, user_id, title, status, created_at, updated_at
        FROM tasks
        WHERE user_id = ${userId}
          ${options.status ? sql`AND status = ${options.status}` : sql``}
          ${options.after ? sql`AND (created_at, id) < (${options.after.createdAt}::timestamptz, ${options.after.id}::uuid)` : sql``}
        ORDER BY created_at DESC, id DESC
        LIMIT ${options.limit + 1}`;
      return { tasks: rows.slice(0, options.limit).map(toTask), more: rows.length > options.limit };
    },

    async get(userId: string, id: string): Promise<Lookup> {
      const [row] = await sql<LookupRow[]>`
        SELECT user_id AS owner_id, id, user_id, title, status, created_at, updated_at
        FROM tasks WHERE id = ${id}`;
      return toLookup(row, userId);
    },

    /** Changes the given fields of the caller's task; another user's task is left untouched. */
    async update(userId: string, id: string, changes: { title?: string; status?: TaskStatus }): Promise<Lookup> {
      const [row] = await sql<LookupRow[]>`
        WITH target AS (SELECT user_id FROM tasks WHERE id = ${id}),
        changed AS (
          UPDATE tasks SET
            title = COALESCE(${changes.title ?? null}::text, title),
            status = COALESCE(${changes.status ?? null}::text, status),
            updated_at = ${nextUpdatedAt}
          WHERE id = ${id} AND user_id = ${userId}
          RETURNING id, user_id, title, status, created_at, updated_at
        )
        SELECT target.user_id AS owner_id, changed.*
        FROM (SELECT 1) AS one
        LEFT JOIN target ON true
        LEFT JOIN changed ON true`;
      return toLookup(row, userId);
    },

    async remove(userId: string, id: string): Promise<Lookup['kind']> {
      const [row] = await sql<{ owner_id: string | null; deleted: boolean }[]>`
        WITH target AS (SELECT user_id FROM tasks WHERE id = ${id}),
        deleted AS (DELETE FROM tasks WHERE id = ${id} AND user_id = ${userId} RETURNING id)
        SELECT (SELECT user_id FROM target) AS owner_id, EXISTS (SELECT 1 FROM deleted) AS deleted`;
      if (!row || row.owner_id === null) return 'missing';
      if (row.owner_id !== userId) return 'forbidden';
      return row.deleted ? 'found' : 'missing';
    },
  };
}

export type TaskQueries = ReturnType<typeof createTaskQueries>;
