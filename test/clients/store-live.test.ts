/**
 * The offline-first store (clients/typescript/src/store/) against the real server over
 * real HTTP: live across two instances of the app on one database (a change made through
 * a store on one instance reaches a store on the other within 1 s), conflicts field by
 * field (reported once, the server's value stays, the fields nobody else changed still
 * sent), updates and moves of tasks deleted elsewhere, a delete that always wins, a
 * mutation the server refuses for good (dropped with an 'error', the rest of the queue
 * still sent), bulk changes that stay shown once acknowledged, and a restart from
 * fileStorage that keeps the outbox. Tests wait on the stores' events; the timeouts are
 * only a safety net.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { FastifyInstance } from 'fastify';
import t from 'tap';
import { buildApp } from '../../src/app.ts';
import { createSql } from '../../src/db/client.ts';
import {
  createTodoClient,
  createTodoStore,
  fileStorage,
  memoryStorage,
  TodoApiError,
  type Conflict,
  type StoreError,
  type Task,
  type TodoClientOptions,
  type TodoStorage,
  type TodoStore,
} from '../../clients/typescript/src/index.ts';
import { build, ORIGIN, SECRET, token, type Test } from '../helper.ts';

type Fetch = NonNullable<TodoClientOptions['fetch']>;

async function listen(app: FastifyInstance): Promise<string> {
  await app.listen({ port: 0, host: '127.0.0.1' });
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
}

/** The app on a real port, and a second instance of it on the same database (and schema) on another. */
async function serve(t: Test) {
  const one = await build(t);
  const other = await buildApp({ sql: createSql(one.url), secretKey: SECRET, corsOrigins: [ORIGIN], rateLimitPerMinute: 0, authFailureLimitPerMinute: 0 });
  await other.ready();
  t.teardown(() => other.close());
  const urls = [await listen(one.app), await listen(other)] as const;
  // Once the stores are closed (their teardowns run first), cut whatever is left, so that the
  // apps close at once instead of giving open connections their grace (500 ms each).
  const sockets = new Set<Socket>();
  let cutting = false;
  for (const app of [one.app, other]) {
    app.server.on('connection', (socket: Socket) => {
      if (cutting) socket.destroy();
      else sockets.add(socket.once('close', () => sockets.delete(socket)));
    });
  }
  const cut = () => {
    for (const socket of sockets) socket.destroy();
  };
  t.teardown(() => {
    cutting = true;
    cut();
  });
  const alice = token('alice');
  const client = createTodoClient({ baseUrl: urls[0], token: alice });
  return { ...one, urls, alice, client, cut };
}

/** A fetch that can be cut (a TypeError, as a browser's offline fetch), counting what it let through. */
function network() {
  const net = {
    offline: false,
    sent: [] as string[],
    fetch: (async (request) => {
      if (net.offline) throw new TypeError('fetch failed (offline)');
      net.sent.push(`${request.method} ${new URL(request.url).pathname}`);
      return fetch(request);
    }) as Fetch,
  };
  return net;
}

interface Opened {
  store: TodoStore;
  conflicts: Conflict[];
  errors: StoreError[];
}

/** A store of alice's (closed at teardown, before the apps), recording its conflicts and errors. */
function open(t: Test, options: { baseUrl: string; live: boolean; fetch?: Fetch; storage?: TodoStorage }): Opened {
  const alice = token('alice');
  const store = createTodoStore({ getToken: async () => alice, ...options });
  const conflicts: Conflict[] = [];
  const errors: StoreError[] = [];
  store.on('conflict', (c) => conflicts.push(c));
  store.on('error', (e) => errors.push(e));
  t.teardown(() => store.close());
  return { store, conflicts, errors };
}

/** Resolves when `ok` holds for the store's view, checked at each change; rejects after `ms` (a safety net). */
function until(store: TodoStore, ok: (s: TodoStore) => boolean, what: string, ms = 5000): Promise<void> {
  return new Promise((resolve, reject) => {
    if (ok(store)) return resolve();
    const timer = setTimeout(() => {
      stop();
      reject(new Error(`${what}: not within ${ms} ms`));
    }, ms);
    const stop = store.subscribe(() => {
      if (!ok(store)) return;
      clearTimeout(timer);
      stop();
      resolve();
    });
  });
}

