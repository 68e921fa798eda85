import type { Handlers } from '../contract/handlers.ts';
import type { Sql } from '../db/client.ts';
import { forbidden, notFound } from '../errors.ts';
import { decodeCursor, encodeCursor } from './cursor.ts';
import { createTaskQueries, type Lookup, type Task } from './queries.ts';

type TaskHandlers = Pick<Handlers, 'listTasks' | 'createTask' | 'getTask' | 'replaceTask' | 'updateTask' | 'deleteTask'>;

/** The default page size; the contract states the same default for `limit`. */
export const DEFAULT_LIMIT = 50;

function found(lookup: Lookup): Task {
  if (lookup.kind === 'missing') throw notFound();
  if (lookup.kind === 'forbidden') throw forbidden();
  return lookup.task;
}

/** The /api/tasks operations. Titles arrive trimmed and validated (see app.ts). */
export function createTaskHandlers(sql: Sql): TaskHandlers {
  const tasks = createTaskQueries(sql);

  return {
    async listTasks({ caller, query }) {
      const limit = query.limit ?? DEFAULT_LIMIT;
      const after = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
      const page = await tasks.list(caller.id, { status: query.status, after, limit });
      const last = page.tasks.at(-1);
      return {
        status: 200,
        body: {
          items: page.tasks,
          next_cursor: page.more && last ? encodeCursor({ createdAt: last.created_at, id: last.id }) : null,
        },
      };
    },

    async createTask({ caller, body, log }) {
      const task = await tasks.create(caller, body.title);
      log.info({ taskId: task.id, userId: caller.id }, 'task created');
      return { status: 201, body: task, headers: { location: `/api/tasks/${task.id}` } };
    },

    async getTask({ caller, params }) {
      return { status: 200, body: found(await tasks.get(caller.id, params.id)) };
    },

    async replaceTask({ caller, params, body }) {
      return { status: 200, body: found(await tasks.update(caller.id, params.id, { title: body.title })) };
    },

    async updateTask({ caller, params, body }) {
      const changes = {
        ...(body.title !== undefined && { title: body.title }),
        ...(body.status !== undefined && { status: body.status }),
      };
      return { status: 200, body: found(await tasks.update(caller.id, params.id, changes)) };
    },

    async deleteTask({ caller, params, log }) {
      const outcome = await tasks.remove(caller.id, params.id);
      if (outcome === 'missing') throw notFound();
      if (outcome === 'forbidden') throw forbidden();
      log.info({ taskId: params.id, userId: caller.id }, 'task deleted');
      return { status: 204 };
    },
  };
}
