import type { Sql } from '../db/client.ts';
import type { Deadline } from '../db/deadline.ts';
import type { components } from '../generated/openapi.ts';
import type { CursorPosition } from './cursor.ts';
import type { Precondition } from './etag.ts';

export type Task = components['schemas']['Task'];
export type TaskStatus = components['schemas']['TaskStatus'];

/** Every write of a user wakes that user's change streams (src/sync/); the payload is the user id only. */
export const CHANGES_CHANNEL = 'todo_api_changes';

interface TaskRow {
  id: string;
  user_id: string;
  title: string;
  status: TaskStatus;
  /** RFC 3339 text (see isoTimestamp in db/client.ts). */
  created_at: string;
  updated_at: string;
}

/**
 * What an id lookup or write found: the task (when the caller owns it and any
 * If-Match held), or why not, so that one statement tells 403, 404 and 412 apart.
 */
export type Lookup =
  | { kind: 'found'; task: Task }
  | { kind: 'forbidden' }
  | { kind: 'missing' }
  | { kind: 'precondition-failed' };

export const toTask = (row: TaskRow): Task => ({
  id: row.id,
  title: row.title,
  status: row.status,
  user_id: row.user_id,
  created_at: row.created_at,
  updated_at: row.updated_at,
});

type LookupRow = Partial<TaskRow> & { owner_id: string | null };

function toLookup(row: LookupRow | undefined, userId: string, precondition: Precondition | undefined): Lookup {
  if (!row || row.owner_id === null) return { kind: 'missing' };
  if (row.owner_id !== userId) return { kind: 'forbidden' };
  // The caller owns it but nothing was written: If-Match failed, or it was deleted meanwhile.
  if (row.id === undefined || row.id === null) return { kind: precondition ? 'precondition-failed' : 'missing' };
  return { kind: 'found', task: toTask(row as TaskRow) };
}

/** The first 201 of an Idempotency-Key, as stored: its body is a function of these. */
export interface StoredCreate {
  title: string;
  task_id: string;
  created_at: string;
}

export type CreateOutcome = { kind: 'created'; task: Task } | { kind: 'replay'; stored: StoredCreate };