async function serverTasks(client: ReturnType<typeof createTodoClient>): Promise<Task[]> {
  const all: Task[] = [];
  for await (const task of client.tasks({ limit: 100 })) all.push(task);
  return all;
}

t.test('live across instances: a change through a store on one instance reaches a store on the other within 1 s', async (t) => {
  const { urls, client } = await serve(t);
  const a = open(t, { baseUrl: urls[0], live: true }).store;
  const b = open(t, { baseUrl: urls[1], live: true }).store;
  await Promise.all([a.ready, b.ready]);
  // Both follow their stream: a task made through the API shows in both.
  const first = await client.createTask({ title: 'first' });
  await Promise.all([until(a, (s) => s.get(first.id) !== undefined, 'a sees the first task'), until(b, (s) => s.get(first.id) !== undefined, 'b sees the first task')]);

  const latencies: Record<string, number> = {};
  /** Makes a change (on one store), then measures until `to` (the other) shows it. */
  async function measure(what: string, to: TodoStore, change: () => (s: TodoStore) => boolean): Promise<void> {
    const started = performance.now();
    const seen = change();
    await until(to, seen, what, 5000);
    latencies[what] = Math.round(performance.now() - started);
    t.ok(latencies[what]! < 1000, `${what}: seen on the other instance in ${latencies[what]} ms`);
  }

  let id = '';
  await measure('create (a -> b)', b, () => {
    id = a.create({ title: 'made on a' }).id;
    return (s) => s.get(id)?.title === 'made on a';
  });
  await measure('update title (b -> a)', a, () => {
    b.update(id, { title: 'renamed on b' });
    return (s) => s.get(id)?.title === 'renamed on b';
  });
  await measure('complete (a -> b)', b, () => {
    a.update(id, { status: 'completed' });
    return (s) => s.get(id)?.status === 'completed';
  });
  await measure('move to bottom (b -> a)', a, () => {
    b.move(id, { to: 'bottom' });
    return (s) => s.tasks({ sort: 'position' }).at(-1)?.id === id;
  });
  await measure('remove (a -> b)', b, () => {
    a.remove(id);
    return (s) => s.get(id) === undefined;
  });
  t.comment(`latency across instances (ms): ${JSON.stringify(latencies)}`);

  await Promise.all([until(a, (s) => s.pendingCount === 0, 'a settles'), until(b, (s) => s.pendingCount === 0, 'b settles')]);
  const truth = await serverTasks(client);
  await until(a, (s) => JSON.stringify(s.tasks()) === JSON.stringify(truth), 'a lists what the server lists');
  await until(b, (s) => JSON.stringify(s.tasks()) === JSON.stringify(truth), 'b lists what the server lists');
  t.pass('both stores list exactly what GET /api/tasks lists');
});

