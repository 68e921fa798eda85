/**
 * The TypeScript client's sync methods (clients/typescript/src/index.ts) against the real
 * server over real HTTP: counts, the bulk update and delete, the change feed as pages
 * (changes()), and the live stream (stream()): another client's writes arriving, reconnects
 * after a cut connection, a network failure, a 5xx and a 429 that resume from the last
 * next_since without losing or repeating a change, errors that stop it (410, 401, 400),
 * and ending it with a signal or by leaving the loop. Tests wait on events; the timeouts
 * are only a safety net.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import type { AppOptions } from '../../src/app.ts';
import {
  createTodoClient,
  TodoApiError,
  type ChangePage,
  type TaskStatus,
  type TodoClientOptions,
} from '../../clients/typescript/src/index.ts';
import { build, token, type Test } from '../helper.ts';

type Fetch = NonNullable<TodoClientOptions['fetch']>;

/** The app listening on loopback, and a maker of alice's clients for it. */
async function serve(t: Test, options: Partial<AppOptions> = {}) {
  const built = await build(t, options);
  await built.app.listen({ port: 0, host: '127.0.0.1' });
  const baseUrl = `http://127.0.0.1:${(built.app.server.address() as AddressInfo).port}`;
  const alice = token('alice');
  const client = (extra: Partial<TodoClientOptions> = {}) => createTodoClient({ baseUrl, token: alice, ...extra });
  // Every stream a test opens ends before the app closes (teardowns run last-in first-out);
  // then its connections are cut, so that close() does not give them its grace (500 ms).
  const stop = new AbortController();
  t.teardown(() => {
    stop.abort();
    built.app.server.closeAllConnections();
  });
  return { ...built, baseUrl, alice, client, stop: stop.signal };
}

/** A safety net only: a promise that has not settled within `ms` fails the test instead of hanging it. */
async function within<T>(promise: Promise<T>, ms = 5000, what = 'the next page'): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The injected fetch, recording each request. */
function recording(requests: Request[], then: Fetch = (request) => fetch(request)): Fetch {
  return (request) => {
    requests.push(request);
    return then(request);
  };
}

async function failure(promise: Promise<unknown>): Promise<TodoApiError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof TodoApiError) return err;
    throw err;
  }
  throw new Error('expected a TodoApiError, got an answer');
}

/** The next page of a stream or feed iterator (failing if it ended). */
async function next(it: AsyncIterator<ChangePage>, what?: string): Promise<ChangePage> {
  const result = await within(it.next(), 5000, what);
  if (result.done) throw new Error(`${what ?? 'the iterator'}: ended`);
  return result.value;
}

const summary = (page: ChangePage) => page.changes.map((c) => (c.type === 'upsert' ? `upsert ${c.task.title}` : `delete ${c.id}`));
const query = (request: Request) => Object.fromEntries(new URL(request.url).searchParams);

/** Resolves when the server sees the client close its (first) change stream. */
function streamClosedOnServer(app: { server: { on: (e: 'request', f: (req: IncomingMessage, res: ServerResponse) => void) => unknown } }) {
  return new Promise<void>((resolve) => {
    app.server.on('request', (req, res) => {
      if (req.url?.startsWith('/api/tasks/changes/stream')) res.on('close', () => resolve());
    });
  });
}

t.test('counts(): the three numbers, and overdue and due_today with today', async (t) => {
  const { client } = await serve(t);
  const todo = client();
  await todo.createTask({ title: 'overdue', due_date: '2026-01-05' });
  await todo.createTask({ title: 'due today', due_date: '2026-01-07' });
  await todo.createTask({ title: 'later', due_date: '2026-01-09' });
  const done = await todo.createTask({ title: 'done', due_date: '2026-01-01' });
  await todo.updateTask(done, { status: 'completed' });
  await client({ token: token('bob') }).createTask({ title: "bob's", due_date: '2026-01-07' });

  t.same(await todo.counts(), { pending: 3, completed: 1, total: 4 }, 'without today: exactly the three numbers');
  t.same(await todo.counts({ today: '2026-01-07' }), { pending: 3, completed: 1, total: 4, overdue: 1, due_today: 1 }, 'with today');
  const bad = await failure(todo.counts({ today: 'tomorrow' }));
  t.equal(bad.status, 400);
  t.equal(bad.body.code, 'VALIDATION_ERROR');
  if (bad.body.code === 'VALIDATION_ERROR') t.same(bad.body.details.map((d) => d.field), ['today']);
});

