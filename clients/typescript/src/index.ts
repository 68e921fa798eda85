/**
 * @todo-api/client: the todo-api's contract as types, and a thin wrapper over
 * openapi-fetch with what a frontend needs on top: a bearer token per request,
 * errors as a union discriminated on `code`, paging through `next_cursor`, an
 * Idempotency-Key per create (unless the client chose the task's id),
 * If-Match from the ETag a task came with, and the change feed and its stream as
 * async iterators.
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
export type TaskCounts = Schemas['TaskCounts'];
export type BulkUpdateRequest = Schemas['BulkUpdateRequest'];
export type BulkUpdateResult = Schemas['BulkUpdateResult'];
export type BulkDeleteResult = Schemas['BulkDeleteResult'];
export type Change = Schemas['Change'];
export type ChangePage = Schemas['ChangePage'];
type Query<K extends keyof operations> = NonNullable<operations[K]['parameters']['query']>;
/** `status`, `sort`, `due_before`, `due_after`, `has_due`, `q`, `limit`, `cursor`. */
export type ListTasksQuery = Query<'listTasks'>;
/** `since` (a `next_since`; none for a full sync) and `limit`. */
export type ChangesQuery = Query<'listChanges'>;

export type StreamOptions = Query<'streamChanges'> & {
  /** Aborting it ends the iteration (and its request). */
  signal?: AbortSignal;
  /** The wait before reconnect number `attempt` (0, 1, ...; 0 again after a connection succeeded). */
  retryMs?: (attempt: number) => number;
};

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
  readonly status: number;
  readonly body: ApiErrorBody;
  readonly response: Response;
  constructor(status: number, body: ApiErrorBody, response: Response) {
    super(`${status} ${body.code}: ${body.message}`);
    this.status = status;
    this.body = body;
    this.response = response;
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
  /** Pending, completed and total; with `today` (the client's date) also overdue and due_today. */
  counts(query?: Query<'countTasks'>): Promise<TaskCounts>;
  /** Sets `status` on all tasks, or on those with `query.status` ("mark all as done"). */
  updateTasks(body: BulkUpdateRequest, query?: Query<'updateTasks'>): Promise<BulkUpdateResult>;
  /** Deletes all tasks with `query.status` ("clear completed"). */
  deleteTasks(query: Query<'deleteTasks'>): Promise<BulkDeleteResult>;
  /** One page of the change feed (GET /api/tasks/changes). */
  changePage(query?: ChangesQuery): Promise<ChangePage>;
  /** The change feed from `since`, page by page, until a page has `has_more: false`. */
  changes(options?: ChangesQuery): AsyncIterableIterator<ChangePage>;
  /**
   * The live change stream's pages, without end: reconnects (with backoff, resuming from the
   * last `next_since`) after a network failure, a 5xx or the end of the body; waits Retry-After
   * on a 429. Throws a TodoApiError on any other 4xx (410 SYNC_EXPIRED: do a full sync).
   * Ends when `signal` aborts; leaving the loop closes the request too.
   */
  stream(options?: StreamOptions): AsyncIterableIterator<ChangePage>;
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

/** The error for a non-2xx answer, from its `{"error": {...}}` envelope when it has one. */
function apiError(response: Response, envelope: unknown): TodoApiError {
  const body = (envelope as { error?: ApiErrorBody } | undefined)?.error;
  return new TodoApiError(response.status, body ?? { code: 'INTERNAL_ERROR', message: `HTTP ${response.status}`, details: null }, response);
}

/** 250 ms doubling to 10 s, each wait a random 50-100 % of that. */
const backoff = (attempt: number) => Math.min(250 * 2 ** attempt, 10_000) * (0.5 + Math.random() / 2);

/** Retry-After (seconds or a date) in ms, if the response has one. */
function retryAfter(response: Response): number | undefined {
  const value = response.headers.get('retry-after');
  if (value === null) return undefined;
  const ms = /^\d+$/.test(value) ? Number(value) * 1000 : Date.parse(value) - Date.now();
  return Number.isNaN(ms) ? undefined : Math.max(ms, 0);
}

/** Resolves after `ms`, or at once when `signal` aborts. */
const sleep = (ms: number, signal: AbortSignal | undefined) =>
  new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, signal?.aborted ? 0 : ms);
    signal?.addEventListener('abort', done);
  });