t.test('a field changed on both sides: one conflict with both values, reported once; the server keeps its value, the other fields go through', async (t) => {
  const { urls, client } = await serve(t);
  const contested = await client.createTask({ title: 'contested', notes: 'n0' });
  const both = await client.createTask({ title: 'both', notes: 'n0' });
  const net1 = network();
  const net2 = network();
  const storage2 = memoryStorage();
  const one = open(t, { baseUrl: urls[0], live: false, fetch: net1.fetch });
  const two = open(t, { baseUrl: urls[1], live: false, fetch: net2.fetch, storage: storage2 });
  await Promise.all([one.store.sync(), two.store.sync()]);

  net1.offline = net2.offline = true;
  one.store.update(contested.id, { title: 'from one' });
  one.store.update(both.id, { title: 'title from one' });
  // Two's queue: a title and notes on `both` (notes changed by nobody else), then a title only on `contested`.
  two.store.update(both.id, { title: 'title from two', notes: 'notes from two' });
  two.store.update(contested.id, { title: 'from two' });
  t.equal(two.store.get(contested.id)?.title, 'from two', 'offline, each store shows its own edit');

  net1.offline = false;
  await one.store.sync();
  t.same(one.conflicts, [], 'the first to sync has no conflict');

  // Two comes back (restarted from its storage, online): its loop sends the queue at once.
  await two.store.close();
  net2.offline = false;
  const back = open(t, { baseUrl: urls[1], live: false, fetch: net2.fetch, storage: storage2 });
  const twoConflicts = new Promise<void>((resolve) => back.store.on('conflict', () => back.conflicts.length === 2 && resolve()));
  await back.store.ready;
  await twoConflicts;
  const [c, b] = await Promise.all([client.getTask(contested.id), client.getTask(both.id)]);
  await until(
    back.store,
    (s) => s.pendingCount === 0 && JSON.stringify(s.get(contested.id)) === JSON.stringify(c) && JSON.stringify(s.get(both.id)) === JSON.stringify(b),
    "two shows the server's tasks once the conflicts are resolved",
    2000,
  ).then(
    () => t.pass("two shows the server's tasks once the conflicts are resolved (a change event)"),
    (err: Error) => t.fail(err.message),
  );
  t.same(
    back.conflicts.sort((x, y) => (x.id === contested.id ? -1 : 1) - (y.id === contested.id ? -1 : 1)),
    [
      { id: contested.id, kind: 'field', field: 'title', local: 'from two', server: 'from one' },
      { id: both.id, kind: 'field', field: 'title', local: 'title from two', server: 'title from one' },
    ],
    'one conflict per field changed on both sides, with both values',
  );
  t.same([...one.errors, ...back.errors], [], 'no error');
  t.same({ title: c.title, notes: c.notes }, { title: 'from one', notes: 'n0' }, "the server's value stays");
  t.same({ title: b.title, notes: b.notes }, { title: 'title from one', notes: 'notes from two' }, 'the field nobody else changed was sent');
  t.same(net2.sent.filter((r) => r.startsWith('PATCH')).length, 3, 'three PATCHes: two refused (412), then the notes alone');

  // Once means once: also after a restart from what the store saved, and after syncing again.
  await back.store.close();
  const again = open(t, { baseUrl: urls[1], live: false, fetch: net2.fetch, storage: storage2 });
  await again.store.ready;
  t.equal(again.store.pendingCount, 0, 'restarted: nothing queued');
  await again.store.sync();
  await again.store.sync();
  t.same(again.conflicts, [], 'restarted and synced twice: no second report');
  t.same(again.store.get(contested.id)?.title, 'from one', "the server's value still stands");
  t.same((await client.getTask(contested.id)).title, 'from one', 'on the server too');
});

t.test('an update or a move of a task deleted elsewhere: dropped with one "deleted" conflict; a delete always wins', async (t) => {
  const { urls, client } = await serve(t);
  const [moved, updated, kept, doomed] = await Promise.all(['moved', 'updated', 'kept', 'doomed'].map((title) => client.createTask({ title })));
  const net1 = network();
  const net2 = network();
  const one = open(t, { baseUrl: urls[0], live: false, fetch: net1.fetch });
  const two = open(t, { baseUrl: urls[1], live: false, fetch: net2.fetch });
  await Promise.all([one.store.sync(), two.store.sync()]);

  net2.offline = true;
  two.store.move(moved!.id, { to: 'bottom' });
  two.store.update(updated!.id, { title: 'edited offline' });
  two.store.move(moved!.id, { after: kept!.id });
  two.store.update(kept!.id, { notes: 'still here' });
  two.store.remove(doomed!.id);
  one.store.remove(moved!.id);
  one.store.remove(updated!.id);
  one.store.update(doomed!.id, { title: 'edited before its delete arrives' });
  await one.store.sync();

  net2.offline = false;
  await two.store.sync();
  t.same(
    two.conflicts,
    [
      { id: moved!.id, kind: 'deleted' },
      { id: updated!.id, kind: 'deleted' },
    ],
    'one "deleted" conflict per task, the second move of the same task dropped with the first',
  );
  t.same(two.errors, [], 'no error');
  t.equal(two.store.pendingCount, 0, 'nothing left queued');
  await two.store.sync();
  t.equal(two.conflicts.length, 2, 'sync again: no second report');

  const truth = await serverTasks(client);
  t.same(truth.map((x) => x.title), ['kept'], 'on the server: only the task nobody deleted');
  t.equal(truth[0]?.notes, 'still here', 'with the update queued after the dropped ones');
  t.same(two.store.tasks(), truth, 'two lists what the server lists');
  await one.store.sync();
  t.same(one.store.tasks(), truth, 'so does one: the delete won over its edit');
});

