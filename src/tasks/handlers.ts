import type { Handlers } from '../contract/handlers.ts';
import type { Sql } from '../db/client.ts';
import { forbidden, idempotencyKeyReused, notFound, preconditionFailed } from '../errors.ts';
import { decodeCursor, encodeCursor } from './cursor.ts';
import { listedIn, pageEtag, parseIfMatch, taskEtag } from './etag.ts';
import { createTaskQueries, type Lookup, type StoredCreate, type Task } from './queries.ts';

type TaskHandlers = Pick<
  Handlers,
  'listTasks' | 'createTask' | 'getTask' | 'replaceTask' | 'updateTask' | 'deleteTask' | 'updateTasks' | 'deleteTasks' | 'countTasks'
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

/** The 201 an Idempotency-Key first answered, exactly: a new task's body follows from what was stored. */
function replayed(userId: string, stored: StoredCreate): Task {
  const at = stored.created_at;
  return { id: stored.task_id, title: stored.title, status: 'pending', user_id: userId, created_at: at, updated_at: at };
}

/** The /api/tasks operations. Titles arrive trimmed and validated (see app.ts). */
export function createTaskHandlers(sql: Sql): TaskHandlers {
  const tasks = createTaskQueries(sql);

  return {
    async listTasks({ caller, query, headers, deadline }) {
      const limit = query.limit ?? DEFAULT_LIMIT;
      const after = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
      const page = await tasks.list(deadline, caller.id, { status: query.status, after, limit });
      const last = page.tasks.at(-1);
      const nextCursor = page.more && last ? encodeCursor({ createdAt: last.created_at, id: last.id }) : null;
      const etag = pageEtag(page.tasks, nextCursor);
      if (listedIn(headers['If-None-Match'], etag)) return { status: 304, headers: { etag } };
      return { status: 200, body: { items: page.tasks, next_cursor: nextCursor }, headers: { etag } };
    },

    async createTask({ caller, body, headers, deadline, log }) {
      const key = headers['Idempotency-Key'];
      const outcome = await tasks.create(deadline, caller, body.title, key);
      if (outcome.kind === 'replay') {
        // "The same request" is the same title after trimming; anything else reuses the key.
        if (outcome.stored.title !== body.title) throw idempotencyKeyReused();
        const task = replayed(caller.id, outcome.stored);
        log.info({ taskId: task.id, userId: caller.id }, 'task create replayed (Idempotency-Key)');
        return {
          status: 201,
          body: task,
          headers: { location: `/api/tasks/${task.id}`, etag: taskEtag(task.updated_at), 'idempotent-replayed': 'true' },
        };
      }
      const { task } = outcome;
      log.info({ taskId: task.id, userId: caller.id }, 'task created');
      return { status: 201, body: task, headers: { location: `/api/tasks/${task.id}`, etag: taskEtag(task.updated_at) } };
    },

    async getTask({ caller, params, headers, deadline }) {
      const task = found(await tasks.get(deadline, caller.id, params.id));
      const etag = taskEtag(task.updated_at);
      if (listedIn(headers['If-None-Match'], etag)) return { status: 304, headers: { etag } };
      return { status: 200, body: task, headers: { etag } };
    },

    async replaceTask({ caller, params, body, headers, deadline }) {
      const precondition = parseIfMatch(headers['If-Match']);
      return withEtag(200, found(await tasks.update(deadline, caller.id, params.id, { title: body.title }, precondition)));
    },

    async updateTask({ caller, params, body, headers, deadline }) {
      const changes = {
        ...(body.title !== undefined && { title: body.title }),
        ...(body.status !== undefined && { status: body.status }),
      };
      const precondition = parseIfMatch(headers['If-Match']);
      return withEtag(200, found(await tasks.update(deadline, caller.id, params.id, changes, precondition)));
    },

    async updateTasks({ caller, query, body, deadline, log }) {
      const updated = await tasks.setStatusOfAll(deadline, caller.id, body.status, query.status);
      log.info({ userId: caller.id, status: body.status, updated }, 'tasks updated in bulk');
      return { status: 200, body: { updated } };
    },

    async deleteTasks({ caller, query, deadline, log }) {
      const deleted = await tasks.removeAllWithStatus(deadline, caller.id, query.status);
      log.info({ userId: caller.id, status: query.status, deleted }, 'tasks deleted in bulk');
      return { status: 200, body: { deleted } };
    },

    async countTasks({ caller, deadline }) {
      return { status: 200, body: await tasks.counts(deadline, caller.id) };
    },

    async deleteTask({ caller, params, headers, deadline, log }) {
      const kind = await tasks.remove(deadline, caller.id, params.id, parseIfMatch(headers['If-Match']));
      if (kind !== 'found') found({ kind });
      log.info({ taskId: params.id, userId: caller.id }, 'task deleted');
      return { status: 204 };
    },
  };
}
