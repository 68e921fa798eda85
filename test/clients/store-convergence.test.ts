/**
 * The offline-first store (clients/typescript/src/store/) under chaos, against the real
 * server over real HTTP: five stores of one user and one of another make thousands of
 * random mutations of every kind (on random tasks, tasks created offline among them),
 * with random offline periods, random restarts (a store closed mid-flight and created
 * again from its storage), and faults injected through `fetch`: requests that fail before
 * reaching the server and responses lost after the server committed. Along the way every
 * mutation must show at once (optimistic) and every view must be the server's state as
 * last pulled with the queued mutations on top (rebase). At the end, all online and
 * synced twice around, every store lists exactly what GET /api/tasks lists in every
 * sort, every create a store accepted exists exactly once (unless a store deleted it),
 * and no store ever held the other user's tasks.
 *
 * The same scenario also runs sabotaged, small: replays made non-idempotent (the create's
 * id stripped from a resend) and a view that skips the outbox. Both must be caught, so
 * that the checks are known to bite. Seeded: STORE_SEED=<n> replays a run's operations
 * (network timing may still interleave them differently).
 */
import type { AddressInfo } from 'node:net';
import { isDeepStrictEqual } from 'node:util';
import t from 'tap';
import {
  createTodoClient,
  createTodoStore,
  memoryStorage,
  TodoApiError,
  type Conflict,
  type ListTasksQuery,
  type SavedState,
  type StoreError,
  type Task,
  type TodoClientOptions,
  type TodoStorage,
  type TodoStore,
} from '../../clients/typescript/src/index.ts';
import { apply } from '../../clients/typescript/src/store/outbox.ts';
import { build, token, type Test } from '../helper.ts';
import { prng } from '../prng.ts';

type Fetch = NonNullable<TodoClientOptions['fetch']>;
type Sort = NonNullable<ListTasksQuery['sort']>;
const SORTS: Sort[] = ['created', 'position', 'due', 'updated'];


/** The contract's orders (GET /api/tasks `sort`), for views built by this test. */
const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
const byCreated = (a: Task, b: Task) => cmp(b.created_at, a.created_at) || cmp(b.id, a.id);

/** A storage that also keeps a copy of what was last saved (the store's state, as the test sees it). */
interface Recording extends TodoStorage {
  last(): SavedState | undefined;
}
function recording(): Recording {
  const inner = memoryStorage();
  let saved: string | undefined;
  return {
    load: () => inner.load(),
    save: (state) => {
      saved = JSON.stringify(state);
      return inner.save(state);
    },
    last: () => (saved === undefined ? undefined : (JSON.parse(saved) as SavedState)),
  };
}

/** What the store's view must be: the saved server state with the saved outbox applied on top. */
function rebased(state: SavedState | undefined): Task[] {
  const view = new Map((state?.server ?? []).map((task) => [task.id, task]));
  for (const m of state?.outbox ?? []) apply(view, m, state?.userId ?? '');
  return [...view.values()].sort(byCreated);
}

/** Sabotage: a store whose view is the server's state only, without the queued mutations. */
function skippingOutbox(store: TodoStore, storage: Recording): TodoStore {
  const view = () => (storage.last()?.server ?? []).sort(byCreated);
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === 'tasks') return () => view();
      if (prop === 'get') return (id: string) => view().find((task) => task.id === id);
      return Reflect.get(target, prop, receiver) as unknown;
    },
  });
}

export interface Scenario {
  seed: number;
  /** Stores of alice (at least 5 in the real run) and of bob. */
  alice: number;
  bob: number;
  /** Mutations in total (create, update, move, remove, completeAll, clearCompleted). */
  mutations: number;
  /** Chance that a request fails before the server, and (as much again) that its response is lost. */
  fault: number;
  sabotage?: 'replay' | 'rebase';
}

export interface Outcome {
  problems: string[];
  stats: Record<string, number>;
}

interface Replica {
  name: string;
  user: 'alice' | 'bob';
  storage: Recording;
  store: TodoStore;
  offlineUntil: number;
  faults: () => number;
  conflicts: Conflict[];
  errors: StoreError[];
  /** Syncs started and not awaited (settled before the end). */
  inFlight: Set<Promise<void>>;
}