t.test('updateTasks() ("mark all as done") and deleteTasks() ("clear completed")', async (t) => {
  const { client } = await serve(t);
  const requests: Request[] = [];
  const todo = client({ fetch: recording(requests) });
  const bob = client({ token: token('bob') });
  const bobs = await bob.createTask({ title: "bob's" });
  for (const title of ['a', 'b']) await todo.createTask({ title });
  const c = await todo.createTask({ title: 'c' });
  await todo.updateTask(c, { status: 'completed' });

  t.same(await todo.updateTasks({ status: 'pending' }, { status: 'completed' }), { updated: 1 }, 'only the tasks with the query status');
  t.same(await todo.updateTasks({ status: 'completed' }), { updated: 3 }, 'without a query: all');
  t.same(await todo.updateTasks({ status: 'completed' }), { updated: 0 }, 'tasks that already have it are not counted');
  t.same(await todo.counts(), { pending: 0, completed: 3, total: 3 });
  t.same(await todo.deleteTasks({ status: 'completed' }), { deleted: 3 });
  t.same((await todo.listTasks()).items, [], 'cleared');
  t.equal((await bob.getTask(bobs.id)).status, 'pending', "bob's task untouched");

  const bulk = requests.filter((r) => new URL(r.url).pathname === '/api/tasks' && r.method !== 'POST' && r.method !== 'GET');
  t.same(
    bulk.map((r) => `${r.method} ${new URL(r.url).search}`),
    ['PATCH ?status=completed', 'PATCH ', 'PATCH ', 'DELETE ?status=completed'],
    'PATCH and DELETE /api/tasks with the status query',
  );
  const bad = await failure(todo.deleteTasks({ status: 'done' as TaskStatus }));
  t.equal(bad.status, 400, 'a bad status: TodoApiError 400');
  t.equal(bad.body.code, 'VALIDATION_ERROR');
});

t.test('changePage() and changes(): the feed page by page with limit=2, until has_more is false', async (t) => {
  const { client } = await serve(t);
  const requests: Request[] = [];
  const todo = client({ fetch: recording(requests) });
  const ids: string[] = [];
  for (let i = 0; i < 5; i++) ids.push((await todo.createTask({ title: `task ${i}` })).id);

  const one = await todo.changePage({ limit: 2 });
  t.equal(one.changes.length, 2, 'changePage: one page of 2');
  t.equal(one.has_more, true);

  requests.length = 0;
  const pages: ChangePage[] = [];
  for await (const page of todo.changes({ limit: 2 })) pages.push(page);
  t.ok(pages.length >= 3, `${pages.length} pages`);
  t.ok(pages.slice(0, -1).every((p) => p.has_more) && pages.at(-1)?.has_more === false, 'it ends after the first page with has_more false');
  const seen = pages.flatMap((p) => p.changes.map((c) => (c.type === 'upsert' ? c.task.id : `delete ${c.id}`)));
  t.same([...seen].sort(), [...ids].sort(), 'every task once, in a full sync');
  t.equal(requests.length, pages.length, 'one request a page, none after the last');
  t.same(query(requests[0]!), { limit: '2' }, 'the first without since');
  for (let i = 1; i < requests.length; i++) t.same(query(requests[i]!), { limit: '2', since: pages[i - 1]!.next_since }, `request ${i + 1}: since = the previous next_since`);

  const last = pages.at(-1)!;
  const added = await todo.createTask({ title: 'added' });
  await todo.deleteTask(ids[0]!);
  const later: ChangePage[] = [];
  for await (const page of todo.changes({ since: last.next_since })) later.push(page);
  t.same(later.map(summary), [[`upsert added`, `delete ${ids[0]}`]], 'from since: only what changed, in commit order');
  t.equal(added.title, 'added');
});

