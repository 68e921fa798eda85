/**
 * GET /api/tasks/changes/stream over real HTTP: server-sent events that start
 * with a change-feed page and follow the caller's writes on any instance (two
 * apps on one database here), keep-alives, the per-user limit, and streams
 * that never hold up a shutdown.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import postgres from 'postgres';
import t from 'tap';
import { buildApp } from '../../src/app.ts';
import { createSql } from '../../src/db/client.ts';
import { CHANGES_CHANNEL } from '../../src/tasks/queries.ts';
import { contractProblems } from '../contract.ts';
import { build, ORIGIN, SECRET, token, type Test } from '../helper.ts';

interface SseEvent {
  event: string | undefined;
  data: string | undefined;
  comment: boolean;
}

interface Stream {
  status: number;
  headers: Headers;
  body: string;
  /** The next event (or comment) not yet taken, waiting at most `ms`. */
  next(ms?: number): Promise<SseEvent>;
  /** The next `changes` event's page. */
  nextPage(ms?: number): Promise<{ changes: Array<Record<string, any>>; next_since: string; has_more: boolean }>;
  ended: Promise<void>;
  close(): void;
}

async function listen(t: Test, app: FastifyInstance): Promise<string> {
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return `http://127.0.0.1:${address.port}`;
}

async function openStream(t: Test, base: string, user: string | null, since?: string, headers: Record<string, string> = {}): Promise<Stream> {
  const controller = new AbortController();
  const res = await fetch(`${base}/api/tasks/changes/stream${since ? `?since=${encodeURIComponent(since)}` : ''}`, {
    headers: { ...(user !== null && { authorization: `Bearer ${token(user)}` }), ...headers },
    signal: controller.signal,
  });
  const queue: SseEvent[] = [];
  const waiters: Array<() => void> = [];
  let buffer = '';
  let body = '';
  const ended = (async () => {
    if (!res.body) return;
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        const text = decoder.decode(value, { stream: true });
        body += text;
        buffer += text;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const lines = block.split('\n');
          queue.push({
            event: lines.find((l) => l.startsWith('event: '))?.slice(7),
            data: lines.find((l) => l.startsWith('data: '))?.slice(6),
            comment: lines.every((l) => l.startsWith(':')),
          });
          waiters.splice(0).forEach((w) => w());
        }
      }
    } catch {
      // aborted
    }
    waiters.splice(0).forEach((w) => w());
  })();
  t.teardown(() => controller.abort());
  let finished = false;
  void ended.then(() => (finished = true));
  const next = async (ms = 3000): Promise<SseEvent> => {
    const deadline = Date.now() + ms;
    while (queue.length === 0) {
      if (finished) throw new Error('the stream ended');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no event within ${ms} ms`);
      await new Promise<void>((r) => {
        waiters.push(r);
        setTimeout(r, left);
      });
    }
    return queue.shift()!;
  };
  return {
    status: res.status,
    headers: res.headers,
    get body() {
      return body;
    },
    next,
    async nextPage(ms = 3000) {
      for (;;) {
        const e = await next(ms);
        if (e.event === 'changes' && e.data) return JSON.parse(e.data);
      }
    },
    ended,
    close: () => controller.abort(),
  };
}

/** Two instances of the app on one database, both listening on loopback. */
async function twoInstances(t: Test, extra: { streamHeartbeatMs?: number } = {}) {
  const a = await build(t, extra);
  const other = await buildApp({ sql: createSql(a.url), secretKey: SECRET, corsOrigins: [ORIGIN], ...extra });
  t.teardown(() => other.close());
  return { a, baseA: await listen(t, a.app), baseB: await listen(t, other), b: other };
}

t.test('a stream on one instance sees a write made through another within a second', async (t) => {
  const { a, baseA, baseB } = await twoInstances(t);
  const existing = await a.api.createTask('alice', 'already there');
  const stream = await openStream(t, baseB, 'alice');
  t.equal(stream.status, 200);
  t.match(stream.headers.get('content-type'), /^text\/event-stream/);
  const first = await stream.nextPage();
  t.same(
    first.changes.map((c) => c.task.id),
    [existing.id],
    'the first event is a full sync',
  );
  t.equal(first.has_more, false);

  const started = Date.now();
  const created = await fetch(`${baseA}/api/tasks`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token('alice')}`, 'content-type': 'application/json' },
    body: JSON.stringify({ title: 'from instance A' }),
  });
  t.equal(created.status, 201);
  const page = await stream.nextPage(1000);
  t.ok(Date.now() - started < 1000, `delivered within 1 s (${Date.now() - started} ms)`);
  t.same(
    page.changes.map((c) => [c.type, c.task.title]),
    [['upsert', 'from instance A']],
  );

  await fetch(`${baseA}/api/tasks/${existing.id}`, { method: 'DELETE', headers: { authorization: `Bearer ${token('alice')}` } });
  const deletion = await stream.nextPage(1000);
  t.same(deletion.changes, [{ type: 'delete', id: existing.id }], 'deletions too');

  await a.api.createTask('bob', "bob's");
  await a.api.createTask('alice', 'after bob');
  const mine = await stream.nextPage(1000);
  t.same(
    mine.changes.map((c) => c.task.title),
    ['after bob'],
    "bob's write never reaches alice's stream",
  );
});