/** The data of each `changes` event of a server-sent event stream; comments (keep-alives) are skipped. */
async function* events(reader: ReadableStreamDefaultReader<Uint8Array>): AsyncGenerator<ChangePage> {
  const decoder = new TextDecoder();
  let buffer = '';
  let event = '';
  let data: string[] = [];
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    for (let end: number; (end = buffer.indexOf('\n')) >= 0; ) {
      const line = buffer.slice(0, end).replace(/\r$/, '');
      buffer = buffer.slice(end + 1);
      if (line === '') {
        if (event === 'changes' && data.length > 0) yield JSON.parse(data.join('\n')) as ChangePage;
        event = '';
        data = [];
      } else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
      else if (line.startsWith('event:')) event = line.slice(6).trim();
    }
  }
}

export function createTodoClient(options: TodoClientOptions): TodoClient {
  const baseUrl = options.baseUrl.replace(/\/+$/, '');
  const api = createClient<paths>({ baseUrl, ...(options.fetch !== undefined && { fetch: options.fetch }) });
  const bearer = async () => (options.getToken ? await options.getToken() : options.token);
  const auth: Middleware = {
    async onRequest({ request }) {
      const token = await bearer();
      if (token !== undefined && !request.headers.has('authorization')) request.headers.set('Authorization', `Bearer ${token}`);
      return request;
    },
  };
  api.use(auth);

  /** A GET as openapi-fetch would send it (base URL, token), for what it cannot do: read a stream. */
  async function authorized(path: string, query: Record<string, string | undefined>, signal: AbortSignal): Promise<Request> {
    const search = new URLSearchParams(Object.entries(query).filter((e): e is [string, string] => e[1] !== undefined)).toString();
    const token = await bearer();
    return new Request(`${baseUrl}${path}${search && `?${search}`}`, {
      headers: { Accept: 'text/event-stream', ...(token !== undefined && { Authorization: `Bearer ${token}` }) },
      signal,
    });
  }

  /** The data of a 2xx answer (its ETag remembered), or a TodoApiError. */
  function unwrap<T>(result: { data?: T; error?: unknown; response: Response }): T {
    const { response } = result;
    if (!response.ok) throw apiError(response, result.error);
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
    async counts(query = {}) {
      return unwrap(await api.GET('/api/tasks/counts', { params: { query } }));
    },
    async updateTasks(body, query = {}) {
      return unwrap(await api.PATCH('/api/tasks', { params: { query }, body }));
    },
    async deleteTasks(query) {
      return unwrap(await api.DELETE('/api/tasks', { params: { query } }));
    },
    async changePage(query = {}) {
      return unwrap(await api.GET('/api/tasks/changes', { params: { query } }));
    },
    async *changes(query = {}) {
      for (let q = query; ; ) {
        const page: ChangePage = await client.changePage(q);
        yield page;
        if (!page.has_more) return;
        q = { ...query, since: page.next_since };
      }
    },
    async *stream({ since, signal, retryMs = backoff } = {}) {
      for (let attempt = 0; !signal?.aborted; ) {
        const connection = new AbortController();
        let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
        const close = () => {
          connection.abort();
          reader?.cancel().catch(() => {});
        };
        signal?.addEventListener('abort', close);
        let wait: number | undefined;
        let request: Request | undefined;
        try {
          request = await authorized('/api/tasks/changes/stream', { since }, connection.signal);
          const response = await (options.fetch ?? fetch)(request);
          if (response.ok && response.body) {
            attempt = 0;
            reader = response.body.getReader();
            for await (const page of events(reader)) {
              since = page.next_since;
              yield page;
              if (signal?.aborted) return;
            }
          } else if (response.status >= 500 || response.status === 429) {
            wait = retryAfter(response);
            response.body?.cancel().catch(() => {});
          } else {
            throw apiError(response, await response.json().catch(() => undefined));
          }
        } catch (err) {
          // getToken's errors are the caller's, as in every method.
          if (err instanceof TodoApiError || request === undefined) throw err;
          // A network failure, a cut connection or the signal: reconnect from `since` (below) unless aborted.
        } finally {
          signal?.removeEventListener('abort', close);
          close();
        }
        await sleep(wait ?? retryMs(attempt++), signal);
      }
    },
  };
  return client;
}

export { createTodoStore, type Conflict, type StoreError, type TodoStore, type TodoStoreOptions } from './store/store.js';
export { fileStorage, indexedDbStorage, memoryStorage, type SavedState, type TodoStorage } from './store/storage.js';
export type { Fields, Mutation } from './store/outbox.js';
