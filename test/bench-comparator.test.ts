/**
 * The bench's minimal server (bench/minimal-server.ts) does the same work as the API: on
 * one database, it answers what the API answers (bodies, statuses, cursors) for every
 * request the bench sends. Otherwise the ratio would compare
 * different work.
 */
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { startServer } from '../bench/servers.ts';
import { build, SECRET, token } from './helper.ts';

t.test('the minimal server answers what the API answers', async (t) => {
  const { api, url } = await build(t);
  const logFile = join(tmpdir(), `todo-api-minimal-${process.pid}.log`);
  const minimal = await startServer({ target: 'minimal', databaseUrl: url, secretKey: SECRET, logFile });
  t.teardown(async () => {
    await minimal.stop();
    await rm(logFile, { force: true });
  });
  const send = async (method: string, path: string, user: string | null, body?: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(`${minimal.url}${path}`, {
      method,
      headers: {
        ...(user !== null && { authorization: `Bearer ${token(user, { email: `${user}@example.com` })}` }),
        'content-type': 'application/json',
        ...headers,
      },
      ...(body !== undefined && { body: JSON.stringify(body) }),
    });
    return { status: res.status, etag: res.headers.get('etag'), body: (await res.json()) as any };
  };
  const asApi = (user: string) => ({ as: user });

  // The same observable work: the API's header set on every answer (its log line is checked by test/bench.test.ts).
  // What differs by design (per response, or the API's own features): the rest must be equal.
  const varying = new Set(['date', 'content-length', 'x-request-id', 'connection', 'keep-alive', 'ratelimit-limit', 'ratelimit-remaining', 'ratelimit-reset', 'vary', 'location', 'content-type']);
  const comparable = (headers: Iterable<[string, unknown]>) => Object.fromEntries([...headers].filter(([name]) => !varying.has(name)).map(([name, value]) => [name, String(value)]));
  const minimalList = await fetch(`${minimal.url}/api/tasks?limit=1`, { headers: { authorization: `Bearer ${token('alice')}` } });
  const apiList = await api.get('/api/tasks?limit=1', asApi('alice'));
  t.same(comparable(minimalList.headers), comparable(Object.entries(apiList.headers)), 'the same response headers as the API');
  t.match(minimalList.headers.get('x-request-id'), /^[0-9a-f-]{36}$/, 'and a request id');

  const created = await send('POST', '/api/tasks', 'alice', { title: 'from the minimal server' });
  t.equal(created.status, 201, 'create: 201');
  const viaApi = await api.get(`/api/tasks/${created.body.id}`, asApi('alice'));
  t.same(created.body, viaApi.json(), 'create: the same task the API reads back');

  // A create with an Idempotency-Key claims the key as the API does: the API answers a retry with that task.
  const keyed = await send('POST', '/api/tasks', 'alice', { title: 'keyed' }, { 'idempotency-key': 'bench-key-1' });
  t.equal(keyed.status, 201, 'create with a key: 201');
  const retried = await api.post('/api/tasks', { as: 'alice', payload: { title: 'keyed' }, headers: { 'idempotency-key': 'bench-key-1' } });
  t.equal(retried.headers['idempotent-replayed'], 'true', "create with a key: the API replays the minimal server's create");
  t.same(retried.json(), keyed.body, 'create with a key: the same task');

  for (let i = 0; i < 60; i++) await api.createTask('alice', `task ${i}`);
  const page = await send('GET', '/api/tasks?limit=50', 'alice');
  const apiPage = await api.get('/api/tasks?limit=50', asApi('alice'));
  t.equal(page.status, 200);
  t.same(page.body, apiPage.json(), 'list: the same page, cursor included');
  t.equal(page.body.items.length, 50);
  const next = await send('GET', `/api/tasks?limit=50&cursor=${page.body.next_cursor}`, 'alice');
  const apiNext = await api.get(`/api/tasks?limit=50&cursor=${page.body.next_cursor}`, asApi('alice'));
  t.same(next.body, apiNext.json(), 'list: the same second page from the same cursor');

  // The sorts, the status filter and the search the bench sends, two pages each (the second from the minimal server's cursor).
  for (let i = 0; i < 12; i++) await api.post('/api/tasks', { as: 'alice', payload: { title: `dated ${i}`, notes: i % 2 ? 'buy milk' : '', due_date: `2026-0${1 + (i % 3)}-1${i % 4}` } });
  for (const listing of ['sort=position', 'sort=due', 'sort=updated&status=pending', 'sort=created&status=pending', 'q=mil', 'q=TASK%205']) {
    const first = await send('GET', `/api/tasks?limit=5&${listing}`, 'alice');
    t.same(first.body, (await api.get(`/api/tasks?limit=5&${listing}`, asApi('alice'))).json(), `list ?${listing}: the same first page`);
    t.type(first.body.next_cursor, 'string', `list ?${listing}: a next page`);
    const second = await send('GET', `/api/tasks?limit=5&${listing}&cursor=${first.body.next_cursor}`, 'alice');
    const apiSecond = await api.get(`/api/tasks?limit=5&${listing}&cursor=${first.body.next_cursor}`, asApi('alice'));
    t.equal(apiSecond.statusCode, 200, `list ?${listing}: the API takes the minimal server's cursor`);
    t.same(second.body, apiSecond.json(), `list ?${listing}: the same second page`);
  }

  const got = await send('GET', `/api/tasks/${created.body.id}`, 'alice');
  const apiGot = await api.get(`/api/tasks/${created.body.id}`, asApi('alice'));
  t.same(got.body, apiGot.json(), 'get: the same body');
  t.equal(got.etag, apiGot.headers.etag, 'get: the same ETag');

  const patched = await send('PATCH', `/api/tasks/${created.body.id}`, 'alice', { status: 'completed' });
  t.equal(patched.status, 200, 'patch: 200');
  t.equal(patched.body.status, 'completed');
  t.same(patched.body, (await api.get(`/api/tasks/${created.body.id}`, asApi('alice'))).json(), 'patch: the stored task');

  const neighbour = apiPage.json().items[3].id as string;
  const moved = await send('POST', `/api/tasks/${created.body.id}/move`, 'alice', { before: neighbour });
  t.equal(moved.status, 200, 'move: 200');
  t.same(moved.body, (await api.get(`/api/tasks/${created.body.id}`, asApi('alice'))).json(), 'move: the stored task');
  const order = (await api.get('/api/tasks?sort=position&limit=100', asApi('alice'))).json().items.map((x: { id: string }) => x.id);
  t.equal(order.indexOf(created.body.id), order.indexOf(neighbour) - 1, 'move: just before the neighbour');
  const top = await send('POST', `/api/tasks/${created.body.id}/move`, 'alice', { to: 'top' });
  t.equal(top.status, 200, 'move to the top: 200');
  t.equal((await api.get('/api/tasks?sort=position&limit=1', asApi('alice'))).json().items[0].id, created.body.id, 'move: now first');
  t.equal((await send('POST', `/api/tasks/${created.body.id}/move`, 'bob', { to: 'top' })).status, 403, "move of another user's task: 403");

  t.equal((await send('GET', `/api/tasks/${created.body.id}`, 'bob')).status, 403, "another user's task: 403, as the API");
  t.equal((await send('PATCH', `/api/tasks/${created.body.id}`, 'bob', { status: 'pending' })).status, 403, 'and it is left untouched');
  t.equal((await api.get(`/api/tasks/${created.body.id}`, asApi('alice'))).json().status, 'completed');
  t.equal((await send('GET', '/api/tasks/00000000-0000-4000-8000-000000000000', 'alice')).status, 404, 'a missing task: 404');
  t.equal((await send('GET', '/api/tasks', null)).status, 401, 'no token: 401');
});
