import { plannedPerCall, type Sql } from '../db/client.ts';
import type { Deadline } from '../db/deadline.ts';
import type { components } from '../generated/openapi.ts';
import type { Precondition } from './etag.ts';
import { containsPattern, DUE_RANK, dueRank, NO_DUE_RANK, type ListQuery, type Sort, type SortKey } from './search.ts';

export type Task = components['schemas']['Task'];
export type TaskStatus = components['schemas']['TaskStatus'];
type MoveRequest = components['schemas']['MoveTaskRequest'];
type TaskCounts = components['schemas']['TaskCounts'];

/** Every write of a user wakes that user's change streams (src/sync/); the payload is the user id only. */
export const CHANGES_CHANNEL = 'todo_api_changes';

/**
 * A task's columns as the API shows them (timestamps arrive as RFC 3339 text, see
 * db/client.ts; a date as YYYY-MM-DD text). Written out in each statement that returns a task.
 */
const COLUMNS = 'id, user_id, title, status, created_at, updated_at, notes, due_date::text AS due_date, completed_at, position';

/**
 * What an id lookup or write found: the task (when the caller owns it and any
 * If-Match held), or why not, so that one statement tells 403, 404 and 412 apart.
 */
export type Lookup =
  | { kind: 'found'; task: Task }
  | { kind: 'forbidden' }
  | { kind: 'missing' }
  | { kind: 'precondition-failed' };

/** In the contract's field order, whatever order the row came in. */
export const toTask = (row: Task): Task => ({
  id: row.id,
  title: row.title,
  status: row.status,
  user_id: row.user_id,
  created_at: row.created_at,
  updated_at: row.updated_at,
  notes: row.notes,
  due_date: row.due_date,
  completed_at: row.completed_at,
  position: row.position,
});

type LookupRow = Partial<Task> & { owner_id: string | null };

function toLookup(row: LookupRow | undefined, userId: string, precondition: Precondition | undefined): Lookup {
  if (!row || row.owner_id === null) return { kind: 'missing' };
  if (row.owner_id !== userId) return { kind: 'forbidden' };
  // The caller owns it but nothing was written: If-Match failed, or it was deleted meanwhile.
  if (row.id === undefined || row.id === null) return { kind: precondition ? 'precondition-failed' : 'missing' };
  return { kind: 'found', task: toTask(row as Task) };
}

/** A create's fields, after trimming: what a replay must match. */
export interface NewTask {
  title: string;
  notes: string;
  due_date: string | null;
}

/** The first 201 of an Idempotency-Key or client id, as stored: its body is a function of these. */
export interface StoredCreate extends NewTask {
  task_id: string;
  created_at: string;
  position: string;
}

export type CreateOutcome =
  | { kind: 'created'; task: Task }
  | { kind: 'replay'; stored: StoredCreate }
  /** A client id that is taken: by a deleted task, another user's, or another create. */
  | { kind: 'id-conflict' };

/** A move's outcome, from todo_move_task (sql/0003): a lookup, or a neighbour that is not the caller's. */
export type MoveOutcome = Lookup | { kind: 'bad-neighbour' };

const isUniqueViolation = (err: unknown, constraint: string) =>
  typeof err === 'object' && err !== null && (err as { code?: unknown }).code === '23505' && (err as { constraint_name?: unknown }).constraint_name === constraint;