export function createTaskQueries(sql: Sql) {
  // Constant fragments are made once: each sql`` is an object (a Promise) per use.
  const NOTHING: ReturnType<Sql> = sql``;
  const CHANNEL = sql.unsafe(`'${CHANGES_CHANNEL}'`);
  // A changed row's updated_at always moves forward, even twice in one millisecond.
  const nextUpdatedAt = sql`GREATEST(clock_timestamp(), tasks.updated_at + interval '1 millisecond')`;
  // If-Match, compared in the statement that writes, so a change in between always fails it.
  const holds = (p: Precondition | undefined) =>
    p === undefined || p.any ? NOTHING : sql`AND tasks.updated_at = ANY(${p.updatedAt}::timestamptz[])`;
  // The caller's change counter, bumped and row-locked before any task row is touched, so
  // that a user's writes take their positions in commit order (see src/sync/).
  const bump = (userId: string, when: ReturnType<Sql>) => sql`
    UPDATE users SET change_seq = change_seq + 1 WHERE id = ${userId} AND ${when} RETURNING change_seq`;
  // A create records the user on their first write (keeping a known email when the token
  // has none) and bumps their counter, in one upsert; `from` makes it conditional (a key claim).
  const recordUser = (user: { id: string; email: string | null }, from: ReturnType<Sql>) => sql`
    INSERT INTO users AS u (id, email, change_seq) SELECT ${user.id}, ${user.email}, 1 ${from}
    ON CONFLICT (id) DO UPDATE SET change_seq = u.change_seq + 1, email = COALESCE(EXCLUDED.email, u.email)
    RETURNING change_seq`;

  return {
    /**
     * Records the user on their first write and adds the task. With an Idempotency-Key,
     * the key is claimed in the same statement (a key older than 24 hours is reclaimed);
     * when it is taken, the stored first outcome comes back instead. A concurrent
     * request with the same key waits on the key's row until the first commits.
     */
    async create(
      deadline: Deadline,
      user: { id: string; email: string | null },
      title: string,
      idempotencyKey?: string,
    ): Promise<CreateOutcome> {
      if (idempotencyKey === undefined) {
        const [row] = await deadline.run(sql<TaskRow[]>`
          WITH bump AS (${recordUser(user, NOTHING)}),
          created AS (
            INSERT INTO tasks (user_id, title, change_seq) SELECT ${user.id}, ${title}, change_seq FROM bump
            RETURNING id, user_id, title, status, created_at, updated_at
          )
          SELECT created.*, pg_notify(${CHANNEL}, ${user.id}) FROM created`);
        if (!row) throw new Error('INSERT … RETURNING gave no row');
        return { kind: 'created', task: toTask(row) };
      }

      // Twice at most: a key that expires between the claim and the read is claimed anew.
      for (let attempt = 0; attempt < 2; attempt++) {
        const [row] = await deadline.run(sql<TaskRow[]>`
          WITH claim AS (
            INSERT INTO idempotency_keys AS k (user_id, key, title, task_id, created_at)
            VALUES (${user.id}, ${idempotencyKey}, ${title}, gen_random_uuid(), now())
            ON CONFLICT (user_id, key) DO UPDATE
              SET title = EXCLUDED.title, task_id = EXCLUDED.task_id, created_at = EXCLUDED.created_at
              WHERE k.created_at <= now() - interval '24 hours'
            RETURNING task_id, created_at
          ),
          bump AS (${recordUser(user, sql`FROM claim`)}),
          created AS (
            INSERT INTO tasks (id, user_id, title, change_seq, created_at, updated_at)
            SELECT claim.task_id, ${user.id}, ${title}, bump.change_seq, claim.created_at, claim.created_at
            FROM claim, bump
            RETURNING id, user_id, title, status, created_at, updated_at
          )
          SELECT created.*, pg_notify(${CHANNEL}, ${user.id}) FROM created`);
        if (row) return { kind: 'created', task: toTask(row) };
        const [stored] = await deadline.run(sql<StoredCreate[]>`
          SELECT title, task_id, created_at FROM idempotency_keys
          WHERE user_id = ${user.id} AND key = ${idempotencyKey} AND created_at > now() - interval '24 hours'`);
        if (stored) return { kind: 'replay', stored };
      }
      throw new Error('an idempotency key could be neither claimed nor read');
    },

    /** One page, newest first; asks for one extra row to know whether another page follows. */
    async list(
      deadline: Deadline,
      userId: string,
      options: { status: TaskStatus | undefined; after: CursorPosition | undefined; limit: number },
    ): Promise<{ tasks: Task[]; more: boolean }> {
      const rows = await deadline.run(sql<TaskRow[]>`
        SELECT id, user_id, title, status, created_at, updated_at
        FROM tasks
        WHERE user_id = ${userId}
          ${options.status ? sql`AND status = ${options.status}` : NOTHING}
          ${options.after ? sql`AND (created_at, id) < (${options.after.createdAt}::timestamptz, ${options.after.id}::uuid)` : NOTHING}
        ORDER BY created_at DESC, id DESC
        LIMIT ${options.limit + 1}`);
      return { tasks: rows.slice(0, options.limit).map(toTask), more: rows.length > options.limit };
    },

    async get(deadline: Deadline, userId: string, id: string): Promise<Lookup> {
      const [row] = await deadline.run(sql<LookupRow[]>`
        SELECT user_id AS owner_id, id, user_id, title, status, created_at, updated_at
        FROM tasks WHERE id = ${id}`);
      return toLookup(row, userId, undefined);
    },

    /** Changes the given fields of the caller's task if If-Match holds; another user's task is left untouched. */
    async update(
      deadline: Deadline,
      userId: string,
      id: string,
      changes: { title?: string; status?: TaskStatus },
      precondition: Precondition | undefined,
    ): Promise<Lookup> {
      const [row] = await deadline.run(sql<LookupRow[]>`
        WITH target AS (SELECT user_id FROM tasks WHERE id = ${id}),
        bump AS (${bump(userId, sql`EXISTS (SELECT 1 FROM target WHERE user_id = ${userId})`)}),
        changed AS (
          UPDATE tasks SET
            title = COALESCE(${changes.title ?? null}::text, title),
            status = COALESCE(${changes.status ?? null}::text, status),
            updated_at = ${nextUpdatedAt},
            change_seq = bump.change_seq
          FROM bump
          WHERE tasks.id = ${id} AND tasks.user_id = ${userId} ${holds(precondition)}
          RETURNING tasks.id, tasks.user_id, tasks.title, tasks.status, tasks.created_at, tasks.updated_at
        )
        SELECT target.user_id AS owner_id, changed.*, (SELECT pg_notify(${CHANNEL}, ${userId}) FROM changed) AS notified
        FROM (SELECT 1) AS one
        LEFT JOIN target ON true
        LEFT JOIN changed ON true`);
      return toLookup(row, userId, precondition);
    },

    /** Deletes the caller's task if If-Match holds, leaving a tombstone for the change feed. */
    async remove(deadline: Deadline, userId: string, id: string, precondition: Precondition | undefined): Promise<Lookup['kind']> {
      const [row] = await deadline.run(sql<{ owner_id: string | null; deleted: boolean }[]>`
        WITH target AS (SELECT user_id FROM tasks WHERE id = ${id}),
        bump AS (${bump(userId, sql`EXISTS (SELECT 1 FROM target WHERE user_id = ${userId})`)}),
        deleted AS (
          DELETE FROM tasks USING bump
          WHERE tasks.id = ${id} AND tasks.user_id = ${userId} ${holds(precondition)}
          RETURNING tasks.id, bump.change_seq
        ),
        tombstone AS (
          INSERT INTO task_tombstones (task_id, user_id, change_seq) SELECT id, ${userId}, change_seq FROM deleted
        )
        SELECT (SELECT user_id FROM target) AS owner_id, EXISTS (SELECT 1 FROM deleted) AS deleted,
          (SELECT pg_notify(${CHANNEL}, ${userId}) FROM deleted) AS notified`);
      if (!row || row.owner_id === null) return 'missing';
      if (row.owner_id !== userId) return 'forbidden';
      if (row.deleted) return 'found';
      return precondition ? 'precondition-failed' : 'missing';
    },

    /** "Mark all as done" (or undo): only tasks whose status really changes are touched. */
    async setStatusOfAll(deadline: Deadline, userId: string, status: TaskStatus, only: TaskStatus | undefined): Promise<number> {
      const targets = sql`tasks.user_id = ${userId} AND tasks.status <> ${status} ${only ? sql`AND tasks.status = ${only}` : NOTHING}`;
      const [row] = await deadline.run(sql<{ count: number }[]>`
        WITH bump AS (${bump(userId, sql`EXISTS (SELECT 1 FROM tasks WHERE ${targets})`)}),
        changed AS (
          UPDATE tasks SET status = ${status}, updated_at = ${nextUpdatedAt}, change_seq = bump.change_seq
          FROM bump WHERE ${targets}
          RETURNING tasks.id
        )
        SELECT count(*)::int AS count, (SELECT pg_notify(${CHANNEL}, ${userId}) FROM bump) AS notified FROM changed`);
      return row?.count ?? 0;
    },

    /** "Clear completed": deletes the caller's tasks with this status, leaving tombstones. */
    async removeAllWithStatus(deadline: Deadline, userId: string, status: TaskStatus): Promise<number> {
      const targets = sql`tasks.user_id = ${userId} AND tasks.status = ${status}`;
      const [row] = await deadline.run(sql<{ count: number }[]>`
        WITH bump AS (${bump(userId, sql`EXISTS (SELECT 1 FROM tasks WHERE ${targets})`)}),
        deleted AS (
          DELETE FROM tasks USING bump WHERE ${targets}
          RETURNING tasks.id, bump.change_seq
        ),
        tombstones AS (
          INSERT INTO task_tombstones (task_id, user_id, change_seq) SELECT id, ${userId}, change_seq FROM deleted
        )
        SELECT count(*)::int AS count, (SELECT pg_notify(${CHANNEL}, ${userId}) FROM bump) AS notified FROM deleted`);
      return row?.count ?? 0;
    },

    /** The caller's tasks by status, in one statement (an index-only scan). */
    async counts(deadline: Deadline, userId: string): Promise<{ pending: number; completed: number; total: number }> {
      const [row] = await deadline.run(sql<{ pending: number; completed: number; total: number }[]>`
        SELECT count(*) FILTER (WHERE status = 'pending')::int AS pending,
               count(*) FILTER (WHERE status = 'completed')::int AS completed,
               count(*)::int AS total
        FROM tasks WHERE user_id = ${userId}`);
      return row ?? { pending: 0, completed: 0, total: 0 };
    },
  };
}

export type TaskQueries = ReturnType<typeof createTaskQueries>;