t.test('an invalid title queued: an "error" event, that mutation dropped, the rest of the queue still sent', async (t) => {
  const { urls, client } = await serve(t);
  const existing = await client.createTask({ title: 'existing' });
  const net = network();
  const { store, errors, conflicts } = open(t, { baseUrl: urls[0], live: false, fetch: net.fetch });
  await store.sync();

  net.offline = true;
  store.create({ title: 'first' });
  store.update(existing.id, { title: '   ' });
  const tooLong = store.create({ title: 'x'.repeat(501) });
  store.update(tooLong.id, { notes: 'an update of a task that will never exist' });
  store.create({ title: 'last' });
  t.equal(store.pendingCount, 5, 'five mutations queued');
  net.offline = false;
  await store.sync();

  t.same(
    errors.map((e) => ({ kind: e.mutation.kind, id: 'id' in e.mutation ? e.mutation.id : undefined, status: e.error instanceof TodoApiError ? e.error.status : String(e.error) })),
    [
      { kind: 'update', id: existing.id, status: 400 },
      { kind: 'create', id: tooLong.id, status: 400 },
    ],
    'one error per mutation the server refused (400), with the mutation',
  );
  t.same(conflicts, [], 'no conflict');
  t.equal(store.pendingCount, 0, 'the refused ones and what depended on them are dropped');
  const truth = await serverTasks(client);
  t.same(truth.map((x) => x.title).sort(), ['existing', 'first', 'last'], 'the rest went through; the invalid ones did not');
  t.same(store.tasks(), truth, 'the store shows what the server has (the old title back)');
});

t.test('completeAll and clearCompleted stay shown once acknowledged (no flash of the old state before the next pull)', async (t) => {
  const { urls, client } = await serve(t);
  const tasks = await Promise.all(['a', 'b', 'c'].map((title) => client.createTask({ title })));
  const { store } = open(t, { baseUrl: urls[0], live: false });
  await store.sync();
  const seen: string[] = [];
  store.subscribe(() => seen.push(store.tasks().map((x) => `${x.title}:${x.status}`).sort().join(' ')));

  store.completeAll();
  await until(store, (s) => s.pendingCount === 0, 'completeAll acknowledged');
  t.same(
    seen.filter((view) => view.includes(':pending')),
    [],
    'from completeAll() on, no view shows a task pending again',
  );
  await store.sync();
  t.same((await serverTasks(client)).map((x) => x.status), ['completed', 'completed', 'completed'], 'the server has them completed');

  seen.length = 0;
  store.clearCompleted();
  await until(store, (s) => s.pendingCount === 0, 'clearCompleted acknowledged');
  t.same(
    seen.filter((view) => view !== ''),
    [],
    'from clearCompleted() on, no view shows a cleared task again',
  );
  await store.sync();
  t.same(await serverTasks(client), [], 'the server has none left');
  t.equal(tasks.length, 3);
});

t.test('completeAll and clearCompleted offline act on the tasks shown then, each once: not on tasks others completed or added meanwhile', async (t) => {
  const { urls, client } = await serve(t);
  const [done, open1] = [await client.createTask({ title: 'done' }), await client.createTask({ title: 'open' })];
  await client.updateTask(done.id, { status: 'completed' });
  const net = network();
  const { store, conflicts, errors } = open(t, { baseUrl: urls[0], live: false, fetch: net.fetch });
  await store.sync();

  net.offline = true;
  store.clearCompleted();
  store.completeAll();
  t.same(store.tasks().map((x) => `${x.title}:${x.status}`), ['open:completed'], 'shown at once');
  t.equal(store.pendingCount, 2, 'one mutation per task shown');
  // Meanwhile, on another device: a task is added, and another completed.
  await client.createTask({ title: 'added elsewhere' });
  const later = await client.createTask({ title: 'completed elsewhere' });
  await client.updateTask(later.id, { status: 'completed' });

  net.offline = false;
  net.sent.length = 0;
  await store.sync();
  t.same(net.sent.filter((x) => !x.startsWith('GET')).sort(), [`DELETE /api/tasks/${done.id}`, `PATCH /api/tasks/${open1.id}`], 'no bulk request');
  const truth = await serverTasks(client);
  t.same(
    truth.map((x) => `${x.title}:${x.status}`),
    ['completed elsewhere:completed', 'added elsewhere:pending', 'open:completed'],
    'the task completed elsewhere is not cleared, the one added elsewhere not completed',
  );
  t.same(store.tasks(), truth, 'the store shows what the server has');
  t.same([conflicts, errors], [[], []]);
});

