/**
 * An offline-first store on the API's plain REST + SSE contract: a local replica,
 * optimistic mutations in a durable outbox, replay exactly once (client ids, If-Match,
 * idempotent deletes), rebase on what others changed, conflicts reported field by field.
 */
import { createTodoClient, TodoApiError, type ListTasksQuery, type MoveTarget, type Task, type TodoClientOptions } from '../index.js';
import { apply, subject, type Fields, type Mutation } from './outbox.js';
import { memoryStorage, type SavedState, type TodoStorage } from './storage.js';

export interface TodoStoreOptions extends Pick<TodoClientOptions, 'baseUrl' | 'getToken' | 'fetch'> {
  /** Where the replica, the outbox and the sync position live (default: memoryStorage()). */
  storage?: TodoStorage;
  /** Follow the change stream (default); false: pull only when sync() is called. */
  live?: boolean;
}

export interface Conflict {
  id: string;
  /** `field`: someone else changed a field this store changed too (theirs stays); `deleted`: the task is gone. */
  kind: 'field' | 'deleted';
  field?: keyof Fields;
  local?: unknown;
  server?: unknown;
}

export interface StoreError {
  /** The mutation the server refused for good (it was dropped; the server's state stands). */
  mutation: Mutation;
  error: unknown;
}

type Events = { conflict: Conflict; error: StoreError; change: undefined };

export interface TodoStore {
  /** Resolves once the saved state is loaded. */
  readonly ready: Promise<void>;
  /** The local view, with the same order and filters as GET /api/tasks. */
  tasks(query?: Pick<ListTasksQuery, 'status' | 'sort' | 'q'>): Task[];
  get(id: string): Task | undefined;
  /** For React's useSyncExternalStore: a new array whenever the view changes, else the same one. */
  subscribe(listener: () => void): () => void;
  getSnapshot(): readonly Task[];
  create(fields: { title: string; notes?: string; due_date?: string | null }): Task;
  update(id: string, fields: Fields): void;
  move(id: string, to: MoveTarget): void;
  remove(id: string): void;
  completeAll(): void;
  clearCompleted(): void;
  /** Mutations not yet acknowledged by the server. */
  readonly pendingCount: number;
  /**
   * Resolves once every change made so far is in storage; rejects with the error of the
   * latest save if that one failed. IndexedDB commits a few milliseconds after the call:
   * await this before a reload or navigation the app starts itself.
   */
  saved(): Promise<void>;
  on<E extends keyof Events>(event: E, listener: (payload: Events[E]) => void): () => void;
  /** Pushes everything queued, then pulls until has_more is false; rejects if the server cannot be reached. */
  sync(): Promise<void>;
  close(): Promise<void>;
}

const SORTS = {
  created: (a: Task, b: Task) => cmp(b.created_at, a.created_at) || cmp(b.id, a.id),
  position: (a: Task, b: Task) => cmp(a.position, b.position),
  due: (a: Task, b: Task) =>
    (a.due_date === null ? 1 : 0) - (b.due_date === null ? 1 : 0) || cmp(a.due_date ?? '', b.due_date ?? '') || SORTS.created(a, b),
  updated: (a: Task, b: Task) => cmp(b.updated_at, a.updated_at) || cmp(b.id, a.id),
};
function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Whether retrying can help: the network, the server's own trouble, or a limit. */
const transient = (err: unknown) => !(err instanceof TodoApiError) || err.status >= 500 || err.status === 429 || err.status === 401;
const retryAfterMs = (err: unknown) => {
  const s = err instanceof TodoApiError ? Number(err.response.headers.get('retry-after')) : NaN;
  return Number.isFinite(s) && s > 0 ? s * 1000 : undefined;
};