t.test('stream(): what another client changes arrives on the stream', async (t) => {
  const { client, alice, stop } = await serve(t);
  const requests: Request[] = [];
  const mine = client({ fetch: recording(requests) });
  const other = client();
  const existing = await other.createTask({ title: 'existing' });
  const it = mine.stream({ signal: stop });

  t.same(summary(await next(it, 'the full sync')), ['upsert existing'], 'the first page is a full sync');
  const created = await other.createTask({ title: 'from the other client' });
  t.same(summary(await next(it)), ['upsert from the other client']);
  await other.updateTask(created, { status: 'completed' });
  const updated = await next(it);
  t.match(updated.changes, [{ type: 'upsert', task: { id: created.id, status: 'completed' } }], 'an update');
  await other.deleteTask(existing.id);
  t.same(summary(await next(it)), [`delete ${existing.id}`], 'a deletion');
  await client({ token: token('bob') }).createTask({ title: "bob's" });
  await other.updateTasks({ status: 'pending' });
  t.same(summary(await next(it)), ['upsert from the other client'], "a bulk update; bob's write never reaches alice's stream");
  t.equal(requests.length, 1, 'all on one connection');
  t.equal(requests[0]!.headers.get('authorization'), `Bearer ${alice}`, "with the client's token");
});

/**
 * Passes the first response's first event through, then half of what follows, then fails
 * as a dropped connection does, or ends as a body cut short by a proxy does.
 */
function cutMidway(requests: Request[], cut: { partial?: string }, how: 'fails' | 'ends'): Fetch {
  return recording(requests, async (request) => {
    const response = await fetch(request);
    if (requests.length > 1 || !response.body) return response;
    const upstream = response.body.getReader();
    const decoder = new TextDecoder();
    const encoder = new TextEncoder();
    let seen = '';
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        const { done, value } = await upstream.read();
        if (done) return controller.close();
        const text = decoder.decode(value, { stream: true });
        seen += text;
        const firstEnd = seen.indexOf('\n\n') + 2;
        if (firstEnd < 2 || firstEnd >= seen.length) return controller.enqueue(value);
        const from = Math.max(0, firstEnd - (seen.length - text.length)); // where, in this chunk, the next event starts
        const rest = text.slice(from);
        cut.partial = rest.slice(0, Math.floor(rest.length / 2));
        controller.enqueue(encoder.encode(text.slice(0, from) + cut.partial));
        if (how === 'fails') controller.error(new TypeError('terminated: the connection was cut'));
        else controller.close();
        await upstream.cancel();
      },
    });
    return new Response(body, { status: response.status, headers: response.headers });
  });
}

