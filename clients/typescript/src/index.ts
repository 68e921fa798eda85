/**
 * @todo-api/client: the todo-api's contract as types, and a thin wrapper over
 * openapi-fetch with what a frontend needs on top: a bearer token per request,
 * errors as a union discriminated on `code`, paging through `next_cursor`, an
 * Idempotency-Key per create (unless the client chose the task's id), and
 * If-Match from the ETag a task came with.
 */
import createClient, { type Client, type Middleware } from 'openapi-fetch';
import type { components, operations, paths } from './generated/openapi.js';

export type { components, operations, paths };

type Schemas = components['schemas'];
export type Task = Schemas['Task'];
export type TaskStatus = Schemas['TaskStatus'];
export type TaskPage = Schemas['TaskPage'];
export type FieldError = Schemas['FieldError'];
export type ErrorCode = Schemas['ErrorBody']['code'];
export type CreateTaskRequest = Schemas['CreateTaskRequest'];
export type ReplaceTaskRequest = Schemas['ReplaceTaskRequest'];
export type UpdateTaskRequest = Schemas['UpdateTaskRequest'];
export type MoveTaskRequest = Schemas['MoveTaskRequest'];
/** `status`, `sort`, `due_before`, `due_after`, `has_due`, `q`, `limit`, `cursor`. */
export type ListTasksQuery = NonNullable<operations['listTasks']['parameters']['query']>;

type AnyKey<T> = T extends unknown ? keyof T : never;
/**
 * Where a move puts the task: exactly one of `{ before }`, `{ after }` or `{ to }`. The
 * contract's oneOf made exclusive: TypeScript lets `{ before, after }` pass a plain union.
 */
export type MoveTarget = MoveTaskRequest extends infer M
  ? M extends unknown
    ? M & { [K in Exclude<AnyKey<MoveTaskRequest>, keyof M>]?: never }
    : never
  : never;

/**
 * The body of every error, `{"error": {...}}`'s inner object, discriminated on `code`:
 * `details` lists the failing fields of a VALIDATION_ERROR.
 */
export type ApiErrorBody = {
  [C in ErrorCode]: Omit<Schemas['ErrorBody'], 'code' | 'details'> & {
    code: C;
    details: C extends 'VALIDATION_ERROR' ? FieldError[] : FieldError[] | null;
  };
}[ErrorCode];

/** A non-2xx answer. `body.code` is the thing to branch on; `body.message` is for developers. */
export class TodoApiError extends Error {
  override readonly name = 'TodoApiError';
  constructor(
    readonly status: number,
    readonly body: ApiErrorBody,
    readonly response: Response,
  ) {
    super(`${status} ${body.code}: ${body.message}`);
  }
}

export interface TodoClientOptions {
  /** Where the API is, e.g. `http://localhost:8000`. */
  baseUrl: string;
  /** A fixed bearer token ... */
  token?: string;
  /** ... or a function asked before every request (for tokens that expire). */
  getToken?: () => string | undefined | Promise<string | undefined>;
  /** Another fetch (tests, instrumentation); defaults to the global one. */
  fetch?: (input: Request) => Promise<Response>;
}

export interface WriteOptions {
  /** Send If-Match with this ETag; by default the one the task object came with, if any. */
  ifMatch?: string;
}

export interface CreateOptions {
  /**
   * Reuse a key to retry a create safely; by default a fresh one per call. A body with
   * its own `id` is sent without one (the id is its own idempotency key; a key sent with
   * an `id` must be that same UUID).
   */
  idempotencyKey?: string;
}

export interface TodoClient {
  /** The openapi-fetch client (typed by the contract), with the token applied. */
  readonly api: Client<paths>;
  health(): Promise<Schemas['Health']>;
  listTasks(query?: ListTasksQuery): Promise<TaskPage>;
  /** Every page, following `next_cursor` until it is null. */
  pages(query?: Omit<ListTasksQuery, 'cursor'>): AsyncIterableIterator<TaskPage>;
  /** Every task across all pages, in the query's order (newest first by default). */
  tasks(query?: Omit<ListTasksQuery, 'cursor'>): AsyncIterableIterator<Task>;
  /** With `body.id` (a UUID of your own) it can be made offline and sent later; a taken id is 409 ID_CONFLICT. */
  createTask(body: CreateTaskRequest, options?: CreateOptions): Promise<Task>;
  getTask(id: string): Promise<Task>;
  replaceTask(task: Task | string, body: ReplaceTaskRequest, options?: WriteOptions): Promise<Task>;
  updateTask(task: Task | string, body: UpdateTaskRequest, options?: WriteOptions): Promise<Task>;
  deleteTask(task: Task | string, options?: WriteOptions): Promise<void>;
  /** Drag and drop: just before or after another of your tasks, or to the top or bottom; the moved task (new `position`). */
  moveTask(task: Task | string, target: MoveTarget, options?: WriteOptions): Promise<Task>;
}