export function createTodoStore(options: TodoStoreOptions): TodoStore {
  const client = createTodoClient(options);
  const storage = options.storage ?? memoryStorage();
  const live = options.live ?? true;
  const listeners = { conflict: new Set<(c: Conflict) => void>(), error: new Set<(e: StoreError) => void>(), change: new Set<() => void>() };

  let server = new Map<string, Task>();
  let outbox: Mutation[] = [];
  let since: string | null = null;
  let gone = new Set<string>();
  let userId = '';
  let view = new Map<string, Task>();
  let snapshot: readonly Task[] = [];
  let closed = false;
  const stop = new AbortController();
  const syncs = new Set<Promise<void>>();
  let latestSave: Promise<void> = Promise.resolve();
  let allSaves: Promise<unknown> = latestSave;

  const now = () => new Date().toISOString();
  const emit = <E extends keyof Events>(event: E, payload: Events[E]) => {
    for (const l of listeners[event] as Set<(p: Events[E]) => void>) l(payload);
  };

  /** After any change: rebase the view, save, tell subscribers. Saving first, so nothing shown is unsaved. */
  function changed(): void {
    const state: SavedState = { version: 1, server: [...server.values()], outbox, since, gone: [...gone], userId };
    const saving = storage.save(state);
    if (saving) {
      saving.catch((error: unknown) => emit('error', { mutation: outbox[0] as Mutation, error }));
      // Each save replaces the whole state: the latest one says whether it is all stored.
      latestSave = saving;
      allSaves = Promise.allSettled([allSaves, saving]);
    }
    view = new Map(server);
    for (const m of outbox) apply(view, m, userId);
    snapshot = [...view.values()].sort(SORTS.created);
    emit('change', undefined);
  }

  /** The server's word on a task: never older than what we have, never back from the dead. */
  function learn(task: Task): void {
    if (gone.has(task.id)) return;
    const known = server.get(task.id);
    if (!known || known.updated_at <= task.updated_at) server.set(task.id, task);
    userId ||= task.user_id;
  }
  function forget(id: string): void {
    server.delete(id);
    gone.add(id);
  }

  /** Queues mutations (a bulk action's many at once: one save, one change event). */
  function enqueue(...ms: Mutation[]): void {
    if (closed) throw new Error('the store is closed');
    if (ms.length === 0) return;
    outbox.push(...ms);
    changed();
    kick();
  }

  /** An update of `task` as the view shows it now: the fields, their values before, the version it was made on. */
  function updateOf(task: Task, fields: Fields): Mutation {
    const base: Fields = {};
    for (const key of Object.keys(fields) as (keyof Fields)[]) Object.assign(base, { [key]: task[key] });
    return { kind: 'update', id: task.id, fields, base, version: server.get(task.id)?.updated_at ?? null, at: now() };
  }

  /** Drops a mutation and everything queued after it about the same task (they cannot apply). */
  function dropWithDependents(m: Mutation): void {
    const id = subject(m);
    outbox = outbox.filter((x) => x !== m && (subject(x) !== id || x.kind === 'remove'));
  }

  /** A later update made on the version this one replaced is made on the new one. */
  function acknowledged(id: string, before: string | null, task: Task): void {
    for (const x of outbox) if (x.kind === 'update' && x.id === id && (x.version === before || x.version === null)) x.version = task.updated_at;
    learn(task);
  }

  /** Sends the outbox's first mutation; resolves when it is done with (sent, or dropped). */
  async function send(m: Mutation): Promise<void> {
    try {
      switch (m.kind) {
        case 'create': {
          const task = await client.createTask({ id: m.id, title: m.title, notes: m.notes, due_date: m.due_date });
          acknowledged(m.id, null, task);
          break;
        }
        case 'update': {
          const before = m.version ?? server.get(m.id)?.updated_at ?? null;
          const ifMatch = before === null ? undefined : `"${Date.parse(before).toString(36)}"`;
          const task = await client.updateTask(m.id, m.fields, ifMatch === undefined ? {} : { ifMatch });
          acknowledged(m.id, before, task);
          break;
        }
        case 'move': {
          const before = server.get(m.id)?.updated_at ?? null;
          acknowledged(m.id, before, await client.moveTask(m.id, m.to));
          break;
        }
        case 'remove':
          try {
            await client.deleteTask(m.id);
          } catch (err) {
            if (!(err instanceof TodoApiError && err.status === 404)) throw err; // a delete always wins; gone is gone
          }
          forget(m.id);
          break;
      }
      outbox = outbox.filter((x) => x !== m);
    } catch (err) {
      if (transient(err)) throw err;
      const status = (err as TodoApiError).status;
      if (m.kind === 'update' && status === 412) return await resolve(m);
      if ((m.kind === 'update' || m.kind === 'move') && status === 404) {
        emit('conflict', { id: m.id, kind: 'deleted' });
        forget(m.id);
        dropWithDependents(m);
      } else if (m.kind === 'create' && status === 409) {
        // The id is taken: an earlier attempt of ours got through and was deleted since.
        emit('conflict', { id: m.id, kind: 'deleted' });
        forget(m.id);
        dropWithDependents(m);
      } else {
        emit('error', { mutation: m, error: err });
        if (m.kind === 'create') dropWithDependents(m);
        else outbox = outbox.filter((x) => x !== m);
      }
    } finally {
      changed();
    }
  }

  /** 412: read the task again; resend the fields nobody else changed, report the others once. */
  async function resolve(m: Extract<Mutation, { kind: 'update' }>): Promise<void> {
    let current: Task;
    try {
      current = await client.getTask(m.id);
    } catch (err) {
      if (err instanceof TodoApiError && err.status === 404) {
        emit('conflict', { id: m.id, kind: 'deleted' });
        forget(m.id);
        dropWithDependents(m);
        return;
      }
      throw err;
    }
    learn(current);
    const fields: Fields = {};
    for (const key of Object.keys(m.fields) as (keyof Fields)[]) {
      const mine = m.fields[key];
      if (current[key] === mine) continue; // already so (our own earlier attempt, or the same edit)
      if (current[key] === m.base[key]) Object.assign(fields, { [key]: mine });
      else emit('conflict', { id: m.id, kind: 'field', field: key, local: mine, server: current[key] });
    }
    if (Object.keys(fields).length === 0) outbox = outbox.filter((x) => x !== m);
    else Object.assign(m, { fields, version: current.updated_at });
  }

  // One push at a time (the loop's and sync()'s), so that a mutation is never in flight twice.
  let pushing: Promise<void> | undefined;
  function push(): Promise<void> {
    pushing ??= (async () => {
      for (let m = outbox[0]; m !== undefined && !closed; m = outbox[0]) await send(m);
    })().finally(() => {
      pushing = undefined;
    });
    return pushing;
  }

  function applyPage(page: { changes: Array<{ type: 'upsert'; task: Task } | { type: 'delete'; id: string }>; next_since: string }): void {
    if (closed) return;
    for (const c of page.changes) {
      if (c.type === 'upsert') learn(c.task);
      else forget(c.id);
    }
    since = page.next_since;
    changed();
  }

  async function pull(): Promise<void> {
    try {
      for await (const page of client.changes(since === null ? {} : { since })) applyPage(page);
    } catch (err) {
      if (!(err instanceof TodoApiError && err.status === 410)) throw err;
      await fullSync();
    }
  }

  /** 410 SYNC_EXPIRED: the replica is rebuilt from a full sync; the outbox is kept. */
  async function fullSync(): Promise<void> {
    const fresh = new Map<string, Task>();
    let position: string | null = null;
    for await (const page of client.changes()) {
      for (const c of page.changes) if (c.type === 'upsert') fresh.set(c.task.id, c.task);
      position = page.next_since;
    }
    server = fresh;
    since = position;
    changed();
  }

  // One loop pushes (and, live, follows the stream); it sleeps with backoff when the server cannot be reached.
  let wake: (() => void) | undefined;
  let running: Promise<void> | undefined;
  const sleep = (ms: number) =>
    new Promise<void>((r) => {
      const timer = setTimeout(r, ms);
      wake = () => {
        clearTimeout(timer);
        r();
      };
    });

  function kick(): void {
    if (closed) return;
    wake?.();
    running ??= loop().finally(() => {
      running = undefined;
    });
  }

  async function loop(): Promise<void> {
    for (let failures = 0; !closed; ) {
      try {
        await push();
        if (!live || closed) return;
        await follow();
        failures = 0;
      } catch (err) {
        if (closed) return;
        failures++;
        await sleep(retryAfterMs(err) ?? Math.min(250 * 2 ** failures, 10_000) * (0.5 + Math.random() / 2));
      }
    }
  }

  /** Follows the change stream until a mutation is queued (pushed first, then followed again). */
  async function follow(): Promise<void> {
    const round = new AbortController();
    const onAbort = () => round.abort();
    stop.signal.addEventListener('abort', onAbort);
    wake = () => round.abort();
    try {
      for await (const page of client.stream({ ...(since !== null && { since }), signal: round.signal })) {
        applyPage(page);
        if (outbox.length > 0) round.abort();
      }
    } catch (err) {
      if (err instanceof TodoApiError && err.status === 410) await fullSync();
      else if (!round.signal.aborted) throw err;
    } finally {
      stop.signal.removeEventListener('abort', onAbort);
    }
  }

  const ready = (async () => {
    const saved = await storage.load();
    if (saved) {
      server = new Map(saved.server.map((t) => [t.id, t]));
      outbox = saved.outbox;
      since = saved.since;
      gone = new Set(saved.gone);
      userId = saved.userId;
    }
    changed();
    kick();
  })();
  const online = () => kick();
  (globalThis as { addEventListener?: (e: string, l: () => void) => void }).addEventListener?.('online', online);

  const store: TodoStore = {
    ready,
    tasks(query = {}) {
      const q = query.q?.toLowerCase();
      return [...view.values()]
        .filter((t) => (query.status === undefined || t.status === query.status) && (q === undefined || t.title.toLowerCase().includes(q) || t.notes.toLowerCase().includes(q)))
        .sort(SORTS[query.sort ?? 'created']);
    },
    get: (id) => view.get(id),
    subscribe(listener) {
      listeners.change.add(listener);
      return () => listeners.change.delete(listener);
    },
    getSnapshot: () => snapshot,
    create(fields) {
      const id = globalThis.crypto.randomUUID();
      enqueue({ kind: 'create', id, title: fields.title.trim(), notes: fields.notes ?? '', due_date: fields.due_date ?? null, at: now() });
      return view.get(id) as Task;
    },
    update(id, fields) {
      const task = view.get(id);
      if (!task) return;
      enqueue(updateOf(task, fields.title === undefined ? fields : { ...fields, title: fields.title.trim() }));
    },
    move: (id, to) => enqueue({ kind: 'move', id, to }),
    remove: (id) => enqueue({ kind: 'remove', id }),
    // The tasks shown now, one mutation each: exactly once and conflict-checked like any
    // update or delete, and a late replay never reaches tasks completed elsewhere meanwhile
    // (the server's bulk PATCH/DELETE act on whatever matches when they arrive).
    completeAll: () => enqueue(...[...view.values()].filter((t) => t.status === 'pending').map((t) => updateOf(t, { status: 'completed' }))),
    clearCompleted: () => enqueue(...[...view.values()].filter((t) => t.status === 'completed').map((t): Mutation => ({ kind: 'remove', id: t.id }))),
    get pendingCount() {
      return outbox.length;
    },
    saved() {
      const [all, latest] = [allSaves, latestSave]; // the changes made so far, not later ones
      return all.then(() => latest);
    },
    on(event, listener) {
      const set = listeners[event] as Set<typeof listener>;
      set.add(listener);
      return () => set.delete(listener);
    },
    async sync() {
      const p = (async () => {
        await ready;
        await push();
        if (!closed) await pull();
      })();
      syncs.add(p);
      try {
        await p;
      } finally {
        syncs.delete(p);
      }
    },
    async close() {
      closed = true;
      stop.abort();
      wake?.();
      (globalThis as { removeEventListener?: (e: string, l: () => void) => void }).removeEventListener?.('online', online);
      await running?.catch(() => undefined);
      await Promise.allSettled([...syncs]);
      await storage.close?.();
    },
  };
  return store;
}