t.test('a restart from fileStorage keeps the outbox (and the replica)', async (t) => {
  const { urls, client } = await serve(t);
  const dir = mkdtempSync(join(tmpdir(), 'todo-store-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'store.json');
  const net = network();
  net.offline = true;

  const before = open(t, { baseUrl: urls[0], live: false, fetch: net.fetch, storage: fileStorage(path) }).store;
  await before.ready;
  const a = before.create({ title: 'written offline', due_date: '2026-03-01' });
  const b = before.create({ title: 'and another', notes: 'with notes' });
  before.update(a.id, { status: 'completed' });
  before.move(b.id, { to: 'bottom' });
  t.equal(before.pendingCount, 4, 'four mutations queued');
  const shown = before.tasks();
  await before.close();
  t.same(net.sent, [], 'nothing reached the server');

  const after = open(t, { baseUrl: urls[0], live: false, fetch: net.fetch, storage: fileStorage(path) }).store;
  await after.ready;
  t.equal(after.pendingCount, 4, 'the restarted store has the four mutations queued');
  t.same(after.tasks(), shown, 'and shows the same tasks');
  net.offline = false;
  await after.sync();
  t.equal(after.pendingCount, 0, 'all sent');
  const truth = await serverTasks(client);
  t.same(
    truth.map((x) => ({ id: x.id, title: x.title, status: x.status })).sort((x, y) => x.title.localeCompare(y.title)),
    [
      { id: b.id, title: 'and another', status: 'pending' },
      { id: a.id, title: 'written offline', status: 'completed' },
    ],
    'the server has both tasks, once each, with their ids and the update',
  );
  t.same(after.tasks(), truth, 'the store lists what the server lists');
  await after.close();

  // A third start, offline again: the replica is there without the server.
  net.offline = true;
  const third = open(t, { baseUrl: urls[0], live: false, fetch: net.fetch, storage: fileStorage(path) }).store;
  await third.ready;
  t.same(third.tasks(), truth, 'restarted offline: the replica as last synced');
  t.equal(third.pendingCount, 0, 'nothing queued');
});

t.test('saved() waits for an asynchronous storage to hold every change, and rejects when the latest save failed', async (t) => {
  // Each save is held until the test settles it, as an IndexedDB transaction commits later.
  const held: Array<{ state: string; settle: (error?: Error) => void }> = [];
  let stored: string | undefined;
  const storage: TodoStorage = {
    load: () => undefined,
    save: (state) =>
      new Promise<void>((resolve, reject) => {
        const copy = JSON.stringify(state);
        held.push({ state: copy, settle: (error) => (error ? reject(error) : (stored = copy, resolve())) });
      }),
  };
  const net = network();
  net.offline = true;
  const { store, errors } = open(t, { baseUrl: 'http://127.0.0.1:9', live: false, fetch: net.fetch, storage });
  await store.ready;
  held.splice(0).forEach((h) => h.settle()); // the first save, of the loaded (empty) state
  await store.saved();

  const milk = store.create({ title: 'milk' });
  store.update(milk.id, { status: 'completed' });
  t.equal(held.length, 2, 'each mutation started a save');
  let done = false;
  const saved = store.saved().then(() => (done = true));
  held[0]?.settle();
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(done, false, 'not saved while the latest save is still under way');
  held[1]?.settle();
  held.splice(0, 2);
  await saved;
  t.equal(done, true, 'saved once both are stored');
  t.match(JSON.parse(stored ?? '{}'), { outbox: [{ kind: 'create' }, { kind: 'update' }] }, 'and the stored state has both mutations');

  store.create({ title: 'bread' });
  const failing = held.splice(0);
  failing.forEach((h) => h.settle(new Error('QuotaExceededError')));
  await t.rejects(store.saved(), { message: 'QuotaExceededError' }, 'a failed latest save: saved() rejects with its error');
  t.equal(errors.length, failing.length, "and the store emitted an 'error' for the failed save");
});

t.test('a store closed mid-sync writes nothing afterwards: a restart on the same storage loses nothing', async (t) => {
  const { urls } = await serve(t);
  const shared = memoryStorage();
  /** The shared storage, as one store instance sees it, counting that instance's saves. */
  const through = () => {
    const view = { saves: 0, storage: { load: () => shared.load(), save: (state: Parameters<TodoStorage['save']>[0]) => void (view.saves++, shared.save(state)) } as TodoStorage };
    return view;
  };
  // The first store's pull is answered by the server, but the answer is held until released.
  let pulled: () => void = () => {};
  const pullSeen = new Promise<void>((resolve) => (pulled = resolve));
  let release: () => void = () => {};
  const released = new Promise<void>((resolve) => (release = resolve));
  const first = through();
  const s1 = open(t, {
    baseUrl: urls[0],
    live: false,
    storage: first.storage,
    fetch: async (request) => {
      const response = await fetch(request);
      if (new URL(request.url).pathname === '/api/tasks/changes') {
        pulled();
        await released;
      }
      return response;
    },
  }).store;
  await s1.ready;
  const syncing = s1.sync().catch(() => {});
  await pullSeen;

  const closing = s1.close();
  const closedAtOnce = await Promise.race([closing.then(() => true), new Promise<false>((resolve) => setImmediate(resolve, false))]);
  if (!closedAtOnce) {
    // close() waits for the sync under way: let it finish first.
    release();
    await closing;
  }
  const savesAtClose = first.saves;
  // Restarted on the same storage (offline): a task made now is queued and saved.
  const net = network();
  net.offline = true;
  const s2 = open(t, { baseUrl: urls[0], live: false, fetch: net.fetch, storage: through().storage }).store;
  await s2.ready;
  const made = s2.create({ title: 'made after the restart' });
  release();
  await syncing;
  t.equal(first.saves - savesAtClose, 0, 'the closed store saved nothing after close() resolved');
  await s2.close();

  const s3 = open(t, { baseUrl: urls[0], live: false, fetch: net.fetch, storage: through().storage }).store;
  await s3.ready;
  t.equal(s3.pendingCount, 1, 'restarted again: the create is still queued');
  t.equal(s3.get(made.id)?.title, 'made after the restart', 'and shown');
});

t.test('close() of a live store while a mutation is in flight resolves (and ends its stream)', async (t) => {
  const { urls, app, cut } = await serve(t);
  let streams = 0;
  let drained: (() => void) | undefined;
  app.server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (!req.url?.startsWith('/api/tasks/changes/stream')) return;
    streams++;
    res.on('close', () => {
      if (--streams === 0) drained?.();
    });
  });
  // Not closed at teardown: that is what this test checks. If close() hangs, the fetch refuses
  // every request from then on (a 400 ends the store's loop) and the connections are cut.
  let poisoned = false;
  // The create's POST is held until close() has been called: close() lands mid-push.
  let posted: () => void = () => {};
  const postSeen = new Promise<void>((resolve) => (posted = resolve));
  let release: () => void = () => {};
  const released = new Promise<void>((resolve) => (release = resolve));
  const alice = token('alice');
  const store = createTodoStore({
    baseUrl: urls[0],
    getToken: async () => alice,
    live: true,
    fetch: async (request) => {
      if (poisoned) {
        return new Response(JSON.stringify({ error: { code: 'VALIDATION_ERROR', message: 'refused by the test', details: [] } }), {
          status: 400,
          headers: { 'content-type': 'application/json' },
        });
      }
      if (request.method === 'POST') {
        posted();
        await released;
      }
      return fetch(request);
    },
  });
  await store.ready;
  store.create({ title: 'sent as the store closes' });
  await postSeen;
  const closing = store.close();
  release();
  const closed = await Promise.race([closing.then(() => true), new Promise<false>((resolve) => setTimeout(resolve, 3000, false))]);
  t.ok(closed, 'close() resolved (within 3 s)');
  if (!closed) {
    poisoned = true;
    cut();
    await closing;
  }
  await new Promise<void>((resolve) => {
    drained = resolve;
    if (streams === 0) resolve();
  });
  t.equal(streams, 0, 'no change stream left open');
});