/** The ETag each task object arrived with (tasks stay plain JSON objects). */
const etags = new WeakMap<object, string>();

/** The ETag the server sent with this task object, if it sent one. */
export function etagOf(task: Task): string | undefined {
  return etags.get(task);
}

function newIdempotencyKey(): string {
  return globalThis.crypto.randomUUID();
}

export function createTodoClient(options: TodoClientOptions): TodoClient {
  const api = createClient<paths>({
    baseUrl: options.baseUrl.replace(/\/+$/, ''),
    ...(options.fetch !== undefined && { fetch: options.fetch }),
  });
  const auth: Middleware = {
    async onRequest({ request }) {
      const token = options.getToken ? await options.getToken() : options.token;
      if (token !== undefined && !request.headers.has('authorization')) request.headers.set('Authorization', `Bearer ${token}`);
      return request;
    },
  };
  api.use(auth);

  /** The data of a 2xx answer (its ETag remembered), or a TodoApiError. */
  function unwrap<T>(result: { data?: T; error?: unknown; response: Response }): T {
    const { response } = result;
    if (!response.ok) {
      const envelope = result.error as { error?: ApiErrorBody } | undefined;
      const body: ApiErrorBody = envelope?.error ?? { code: 'INTERNAL_ERROR', message: `HTTP ${response.status}`, details: null };
      throw new TodoApiError(response.status, body, response);
    }
    const data = result.data as T;
    const etag = response.headers.get('etag');
    if (etag !== null && typeof data === 'object' && data !== null) etags.set(data, etag);
    return data;
  }

  const idOf = (task: Task | string) => (typeof task === 'string' ? task : task.id);
  const conditional = (task: Task | string, o: WriteOptions = {}): Record<string, string> => {
    const etag = o.ifMatch ?? (typeof task === 'string' ? undefined : etags.get(task));
    return etag === undefined ? {} : { 'If-Match': etag };
  };

  const client: TodoClient = {
    api,
    async health() {
      return unwrap(await api.GET('/health'));
    },
    async listTasks(query = {}) {
      return unwrap(await api.GET('/api/tasks', { params: { query } }));
    },
    async *pages(query = {}) {
      let cursor: string | undefined;
      do {
        const page: TaskPage = await client.listTasks({ ...query, ...(cursor !== undefined && { cursor }) });
        yield page;
        cursor = page.next_cursor ?? undefined;
      } while (cursor !== undefined);
    },
    async *tasks(query = {}) {
      for await (const page of client.pages(query)) yield* page.items;
    },
    async createTask(body, o = {}) {
      const key = o.idempotencyKey ?? (body.id === undefined ? newIdempotencyKey() : undefined);
      const headers: Record<string, string> = key === undefined ? {} : { 'Idempotency-Key': key };
      return unwrap(await api.POST('/api/tasks', { body, headers }));
    },
    async getTask(id) {
      return unwrap(await api.GET('/api/tasks/{id}', { params: { path: { id } } }));
    },
    async replaceTask(task, body, o) {
      return unwrap(await api.PUT('/api/tasks/{id}', { params: { path: { id: idOf(task) } }, body, headers: conditional(task, o) }));
    },
    async updateTask(task, body, o) {
      return unwrap(await api.PATCH('/api/tasks/{id}', { params: { path: { id: idOf(task) } }, body, headers: conditional(task, o) }));
    },
    async deleteTask(task, o) {
      unwrap(await api.DELETE('/api/tasks/{id}', { params: { path: { id: idOf(task) } }, headers: conditional(task, o) }));
    },
    async moveTask(task, target, o) {
      return unwrap(await api.POST('/api/tasks/{id}/move', { params: { path: { id: idOf(task) } }, body: target, headers: conditional(task, o) }));
    },
  };
  return client;
}