t.test('a stream starts from since, and a bad since is a JSON 400 before any event', async (t) => {
  const { a, baseA } = await twoInstances(t);
  await a.api.createTask('alice', 'old');
  const since = (await a.api.get('/api/tasks/changes', { as: 'alice' })).json().next_since as string;
  await a.api.createTask('alice', 'new');
  const stream = await openStream(t, baseA, 'alice', since);
  const first = await stream.nextPage();
  t.same(
    first.changes.map((c) => c.task.title),
    ['new'],
    'only what changed after since',
  );

  const bad = await openStream(t, baseA, 'alice', 'nonsense');
  t.equal(bad.status, 400);
  t.match(bad.headers.get('content-type'), /^application\/json/);
  await bad.ended;
  t.equal(JSON.parse(bad.body).error.code, 'VALIDATION_ERROR');
  const other = await openStream(t, baseA, 'bob', since);
  t.equal(other.status, 400, "another user's since: 400");
  const anonymous = await openStream(t, baseA, null);
  t.equal(anonymous.status, 401, 'no token: 401');
});

t.test("each event's id is its next_since; Last-Event-ID resumes there and wins over since; since=* is a full sync", async (t) => {
  const { a, baseA } = await twoInstances(t);
  await a.api.createTask('alice', 'old');
  const start = await openStream(t, baseA, 'alice', '*');
  t.equal(start.status, 200);
  const full = await start.nextPage();
  t.same(full.changes.map((c) => c.task.title), ['old'], 'since=* starts with a full sync');
  t.match(start.body, new RegExp(`^id: ${full.next_since}\nevent: changes\ndata: `), 'the id line carries the next_since');
  start.close();

  await a.api.createTask('alice', 'missed');
  // An EventSource reconnects with its first URL (here since=*) and the last id it saw.
  const resumed = await openStream(t, baseA, 'alice', '*', { 'last-event-id': full.next_since });
  t.same((await resumed.nextPage()).changes.map((c) => c.task.title), ['missed'], 'only what came after the last event');
  resumed.close();
  const bad = await openStream(t, baseA, 'alice', undefined, { 'last-event-id': 'nonsense' });
  t.equal(bad.status, 400, 'a Last-Event-ID we did not issue is a 400, as such a since is');
  await bad.ended;

  const feed = await a.api.get('/api/tasks/changes?since=*', { as: 'alice' });
  t.equal(feed.statusCode, 200);
  t.same(feed.json().changes.map((c: { task: { title: string } }) => c.task.title).sort(), ['missed', 'old'], 'GET with since=* is a full sync too');
  // fetch keeps a spare keep-alive connection after an aborted stream: close it rather than wait for its timeout.
  a.app.server.closeAllConnections();
});

t.test('keep-alive comments come while nothing changes', async (t) => {
  const { baseA } = await twoInstances(t, { streamHeartbeatMs: 150 });
  const stream = await openStream(t, baseA, 'alice');
  await stream.nextPage();
  const event = await stream.next(1000);
  t.ok(event.comment, 'a comment line');
  t.match(stream.body, /\n: keep-alive\n\n/);
});

t.test('at most 5 streams per user per instance: the sixth is 429 TOO_MANY_STREAMS', async (t) => {
  const { baseA } = await twoInstances(t);
  const streams = [];
  for (let i = 0; i < 5; i++) {
    const s = await openStream(t, baseA, 'alice');
    t.equal(s.status, 200, `stream ${i + 1}: 200`);
    await s.nextPage();
    streams.push(s);
  }
  const sixth = await openStream(t, baseA, 'alice');
  t.equal(sixth.status, 429);
  await sixth.ended;
  t.equal(JSON.parse(sixth.body).error.code, 'TOO_MANY_STREAMS');
  t.ok(sixth.headers.get('retry-after'), 'with Retry-After');
  t.equal((await openStream(t, baseA, 'bob')).status, 200, 'another user is not affected');

  streams[0]?.close();
  await streams[0]?.ended;
  let again = await openStream(t, baseA, 'alice');
  for (let i = 0; again.status === 429 && i < 20; i++) {
    await new Promise((r) => setTimeout(r, 50)); // the server sees the disconnect a moment later
    again = await openStream(t, baseA, 'alice');
  }
  t.equal(again.status, 200, 'closing one frees a place');
});

t.test('the notification names the user only, never task data', async (t) => {
  const { a } = await twoInstances(t);
  const listener = postgres(a.url, { max: 1, onnotice: () => {} });
  t.teardown(() => listener.end());
  // The channel is the database's: test files running beside this one announce their own
  // writes on it too. A user of this test's own marks the write to wait for.
  const user = `notify-${randomUUID()}`;
  const payloads: string[] = [];
  let announced: () => void = () => {};
  const heard = new Promise<void>((resolve) => (announced = resolve));
  await listener.listen(CHANGES_CHANNEL, (payload) => {
    payloads.push(payload);
    if (payload === user) announced();
  });
  await a.api.createTask(user, 'secret title');
  await heard;
  t.notOk(
    payloads.some((p) => p.includes('secret') || p.startsWith('{')),
    'every payload is a bare user id: no title, no task',
  );
  t.equal(payloads.filter((p) => p === user).length, 1, 'one notification for the one write, naming its user');
});

t.test('open streams end at shutdown, and do not delay it', async (t) => {
  const { a, baseA } = await twoInstances(t);
  const streams = [await openStream(t, baseA, 'alice'), await openStream(t, baseA, 'bob')];
  await Promise.all(streams.map((s) => s.nextPage()));
  const started = Date.now();
  await a.app.close();
  t.ok(Date.now() - started < 2000, `closed in ${Date.now() - started} ms`);
  await Promise.all(streams.map((s) => s.ended));
  t.pass('both streams ended');
  for (const s of streams) {
    const received = { method: 'GET', url: '/api/tasks/changes/stream', statusCode: s.status, headers: Object.fromEntries(s.headers), body: s.body };
    t.same(contractProblems(received), [], 'the whole stream conforms to openapi.yaml (every event a ChangePage)');
  }
});