for (const how of ['fails', 'ends'] as const) {
  t.test(`stream(): a connection that ${how} in the middle of an event resumes from the last next_since, losing and repeating nothing`, async (t) => {
    const { client, stop } = await serve(t);
    const requests: Request[] = [];
    const cut: { partial?: string } = {};
    const retries: number[] = [];
    const mine = client({ fetch: cutMidway(requests, cut, how) });
    const other = client();
    await other.createTask({ title: 'before' });
    const it = mine.stream({ signal: stop, retryMs: (attempt) => (retries.push(attempt), 0) });

    const first = await next(it, 'the full sync');
    t.same(summary(first), ['upsert before']);
    await other.createTask({ title: 'during' }); // its event is the one cut in half on the first connection
    const second = await next(it, 'the page after the reconnect');
    t.match(cut.partial, /^id: [\w-]+\nevent: changes\ndata: \{"changes":\[/, 'the first connection was cut in the middle of an event');
    t.notMatch(cut.partial, /\n\n/, '(before its end)');
    t.same(summary(second), ['upsert during'], 'the change whose event was cut arrives once, after the reconnect');
    t.equal(requests.length, 2, 'one reconnect');
    t.same(query(requests[0]!), {}, 'the first connection: a full sync');
    t.same(query(requests[1]!), { since: first.next_since }, "the reconnect: since = the last page's next_since");
    t.same(retries, [0], 'one wait, the first of the backoff');

    await other.createTask({ title: 'after' });
    t.same(summary(await next(it)), ['upsert after'], 'and it goes on: nothing repeated');
  });
}

t.test('stream(): a network failure and a 5xx are retried with backoff, reset after a connection; a closed socket reconnects', async (t) => {
  const { client, api, app, alice, stop } = await serve(t);
  const requests: Request[] = [];
  const retries: number[] = [];
  let tokens = 0;
  const mine = client({
    getToken: () => (tokens++, alice),
    fetch: recording(requests, async (request) => {
      if (requests.length === 1) throw new TypeError('fetch failed');
      if (requests.length === 2) {
        const body = { error: { code: 'SERVICE_UNAVAILABLE', message: 'down for a moment', details: null } };
        return new Response(JSON.stringify(body), { status: 503, headers: { 'content-type': 'application/json' } });
      }
      return fetch(request);
    }),
  });
  await api.createTask('alice', 'existing');
  const it = mine.stream({ signal: stop, retryMs: (attempt) => (retries.push(attempt), 0) });

  const first = await next(it, 'the full sync after two failures');
  t.same(summary(first), ['upsert existing']);
  t.same(retries, [0, 1], 'the backoff grew: attempt 0, then 1');
  app.server.closeAllConnections(); // the server's socket closes under the open stream
  await api.createTask('alice', 'after the cut'); // through inject: no socket involved
  t.same(summary(await next(it, 'the page after the reconnect')), ['upsert after the cut'], 'only the new change');
  t.equal(requests.length, 4);
  t.same(query(requests[3]!), { since: first.next_since }, 'resumed from the last next_since');
  t.same(retries, [0, 1, 0], 'the backoff started again after the successful connection');
  t.equal(tokens, 4, 'getToken asked before each connection (a token may expire meanwhile)');
});

t.test('stream(): 429 TOO_MANY_STREAMS waits Retry-After and tries again', async (t) => {
  const { client, stop } = await serve(t);
  const five: AbortController[] = [];
  for (let i = 0; i < 5; i++) {
    const own = new AbortController();
    t.teardown(() => own.abort());
    five.push(own);
    await next(client().stream({ signal: own.signal }), `stream ${i + 1}`);
  }
  const statuses: number[] = [];
  const times: number[] = [];
  const retries: number[] = [];
  let refused!: () => void;
  const wasRefused = new Promise<void>((resolve) => (refused = resolve));
  const sixth = client({
    fetch: async (request) => {
      times.push(Date.now());
      const response = await fetch(request);
      statuses.push(response.status);
      if (response.status !== 429) return response;
      times.push(Date.now());
      refused();
      // The server's own 429, with Retry-After shortened from 5 s to 1 s to keep the test short.
      const headers = new Headers(response.headers);
      headers.set('retry-after', '1');
      return new Response(response.body, { status: 429, headers });
    },
  }).stream({ signal: stop, retryMs: (attempt) => (retries.push(attempt), 0) });

  const page = within(sixth.next(), 10_000, 'the sixth stream');
  await within(wasRefused, 5000, 'the 429');
  five[0]!.abort(); // frees a place
  const first = await page;
  t.equal(first.done, false, 'the sixth stream got its first page');
  t.equal(statuses[0], 429);
  t.equal(statuses.at(-1), 200);
  t.ok(
    statuses.slice(0, -1).every((s) => s === 429),
    `429 until a place was free: ${statuses.join(', ')}`,
  );
  t.ok(times[2]! - times[1]! >= 900, `waited Retry-After before trying again (${times[2]! - times[1]!} ms)`);
  t.same(retries, [], 'not the backoff');
});

t.test('stream(), changes() and changePage(): 410 SYNC_EXPIRED, 401 and 400 are thrown as TodoApiError and stop the stream; so is a failing getToken', async (t) => {
  const { client, app, stop } = await serve(t, { syncRetentionDays: 0 });
  const requests: Request[] = [];
  const todo = client({ fetch: recording(requests) });
  const task = await todo.createTask({ title: 'soon deleted' });
  const { next_since: since } = await todo.changePage();
  await todo.deleteTask(task.id);
  const swept = await app.housekeeping();
  t.equal(swept.tombstones, 1, 'the deletion is forgotten: since is now older than the history kept');

  requests.length = 0;
  const it = todo.stream({ since, signal: stop, retryMs: () => 0 });
  const expired = await failure(within(it.next(), 5000, 'the 410'));
  t.equal(expired.status, 410);
  t.equal(expired.body.code, 'SYNC_EXPIRED', 'the caller does a full sync');
  t.same(await within(it.next()), { done: true, value: undefined }, 'the stream stopped');
  t.equal(requests.length, 1, 'no retry');

  t.equal((await failure(todo.changePage({ since }))).body.code, 'SYNC_EXPIRED', 'changePage too');
  t.equal((await failure(todo.changes({ since }).next())).body.code, 'SYNC_EXPIRED', 'changes too');

  const anonymous = await failure(within(createTodoClient({ baseUrl: new URL(requests[0]!.url).origin }).stream({ signal: stop }).next()));
  t.equal(anonymous.status, 401, 'no token: 401');
  t.equal(anonymous.body.code, 'NOT_AUTHENTICATED');
  const bad = await failure(within(todo.stream({ since: 'nonsense', signal: stop }).next()));
  t.equal(bad.status, 400, 'a since this API did not issue: 400');
  const signedOut = client({
    getToken: () => {
      throw new Error('signed out');
    },
  });
  await t.rejects(within(signedOut.stream({ signal: stop, retryMs: () => 0 }).next()), { message: 'signed out' }, "getToken's error is thrown, not retried");
});

t.test('stream(): aborting the signal ends the iterator and its request, also while it waits to reconnect', async (t) => {
  const { client, app } = await serve(t);
  const requests: Request[] = [];
  const closed = streamClosedOnServer(app);
  const own = new AbortController();
  // A reconnect would wait a minute: ending must not go through one.
  const it = client({ fetch: recording(requests) }).stream({ signal: own.signal, retryMs: () => 60_000 });
  await next(it, 'the full sync');
  const waiting = it.next();
  own.abort();
  t.same(await within(waiting, 5000, 'the end'), { done: true, value: undefined }, 'a pending next() ends (returns)');
  t.equal(requests[0]!.signal.aborted, true, 'its fetch was aborted');
  await within(closed, 5000, 'the server to see the stream close');
  t.pass('the server saw the stream close');

  let sleeping!: () => void;
  const asleep = new Promise<void>((resolve) => (sleeping = resolve));
  const down = new AbortController();
  const failing = client({
    fetch: async () => {
      throw new TypeError('fetch failed');
    },
  }).stream({ signal: down.signal, retryMs: () => (sleeping(), 60_000) });
  const pending = failing.next();
  await within(asleep, 5000, 'the backoff');
  down.abort();
  t.same(await within(pending, 2000, 'the end of a minute-long wait'), { done: true, value: undefined }, 'the wait before a reconnect ends at once');

  // Two events in one chunk: aborted after the first, the second is not yielded.
  const page = (title: string) => ({ changes: [{ type: 'delete', id: title }], next_since: title, has_more: false });
  const chunk = `event: changes\ndata: ${JSON.stringify(page('one'))}\n\nevent: changes\ndata: ${JSON.stringify(page('two'))}\n\n`;
  const twice = new AbortController();
  const together = client({
    fetch: async (request) => {
      request.signal.addEventListener('abort', () => void body.cancel().catch(() => {}));
      const body = new ReadableStream<Uint8Array>({ start: (c) => c.enqueue(new TextEncoder().encode(chunk)) });
      return new Response(body, { status: 200, headers: { 'content-type': 'text/event-stream' } });
    },
  }).stream({ signal: twice.signal, retryMs: () => 60_000 });
  t.equal((await next(together)).next_since, 'one');
  twice.abort();
  t.same(await within(together.next(), 2000, 'the end'), { done: true, value: undefined }, 'nothing after the abort, even what was already received');

  const count = requests.length;
  t.same(await client({ fetch: recording(requests) }).stream({ signal: AbortSignal.abort() }).next(), { done: true, value: undefined }, 'an aborted signal: no page');
  t.equal(requests.length, count, '...and no request');
});

t.test('stream(): leaving the for-await aborts the request', async (t) => {
  const { client, app, api } = await serve(t);
  const requests: Request[] = [];
  await api.createTask('alice', 'one');
  const closed = streamClosedOnServer(app);
  let pages = 0;
  for await (const page of client({ fetch: recording(requests) }).stream()) {
    pages += page.changes.length > 0 ? 1 : 0;
    break;
  }
  t.equal(pages, 1);
  t.equal(requests[0]!.signal.aborted, true, 'the fetch was aborted');
  await within(closed, 5000, 'the server to see the stream close');
  t.pass('the server saw the stream close');
});