const WEIGHTS = {
  create: 18,
  title: 8,
  notes: 6,
  due: 6,
  status: 10,
  before: 4,
  after: 4,
  top: 3,
  bottom: 3,
  remove: 7,
  completeAll: 1,
  clearCompleted: 1.5,
  offline: 1.5,
  restart: 1,
  sync: 6,
  syncWait: 4,
} as const;
type Op = keyof typeof WEIGHTS;
const MUTATIONS = new Set<Op>(['create', 'title', 'notes', 'due', 'status', 'before', 'after', 'top', 'bottom', 'remove', 'completeAll', 'clearCompleted']);
const TOTAL_WEIGHT = Object.values(WEIGHTS).reduce((a, b) => a + b, 0);
const WORDS = ['milk', 'bread', 'call', 'mum', 'pay', 'rent', 'fix', 'bike', 'read', 'book', 'Ärger', 'tea'];

/** Runs the scenario against a fresh server; returns what went wrong (nothing, when the store is right). */
export async function runScenario(t: Test, scenario: Scenario): Promise<Outcome> {
  const built = await build(t);
  await built.app.listen({ port: 0, host: '127.0.0.1' });
  const baseUrl = `http://127.0.0.1:${(built.app.server.address() as AddressInfo).port}`;
  const tokens = { alice: token('alice'), bob: token('bob') };
  const rng = prng(scenario.seed);
  const pick = <T>(items: readonly T[]): T | undefined => items[Math.floor(rng() * items.length)];
  const problems: string[] = [];
  const problem = (text: string) => {
    if (problems.length < 200) problems.push(text);
  };
  const stats: Record<string, number> = { mutations: 0, requests: 0, offline: 0, failedBefore: 0, lost: 0, restarts: 0, stripped: 0 };
  let step = 0;
  let faultsOn = true;

  // What the test knows of every accepted mutation.
  const created = new Map<string, 'alice' | 'bob'>();
  const removed = new Set<string>();
  const completedByUpdate = new Set<string>();
  const bulk = { completeAll: new Set<string>(), clearCompleted: new Set<string>() };
  /** Create ids that reached the server (to tell a resend). */
  const arrived = new Set<string>();

  function fetchFor(r: Replica): Fetch {
    return async (request) => {
      stats.requests!++;
      if (step < r.offlineUntil) {
        stats.offline!++;
        throw new TypeError('fetch failed (offline)');
      }
      const roll = faultsOn ? r.faults() : 1;
      if (roll < scenario.fault) {
        stats.failedBefore!++;
        throw new TypeError('fetch failed before reaching the server');
      }
      let sent = request;
      let firstCreate = false;
      if (request.method === 'POST' && new URL(request.url).pathname === '/api/tasks') {
        const body = (await request.clone().json()) as { id?: string };
        if (body.id !== undefined) {
          firstCreate = !arrived.has(body.id);
          arrived.add(body.id);
          if (!firstCreate && scenario.sabotage === 'replay') {
            // Sabotage: a resend without its id, so that the server takes it for a new task.
            stats.stripped!++;
            delete body.id;
            sent = new Request(request, { body: JSON.stringify(body) });
          }
        }
      }
      const response = await fetch(sent);
      // Sabotage 'replay' loses the first answer to every create, so that each is resent.
      if (roll < 2 * scenario.fault || (firstCreate && scenario.sabotage === 'replay')) {
        await response.arrayBuffer();
        stats.lost!++;
        throw new TypeError('the response was lost after the server committed');
      }
      return response;
    };
  }

  function open(r: Omit<Replica, 'store'> & { store?: TodoStore }): Replica {
    const replica = r as Replica;
    const store = createTodoStore({ baseUrl, getToken: async () => tokens[r.user], storage: r.storage, fetch: fetchFor(replica), live: false });
    store.on('conflict', (c) => replica.conflicts.push(c));
    store.on('error', (e) => replica.errors.push(e));
    replica.store = scenario.sabotage === 'rebase' ? skippingOutbox(store, r.storage) : store;
    return replica;
  }

  const replicas: Replica[] = [];
  for (const [user, count] of [['alice', scenario.alice], ['bob', scenario.bob]] as const) {
    for (let i = 0; i < count; i++) {
      const faults = prng(scenario.seed * 31 + replicas.length + 1);
      replicas.push(open({ name: `${user}#${i}`, user, storage: recording(), offlineUntil: 0, faults, conflicts: [], errors: [], inFlight: new Set() }));
    }
  }
  await Promise.all(replicas.map((r) => r.store.ready));

  function startSync(r: Replica): Promise<void> {
    const p = r.store.sync().catch(() => {});
    r.inFlight.add(p);
    void p.finally(() => r.inFlight.delete(p));
    return p;
  }

  /** The view must be the saved server state with the saved outbox on top. */
  function checkRebase(r: Replica, what: string): void {
    const expected = rebased(r.storage.last());
    const actual = r.store.tasks();
    if (!isDeepStrictEqual(actual, expected)) {
      const ids = (list: Task[]) => list.map((x) => x.id.slice(0, 8)).join(',');
      problem(`rebase: ${r.name} after ${what} (step ${step}): the view [${ids(actual)}] is not the server state with the outbox on top [${ids(expected)}]`);
    }
  }

  function checkOwnership(r: Replica, final: boolean): void {
    for (const task of r.store.tasks()) {
      const owner = created.get(task.id);
      if ((owner !== undefined && owner !== r.user) || (task.user_id !== r.user && (final || task.user_id !== ''))) {
        problem(`isolation: ${r.name} holds task ${task.id} of ${owner ?? task.user_id}`);
      }
    }
  }

  const text = () => `${pick(WORDS)} ${pick(WORDS)} ${Math.floor(rng() * 1000)}`;
  const date = () => (rng() < 0.25 ? null : `2026-0${1 + Math.floor(rng() * 9)}-${String(1 + Math.floor(rng() * 28)).padStart(2, '0')}`);

  /** One random mutation (or offline period, restart, sync) on one random store. */
  async function act(): Promise<void> {
    const r = replicas[Math.floor(rng() * replicas.length)] as Replica;
    let roll = rng() * TOTAL_WEIGHT;
    let op = 'create' as Op;
    for (const [name, weight] of Object.entries(WEIGHTS) as [Op, number][]) {
      if ((roll -= weight) < 0) {
        op = name;
        break;
      }
    }
    const view = r.store.tasks();
    const task = pick(view);
    if (task === undefined && ['title', 'notes', 'due', 'status', 'before', 'after', 'top', 'bottom', 'remove'].includes(op)) op = 'create';
    const store = r.store;
    const id = task?.id as string;
    const position = () => store.tasks({ sort: 'position' }).map((x) => x.id);
    const shows = (ok: boolean, what: string) => {
      if (!ok) problem(`optimistic: ${r.name} does not show its ${what} at once (step ${step})`);
    };
    switch (op) {
      case 'create': {
        const fields = { title: ` ${text()} `, notes: rng() < 0.5 ? '' : text(), due_date: date() };
        const made = store.create(fields);
        created.set(made.id, r.user);
        const shown = store.get(made.id);
        shows(
          shown !== undefined &&
            shown.title === fields.title.trim() &&
            shown.notes === fields.notes &&
            shown.due_date === fields.due_date &&
            shown.status === 'pending' &&
            position()[0] === made.id,
          'create',
        );
        break;
      }
      case 'title':
      case 'notes':
      case 'due':
      case 'status': {
        const fields =
          op === 'title'
            ? { title: text() }
            : op === 'notes'
              ? { notes: text() }
              : op === 'due'
                ? { due_date: date() }
                : { status: task?.status === 'completed' ? ('pending' as const) : ('completed' as const) };
        if (fields.status === 'completed') completedByUpdate.add(id);
        store.update(id, fields);
        const shown = store.get(id);
        const ok = shown !== undefined && Object.entries(fields).every(([k, v]) => shown[k as keyof Task] === v);
        shows(ok, `update of ${Object.keys(fields).join()}${ok ? '' : ` ${JSON.stringify(fields)} on ${JSON.stringify(task)}: shows ${JSON.stringify(shown)}; outbox ${JSON.stringify(r.storage.last()?.outbox.filter((m) => 'id' in m && m.id === id || !('id' in m)))}`}`);
        break;
      }
      case 'before':
      case 'after': {
        const anchor = pick(view.filter((x) => x.id !== id));
        if (anchor === undefined) return;
        store.move(id, op === 'before' ? { before: anchor.id } : { after: anchor.id });
        const order = position();
        // Next to the anchor; or, when the anchor shares its key with others (a pulled state may, briefly), next to that group.
        const group = order.flatMap((x, i) => (x !== id && store.get(x)?.position === store.get(anchor.id)?.position ? [i] : []));
        const ok = order.indexOf(id) === (op === 'before' ? Math.min(...group) - 1 : Math.max(...group) + 1);
        const where = (x: string) => `${x.slice(0, 8)}@${store.get(x)?.position}#${order.indexOf(x)}`;
        shows(ok, `move ${op}${ok ? '' : ` (${where(id)} ${op} ${where(anchor.id)}; was at ${task?.position}; neighbours ${order.slice(Math.max(0, order.indexOf(anchor.id) - 2), order.indexOf(anchor.id) + 3).map(where).join(' ')})`}`);
        break;
      }
      case 'top':
      case 'bottom': {
        store.move(id, { to: op });
        const order = position();
        shows(op === 'top' ? order[0] === id : order.at(-1) === id, `move to ${op}`);
        break;
      }
      case 'remove':
        store.remove(id);
        removed.add(id);
        shows(store.get(id) === undefined, 'remove');
        break;
      case 'completeAll':
        store.completeAll();
        bulk.completeAll.add(r.user);
        shows(!store.tasks().some((x) => x.status === 'pending'), 'completeAll');
        break;
      case 'clearCompleted':
        store.clearCompleted();
        bulk.clearCompleted.add(r.user);
        shows(!store.tasks().some((x) => x.status === 'completed'), 'clearCompleted');
        break;
      case 'offline':
        r.offlineUntil = step + 5 + Math.floor(rng() * 60);
        return;
      case 'restart': {
        // Closed mid-flight: a sync under way (and maybe a mutation just queued), then close.
        stats.restarts!++;
        if (rng() < 0.5) void startSync(r);
        const old = r.store;
        await old.close();
        open(r);
        await r.store.ready;
        break;
      }
      case 'sync':
        void startSync(r);
        break;
      case 'syncWait':
        await startSync(r);
        break;
    }
    if (MUTATIONS.has(op)) {
      stats.mutations!++;
      stats[`op:${op}`] = (stats[`op:${op}`] ?? 0) + 1;
    }
    checkRebase(r, op);
  }

  while (stats.mutations! < scenario.mutations) {
    step++;
    await act();
    if (step % 50 === 0) for (const r of replicas) checkOwnership(r, false);
    // Let the network move between operations (no fixed wait: one turn of the event loop).
    await new Promise((resolve) => setImmediate(resolve));
  }

  // All online, no more faults; everything settles, then two rounds of sync().
  faultsOn = false;
  for (const r of replicas) r.offlineUntil = 0;
  for (const r of replicas) await Promise.all(r.inFlight);
  for (let round = 0; round < 2; round++) {
    for (const r of replicas) {
      try {
        await r.store.sync();
      } catch (err) {
        problem(`sync: ${r.name} could not sync with everything online: ${String(err)}`);
      }
      checkRebase(r, `final sync ${round + 1}`);
    }
  }

  // The server's truth, over the API, all pages.
  const server = { alice: {} as Record<string, Task[]>, bob: {} as Record<string, Task[]> };
  for (const user of ['alice', 'bob'] as const) {
    const client = createTodoClient({ baseUrl, token: tokens[user] });
    for (const sort of SORTS) {
      const list: Task[] = [];
      for await (const task of client.tasks({ sort, limit: 100 })) list.push(task);
      server[user][sort] = list;
    }
    for (const status of ['pending', 'completed'] as const) {
      const list: Task[] = [];
      for await (const task of client.tasks({ status, limit: 100 })) list.push(task);
      server[user][status] = list;
    }
  }
  const tombstones = new Set((await built.sql<{ id: string }[]>`SELECT task_id::text AS id FROM task_tombstones`).map((row) => row.id));

  for (const user of ['alice', 'bob'] as const) {
    const list = server[user].created ?? [];
    if (new Set(list.map((x) => x.id)).size !== list.length) problem(`exactly once: the server lists an id twice for ${user}`);
    for (const task of list) {
      if (created.get(task.id) !== user) problem(`exactly once: ${user}'s task ${task.id} ("${task.title}") on the server was created by no store of ${user} (a duplicate?)`);
    }
    const deleted = await built.sql<{ id: string }[]>`SELECT task_id::text AS id FROM task_tombstones WHERE user_id = ${user}`;
    for (const { id } of deleted) {
      if (created.get(id) !== user) problem(`exactly once: ${user}'s task ${id}, deleted since, was created by no store of ${user} (a duplicate?)`);
    }
    const ids = new Set(list.map((x) => x.id));
    for (const [id, owner] of created) {
      if (owner !== user || ids.has(id)) continue;
      if (!tombstones.has(id)) problem(`exactly once: ${user}'s accepted create ${id} never reached the server (lost)`);
      else {
        const clearable = bulk.clearCompleted.has(user) && (completedByUpdate.has(id) || bulk.completeAll.has(user));
        if (!removed.has(id) && !clearable) problem(`exactly once: ${user}'s task ${id} was deleted though no store removed or cleared it`);
      }
    }
  }

  for (const r of replicas) {
    if (r.store.pendingCount !== 0) problem(`sync: ${r.name} still has ${r.store.pendingCount} queued mutations`);
    checkOwnership(r, true);
    for (const sort of SORTS) {
      const mine = r.store.tasks({ sort });
      if (new Set(mine.map((x) => x.id)).size !== mine.length) problem(`convergence: ${r.name} lists an id twice (sort=${sort})`);
      if (!isDeepStrictEqual(mine, server[r.user][sort])) {
        const theirs = server[r.user][sort] ?? [];
        const diff = [
          ...mine.filter((x) => !theirs.some((y) => isDeepStrictEqual(x, y))).map((x) => `+${x.id.slice(0, 8)}`),
          ...theirs.filter((y) => !mine.some((x) => isDeepStrictEqual(x, y))).map((y) => `-${y.id.slice(0, 8)}`),
        ];
        problem(`convergence: ${r.name}'s tasks({ sort: '${sort}' }) differ from GET /api/tasks?sort=${sort} (${mine.length} vs ${theirs.length}; ${diff.slice(0, 6).join(' ') || 'order'})`);
      }
    }
    for (const status of ['pending', 'completed'] as const) {
      if (!isDeepStrictEqual(r.store.tasks({ status }), server[r.user][status])) problem(`convergence: ${r.name}'s tasks({ status: '${status}' }) differ from the server's`);
    }
    // What it reported must be true: conflicts about real tasks, errors only where retrying cannot help.
    for (const c of r.conflicts) {
      if (c.kind === 'deleted' && !tombstones.has(c.id)) problem(`conflict: ${r.name} reported ${c.id} deleted, but it never was`);
      if (c.kind === 'field' && isDeepStrictEqual(c.local, c.server)) problem(`conflict: ${r.name} reported a field conflict with equal values`);
    }
    for (const e of r.errors) {
      const m = e.mutation;
      const anchor = m.kind === 'move' ? ('before' in m.to ? m.to.before : 'after' in m.to ? m.to.after : undefined) : undefined;
      const expected = e.error instanceof TodoApiError && e.error.status === 400 && anchor !== undefined && tombstones.has(anchor);
      if (!expected) problem(`error: ${r.name} dropped ${JSON.stringify(m)}: ${String(e.error)}`);
    }
  }
  stats.conflicts = replicas.reduce((n, r) => n + r.conflicts.length, 0);
  stats.errors = replicas.reduce((n, r) => n + r.errors.length, 0);
  stats.onServer = (server.alice.created?.length ?? 0) + (server.bob.created?.length ?? 0);
  stats.deleted = tombstones.size;
  for (const r of replicas) await r.store.close();
  return { problems, stats };
}