export function createTaskQueries(sql: Sql) {
  // Constant fragments are made once: each sql`` is an object (a Promise) per use.
  const NOTHING: ReturnType<Sql> = sql``;
  const CHANNEL = sql.unsafe(`'${CHANGES_CHANNEL}'`);
  const NEW_ID = sql`gen_random_uuid()`;
  const COLS = sql.unsafe(COLUMNS);
  const RANK = sql.unsafe(DUE_RANK);
  // A create's record still answers: an Idempotency-Key's for 24 hours, a client id's (its key
  // is the task's id) for as long as its task exists, however late the retry.
  const KEPT = sql`(k.created_at > now() - interval '24 hours' OR k.key = k.task_id::text)`;
  // A changed row's updated_at always moves forward, even twice in one millisecond. `bump.now`
  // is read once the user's row is locked, so a completion time equals its updated_at.
  const nextUpdatedAt = sql`GREATEST(bump.now, tasks.updated_at + interval '1 millisecond')`;
  // If-Match, compared in the statement that writes, so a change in between always fails it.
  const holds = (p: Precondition | undefined) =>
    p === undefined || p.any ? NOTHING : sql`AND tasks.updated_at = ANY(${p.updatedAt}::timestamptz[])`;
  // The caller's change counter, bumped and row-locked before any task row is touched, so
  // that a user's writes take their positions in commit order (see src/sync/).
  const bump = (userId: string, when: ReturnType<Sql>) => sql`
    UPDATE users SET change_seq = change_seq + 1 WHERE id = ${userId} AND ${when} RETURNING change_seq, clock_timestamp() AS now`;
  // A create records the user on their first write (keeping a known email when the token
  // has none), bumps their counter and takes the key before the lowest one ever issued to
  // them (the top of the manual order), in one upsert: on that locked row, concurrent
  // creates of a user never take the same key. (createKeyed writes it out, with a condition.)
  const recordUser = (user: { id: string; email: string | null }) => sql`
    INSERT INTO users AS u (id, email, change_seq, top_position) SELECT ${user.id}, ${user.email}, 1, todo_key_between(NULL, NULL)
    ON CONFLICT (id) DO UPDATE SET change_seq = u.change_seq + 1, email = COALESCE(EXCLUDED.email, u.email),
      top_position = todo_key_between(NULL, u.top_position)
    RETURNING change_seq, top_position`;
  // A deleted task's client-id record goes with it (its tombstone answers a late create).
  const forgetClientIds = (userId: string) => sql`
    forgotten AS (DELETE FROM idempotency_keys AS k USING deleted WHERE k.user_id = ${userId} AND k.key = deleted.id::text)`;
  // Filters as ranges of the due rank, so that sort=due reads only the dates asked for.
  const dueFilters = (q: ListQuery) => sql`
    ${q.due_before === undefined ? NOTHING : sql`AND ${RANK} >= DATE '1970-01-01' - ${q.due_before}::date`}
    ${q.due_after === undefined ? NOTHING : sql`AND ${RANK} <= DATE '1970-01-01' - ${q.due_after}::date AND ${RANK} > ${NO_DUE_RANK}`}
    ${q.has_due === undefined ? NOTHING : q.has_due ? sql`AND ${RANK} > ${NO_DUE_RANK}` : sql`AND ${RANK} = ${NO_DUE_RANK}`}`;
  // Each sort: the rows after a page's last key, in the order of its index (sql/0003).
  const ORDER: Record<Sort, { after: (k: SortKey) => ReturnType<Sql>; by: ReturnType<Sql> }> = {
    created: {
      after: ([c, i]) => sql`AND (created_at, id) < (${c ?? null}::timestamptz, ${i ?? null}::uuid)`,
      by: sql`ORDER BY created_at DESC, id DESC`,
    },
    position: {
      after: ([p]) => sql`AND position > ${p ?? null}::text COLLATE "C"`,
      by: sql`ORDER BY position`,
    },
    due: {
      after: ([d, c, i]) => sql`AND (${RANK}, created_at, id) < (${dueRank(d ?? null)}::bigint, ${c ?? null}::timestamptz, ${i ?? null}::uuid)`,
      by: sql`ORDER BY ${RANK} DESC, created_at DESC, id DESC`,
    },
    updated: {
      after: ([u, i]) => sql`AND (updated_at, id) < (${u ?? null}::timestamptz, ${i ?? null}::uuid)`,
      by: sql`ORDER BY updated_at DESC, id DESC`,
    },
  };

  /** A create with an Idempotency-Key or a client id: claimed in the statement that inserts. */
  async function createKeyed(deadline: Deadline, user: { id: string; email: string | null }, task: NewTask, key: string, id: string | undefined): Promise<CreateOutcome> {
    // Nothing is written for a key already claimed, nor for a client id that is taken (a
    // deleted task's stays deleted). Two requests racing past this both lock the user's
    // row, and the claim below lets one through.
    const idFree = id === undefined ? NOTHING : sql`
      AND NOT EXISTS (SELECT 1 FROM tasks WHERE id = ${id}::uuid)
      AND NOT EXISTS (SELECT 1 FROM task_tombstones WHERE task_id = ${id}::uuid)
      AND NOT EXISTS (SELECT 1 FROM retired_task_ids WHERE task_id = ${id}::uuid)`;
    // Twice at most: a key that expires between the claim and the read is claimed anew.
    for (let attempt = 0; attempt < 2; attempt++) {
      let row: Task | undefined;
      try {
        // recordUser's upsert written out, with the claim's condition: composed from
        // fragments, each a postgres.js Query (a Promise), the statement cost 20-25 µs
        // more per create (bench/PROFILE.md, seventh round).
        [row] = await deadline.run(sql<Task[]>`
          WITH bump AS (
            INSERT INTO users AS u (id, email, change_seq, top_position) SELECT ${user.id}, ${user.email}, 1, todo_key_between(NULL, NULL)
            WHERE NOT EXISTS (SELECT 1 FROM idempotency_keys AS k WHERE k.user_id = ${user.id} AND k.key = ${key} AND ${KEPT}) ${idFree}
            ON CONFLICT (id) DO UPDATE SET change_seq = u.change_seq + 1, email = COALESCE(EXCLUDED.email, u.email),
              top_position = todo_key_between(NULL, u.top_position)
            RETURNING change_seq, top_position
          ),
          claim AS (
            INSERT INTO idempotency_keys AS k (user_id, key, title, notes, due_date, task_id, created_at, position)
            SELECT ${user.id}, ${key}, ${task.title}, ${task.notes}, ${task.due_date}::date,
              ${id === undefined ? NEW_ID : sql`${id}::uuid`}, now(), bump.top_position
            FROM bump
            ON CONFLICT (user_id, key) DO UPDATE
              SET title = EXCLUDED.title, notes = EXCLUDED.notes, due_date = EXCLUDED.due_date, task_id = EXCLUDED.task_id,
                created_at = EXCLUDED.created_at, position = EXCLUDED.position
              WHERE NOT ${KEPT}
            RETURNING task_id, created_at, position
          ),
          created AS (
            INSERT INTO tasks (id, user_id, title, notes, due_date, change_seq, position, created_at, updated_at)
            SELECT claim.task_id, ${user.id}, ${task.title}, ${task.notes}, ${task.due_date}::date, bump.change_seq, claim.position,
              claim.created_at, claim.created_at
            FROM claim, bump
            RETURNING ${COLS}
          )
          SELECT created.*, pg_notify(${CHANNEL}, ${user.id}) FROM created`);
      } catch (err) {
        // The id is another user's task (or a task whose record has expired): taken.
        if (id !== undefined && isUniqueViolation(err, 'tasks_pkey')) return { kind: 'id-conflict' };
        throw err;
      }
      if (row) return { kind: 'created', task: toTask(row) };
      const [found] = await deadline.run(sql<(Partial<StoredCreate> & { retired: boolean })[]>`
        SELECT k.title, k.notes, k.due_date::text AS due_date, k.task_id, k.created_at, k.position,
          ${id === undefined ? sql`false` : sql`EXISTS (SELECT 1 FROM task_tombstones WHERE task_id = ${id}::uuid)
            OR EXISTS (SELECT 1 FROM retired_task_ids WHERE task_id = ${id}::uuid)`} AS retired
        FROM (SELECT 1) AS one
        LEFT JOIN idempotency_keys AS k ON k.user_id = ${user.id} AND k.key = ${key} AND ${KEPT}`);
      if (found?.retired) return { kind: 'id-conflict' };
      if (found?.task_id) return { kind: 'replay', stored: found as StoredCreate };
      if (id !== undefined) return { kind: 'id-conflict' };
    }
    throw new Error('an idempotency key could be neither claimed nor read');
  }

  return {
    /**
     * Records the user on their first write and adds the task at the top of their manual
     * order. With an Idempotency-Key or a client id, the key is claimed in the same
     * statement (a key older than 24 hours is reclaimed); when it is taken, the stored
     * first outcome comes back instead. A concurrent request with the same key waits on
     * the key's row until the first commits.
     */
    async create(deadline: Deadline, user: { id: string; email: string | null }, task: NewTask, key?: string, id?: string): Promise<CreateOutcome> {
      if (key !== undefined) return createKeyed(deadline, user, task, key, id);
      const [row] = await deadline.run(sql<Task[]>`
        WITH bump AS (${recordUser(user)}),
        created AS (
          INSERT INTO tasks (user_id, title, notes, due_date, change_seq, position)
          SELECT ${user.id}, ${task.title}, ${task.notes}, ${task.due_date}::date, change_seq, top_position FROM bump
          RETURNING ${COLS}
        )
        SELECT created.*, pg_notify(${CHANNEL}, ${user.id}) FROM created`);
      if (!row) throw new Error('INSERT … RETURNING gave no row');
      return { kind: 'created', task: toTask(row) };
    },

    /** One page in the query's order, after `after`; asks for one extra row to know whether another page follows. */
    async list(deadline: Deadline, userId: string, query: ListQuery, after: SortKey | undefined, limit: number): Promise<{ tasks: Task[]; more: boolean }> {
      const order = ORDER[query.sort ?? 'created'];
      const statement = sql<Task[]>`
        SELECT ${COLS}
        FROM tasks
        WHERE user_id = ${userId}
          ${query.status ? sql`AND status = ${query.status}` : NOTHING}
          ${query.due_before === undefined && query.due_after === undefined && query.has_due === undefined ? NOTHING : dueFilters(query)}
          ${query.q === undefined ? NOTHING : sql`AND (title ILIKE ${containsPattern(query.q)} OR notes ILIKE ${containsPattern(query.q)})`}
          ${after ? order.after(after) : NOTHING}
        ${order.by}
        LIMIT ${limit + 1}`;
      // A search's best plan depends on the user and the words: plan it on every call.
      const rows = await deadline.run(query.q === undefined ? statement : plannedPerCall(statement));
      return { tasks: rows.slice(0, limit).map(toTask), more: rows.length > limit };
    },

    async get(deadline: Deadline, userId: string, id: string): Promise<Lookup> {
      const [row] = await deadline.run(sql<LookupRow[]>`SELECT user_id AS owner_id, ${COLS} FROM tasks WHERE id = ${id}`);
      return toLookup(row, userId, undefined);
    },

    /**
     * Changes the given fields of the caller's task if If-Match holds; another user's task
     * is left untouched. Completing a pending task sets completed_at, reopening clears it.
     */
    async update(
      deadline: Deadline,
      userId: string,
      id: string,
      changes: { title?: string; status?: TaskStatus; notes?: string; due_date?: string | null },
      precondition: Precondition | undefined,
    ): Promise<Lookup> {
      const status = changes.status ?? null;
      const [row] = await deadline.run(sql<LookupRow[]>`
        WITH target AS (SELECT user_id FROM tasks WHERE id = ${id}),
        bump AS (${bump(userId, sql`EXISTS (SELECT 1 FROM target WHERE user_id = ${userId})`)}),
        changed AS (
          UPDATE tasks SET
            title = COALESCE(${changes.title ?? null}::text, title),
            status = COALESCE(${status}::text, status),
            notes = COALESCE(${changes.notes ?? null}::text, notes),
            due_date = CASE WHEN ${changes.due_date !== undefined} THEN ${changes.due_date ?? null}::date ELSE due_date END,
            completed_at = CASE
              WHEN ${status}::text = 'completed' AND tasks.status <> 'completed' THEN ${nextUpdatedAt}
              WHEN ${status}::text = 'pending' THEN NULL
              ELSE completed_at END,
            updated_at = ${nextUpdatedAt},
            change_seq = bump.change_seq
          FROM bump
          WHERE tasks.id = ${id} AND tasks.user_id = ${userId} ${holds(precondition)}
          RETURNING ${COLS}
        )
        SELECT target.user_id AS owner_id, changed.*, (SELECT pg_notify(${CHANNEL}, ${userId}) FROM changed) AS notified
        FROM (SELECT 1) AS one
        LEFT JOIN target ON true
        LEFT JOIN changed ON true`);
      return toLookup(row, userId, precondition);
    },

    /**
     * Moves the caller's task in their manual order: one call of todo_move_task (sql/0003),
     * which locks the user's row before it reads the neighbours, so that concurrent moves
     * always see each other's keys, and renumbers the user's keys when one would grow too long.
     */
    async move(deadline: Deadline, userId: string, id: string, to: MoveRequest, precondition: Precondition | undefined): Promise<MoveOutcome> {
      const [row] = await deadline.run(sql<(LookupRow & { outcome: MoveOutcome['kind'] })[]>`
        SELECT m.*, CASE WHEN m.outcome = 'found' THEN pg_notify(${CHANNEL}, ${userId}) END AS notified
        FROM todo_move_task(${userId}, ${id}::uuid, ${'before' in to ? to.before : null}::uuid, ${'after' in to ? to.after : null}::uuid,
          ${'to' in to ? to.to : null}::text,
          ${precondition !== undefined}, ${precondition?.any ?? false}, ${precondition?.updatedAt ?? []}::timestamptz[]) AS m`);
      if (!row) throw new Error('todo_move_task gave no row');
      if (row.outcome === 'found') return { kind: 'found', task: toTask(row as Task) };
      return { kind: row.outcome } as MoveOutcome;
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
        ),
        ${forgetClientIds(userId)}
        SELECT (SELECT user_id FROM target) AS owner_id, EXISTS (SELECT 1 FROM deleted) AS deleted,
          (SELECT pg_notify(${CHANNEL}, ${userId}) FROM deleted) AS notified`);
      if (!row || row.owner_id === null) return 'missing';
      if (row.owner_id !== userId) return 'forbidden';
      if (row.deleted) return 'found';
      return precondition ? 'precondition-failed' : 'missing';
    },

    /** "Mark all as done" (or undo): only tasks whose status really changes are touched, completed_at with them. */
    async setStatusOfAll(deadline: Deadline, userId: string, status: TaskStatus, only: TaskStatus | undefined): Promise<number> {
      const targets = sql`tasks.user_id = ${userId} AND tasks.status <> ${status} ${only ? sql`AND tasks.status = ${only}` : NOTHING}`;
      const [row] = await deadline.run(sql<{ count: number }[]>`
        WITH bump AS (${bump(userId, sql`EXISTS (SELECT 1 FROM tasks WHERE ${targets})`)}),
        changed AS (
          UPDATE tasks SET status = ${status}, updated_at = ${nextUpdatedAt}, change_seq = bump.change_seq,
            completed_at = ${status === 'completed' ? nextUpdatedAt : sql`NULL`}
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
        ),
        ${forgetClientIds(userId)}
        SELECT count(*)::int AS count, (SELECT pg_notify(${CHANNEL}, ${userId}) FROM bump) AS notified FROM deleted`);
      return row?.count ?? 0;
    },

    /**
     * The caller's tasks by status in one statement (an index-only scan); with the client's
     * `today`, also the pending ones overdue and due today, compared as due ranks (so the
     * status + due index covers them too).
     */
    async counts(deadline: Deadline, userId: string, today: string | undefined): Promise<TaskCounts> {
      const [row] = await deadline.run(sql<TaskCounts[]>`
        SELECT count(*) FILTER (WHERE status = 'pending')::int AS pending,
               count(*) FILTER (WHERE status = 'completed')::int AS completed,
               count(*)::int AS total
               ${today === undefined ? NOTHING : sql`,
               count(*) FILTER (WHERE status = 'pending' AND ${RANK} > DATE '1970-01-01' - ${today}::date)::int AS overdue,
               count(*) FILTER (WHERE status = 'pending' AND ${RANK} = DATE '1970-01-01' - ${today}::date)::int AS due_today`}
        FROM tasks WHERE user_id = ${userId}`);
      return row ?? { pending: 0, completed: 0, total: 0, ...(today !== undefined && { overdue: 0, due_today: 0 }) };
    },
  };
}

export type TaskQueries = ReturnType<typeof createTaskQueries>;
