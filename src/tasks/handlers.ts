import type { Handlers } from '../contract/handlers.ts';
import type { Sql } from '../db/client.ts';
import { ApiError, forbidden, idConflict, idempotencyKeyReused, invalidField, notFound, preconditionFailed } from '../errors.ts';
import { listedIn, pageEtag, parseIfMatch, taskEtag } from './etag.ts';
import { createTaskQueries, type Lookup, type NewTask, type StoredCreate, type Task } from './queries.ts';
import { decodeCursor, encodeCursor, KEY_OF } from './search.ts';

type TaskHandlers = Pick<
  Handlers,
  'listTasks' | 'createTask' | 'getTask' | 'replaceTask' | 'updateTask' | 'moveTask' | 'deleteTask' | 'updateTasks' | 'deleteTasks' | 'countTasks'
>;

/** The default page size; the contract states the same default for `limit`. */
export const DEFAULT_LIMIT = 50;

function found(lookup: Lookup): Task {
  switch (lookup.kind) {
    case 'found':
      return lookup.task;
    case 'forbidden':
      throw forbidden();
    case 'precondition-failed':
      throw preconditionFailed();
    case 'missing':
      throw notFound();
  }
}

/** The one-task answer: the task with its ETag. */
const withEtag = (status: 200, task: Task) => ({ status, body: task, headers: { etag: taskEtag(task.updated_at) } });

/** The 201 an Idempotency-Key or client id first answered, exactly: a new task's body follows from what was stored. */
function replayed(userId: string, stored: StoredCreate): Task {
  const at = stored.created_at;
  return {
    id: stored.task_id,
    title: stored.title,
    status: 'pending',
    user_id: userId,
    created_at: at,
    updated_at: at,
    notes: stored.notes,
    due_date: stored.due_date,
    completed_at: null,
    position: stored.position,
  };
}

const sameFields = (a: NewTask, b: NewTask) => a.title === b.title && a.notes === b.notes && a.due_date === b.due_date;

/**
 * The key a create is claimed under: the client's id (lower case, as stored) is its own
 * key; an Idempotency-Key sent with it must name the same UUID.
 */
function claimKey(id: string | undefined, header: string | undefined): string | undefined {
  if (id === undefined) return header;
  if (header !== undefined && header.toLowerCase() !== id) {
    throw new ApiError(
      422,
      'IDEMPOTENCY_KEY_REUSED',
      'An Idempotency-Key sent with an id must be that same id (the id is its own idempotency key); send one of them, or both alike.',
    );
  }
  return id;
}

/** The /api/tasks operations. Bodies arrive validated against the contract; titles are stored trimmed. */
export function createTaskHandlers(sql: Sql): TaskHandlers {
  const tasks = createTaskQueries(sql);

  return {
    async listTasks({ caller, query, headers, deadline }) {
      const limit = query.limit ?? DEFAULT_LIMIT;
      const after = query.cursor === undefined ? undefined : decodeCursor(query, query.cursor);
      const page = await tasks.list(deadline, caller.id, query, after, limit);
      const last = page.tasks.at(-1);
      const nextCursor = page.more && last ? encodeCursor(query, KEY_OF[query.sort ?? 'created'](last)) : null;
      const etag = pageEtag(page.tasks, nextCursor);
      if (listedIn(headers['If-None-Match'], etag)) return { status: 304, headers: { etag } };
      return { status: 200, body: { items: page.tasks, next_cursor: nextCursor }, headers: { etag } };
    },

    async createTask({ caller, body, headers, deadline }) {
      const id = body.id?.toLowerCase();
      const key = claimKey(id, headers['Idempotency-Key']);
      const fields: NewTask = { title: body.title.trim(), notes: body.notes ?? '', due_date: body.due_date ?? null };
      const outcome = await tasks.create(deadline, caller, fields, key, id);
      if (outcome.kind === 'id-conflict') throw idConflict();
      if (outcome.kind === 'replay') {
        // "The same request" is the same fields after trimming (and, with an id, the same task).
        if (id !== undefined && (outcome.stored.task_id !== id || !sameFields(outcome.stored, fields))) throw idConflict();
        if (!sameFields(outcome.stored, fields)) throw idempotencyKeyReused();
        const task = replayed(caller.id, outcome.stored);
        return {
          status: 201,
          body: task,
          headers: { location: `/api/tasks/${task.id}`, etag: taskEtag(task.updated_at), 'idempotent-replayed': 'true' },
          logFields: { taskId: task.id, replayed: id === undefined ? 'Idempotency-Key' : 'client id' },
        };
      }
      const { task } = outcome;
      return { status: 201, body: task, headers: { location: `/api/tasks/${task.id}`, etag: taskEtag(task.updated_at) }, logFields: { taskId: task.id } };
    },

    async getTask({ caller, params, headers, deadline }) {
      const task = found(await tasks.get(deadline, caller.id, params.id));
      const etag = taskEtag(task.updated_at);
      if (listedIn(headers['If-None-Match'], etag)) return { status: 304, headers: { etag } };
      return { status: 200, body: task, headers: { etag } };
    },

    async replaceTask({ caller, params, body, headers, deadline }) {
      const precondition = parseIfMatch(headers['If-Match']);
      return withEtag(200, found(await tasks.update(deadline, caller.id, params.id, { title: body.title.trim() }, precondition)));
    },

    async updateTask({ caller, params, body, headers, deadline }) {
      const changes = {
        ...(body.title !== undefined && { title: body.title.trim() }),
        ...(body.status !== undefined && { status: body.status }),
        ...(body.notes !== undefined && { notes: body.notes }),
        ...(body.due_date !== undefined && { due_date: body.due_date }),
      };
      const precondition = parseIfMatch(headers['If-Match']);
      return withEtag(200, found(await tasks.update(deadline, caller.id, params.id, changes, precondition)));
    },

    async moveTask({ caller, params, body, headers, deadline }) {
      const [neighbour, id] = 'before' in body ? ['before', body.before] : 'after' in body ? ['after', body.after] : [undefined, undefined];
      if (neighbour && id.toLowerCase() === params.id.toLowerCase()) throw invalidField('body', neighbour, 'must be another task than the one moved');
      const outcome = await tasks.move(deadline, caller.id, params.id, body, parseIfMatch(headers['If-Match']));
      // Never say whether the neighbour does not exist or is someone else's.
      if (outcome.kind === 'bad-neighbour') throw invalidField('body', neighbour ?? 'before', 'must be the id of one of your tasks');
      return withEtag(200, found(outcome));
    },

    async updateTasks({ caller, query, body, deadline }) {
      const updated = await tasks.setStatusOfAll(deadline, caller.id, body.status, query.status);
      return { status: 200, body: { updated }, logFields: { setStatus: body.status, ofStatus: query.status, updated } };
    },

    async deleteTasks({ caller, query, deadline }) {
      const deleted = await tasks.removeAllWithStatus(deadline, caller.id, query.status);
      return { status: 200, body: { deleted }, logFields: { ofStatus: query.status, deleted } };
    },

    async countTasks({ caller, query, deadline }) {
      return { status: 200, body: await tasks.counts(deadline, caller.id, query.today) };
    },

    async deleteTask({ caller, params, headers, deadline }) {
      const kind = await tasks.remove(deadline, caller.id, params.id, parseIfMatch(headers['If-Match']));
      if (kind !== 'found') found({ kind });
      return { status: 204, logFields: { taskId: params.id } };
    },
  };
}