const seed = process.env.STORE_SEED !== undefined ? Number(process.env.STORE_SEED) : Math.floor(Math.random() * 2 ** 31);
t.comment(`STORE_SEED=${seed}`);

t.test('convergence under chaos: 5 stores of alice and 1 of bob, 2,000 mutations', async (t) => {
  const started = Date.now();
  const { problems, stats } = await runScenario(t, { seed, alice: 5, bob: 1, mutations: 2000, fault: 0.04 });
  t.comment(`seed ${seed}: ${JSON.stringify(stats)} in ${Date.now() - started} ms`);
  t.ok(stats.mutations! >= 2000, 'at least 2,000 mutations');
  t.same([...MUTATIONS].filter((op) => !stats[`op:${op}`]), [], 'mutations of every kind were made');
  t.ok(stats.failedBefore! > 0 && stats.lost! > 0 && stats.offline! > 0 && stats.restarts! > 0, 'faults of every kind happened');
  t.same(problems, [], `no problem (replay with STORE_SEED=${seed})`);
});

t.test('the checks bite: replays made non-idempotent are caught', async (t) => {
  const { problems, stats } = await runScenario(t, { seed, alice: 2, bob: 1, mutations: 150, fault: 0.15, sabotage: 'replay' });
  t.ok(stats.stripped! > 0, `creates were resent without their id (${stats.stripped})`);
  t.ok(
    problems.some((p) => p.startsWith('exactly once:')),
    'a duplicate is reported as a failure of "exactly once"',
  );
});

t.test('the checks bite: a view that skips the outbox is caught', async (t) => {
  const { problems } = await runScenario(t, { seed, alice: 2, bob: 1, mutations: 150, fault: 0.05, sabotage: 'rebase' });
  t.ok(
    problems.some((p) => p.startsWith('rebase:')),
    'the view differs from the server state with the outbox on top',
  );
  t.ok(
    problems.some((p) => p.startsWith('optimistic:')),
    'and a mutation does not show at once',
  );
});
