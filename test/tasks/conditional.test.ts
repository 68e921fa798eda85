/**
 * Conditional requests (RFC 9110): ETags on every one-task answer, 304 for an
 * unchanged task or page, and If-Match writes that never overwrite a change
 * they did not see, even when writers race.
 */
import t from 'tap';
import { build, type Built } from '../helper.ts';

const STRONG = /^"[!#-~]+"$/;

async function stored(built: Built, id: string): Promise<{ title: string; status: string; updated_at: Date } | undefined> {
  const [row] = await built.sql<{ title: string; status: string; updated_at: Date }[]>`
    SELECT title, status, updated_at FROM tasks WHERE id = ${id}`;
  return row;
}

t.test('every one-task answer has a strong ETag that changes with the task, and only then', async (t) => {
  const { api } = await build(t);
  const created = await api.post('/api/tasks', { as: 'alice', payload: { title: 'a' } });
  const id = created.json().id as string;
  const etag = created.headers.etag as string;
  t.match(etag, STRONG, 'POST 201 has a strong ETag');

  const read = await api.get(`/api/tasks/${id}`, { as: 'alice' });
  t.equal(read.headers.etag, etag, 'GET gives the same ETag while nothing changed');
  t.equal((await api.get(`/api/tasks/${id}`, { as: 'alice' })).headers.etag, etag, 'and again');
  await api.post('/api/tasks', { as: 'alice', payload: { title: 'another task' } });
  t.equal((await api.get(`/api/tasks/${id}`, { as: 'alice' })).headers.etag, etag, "another task's change does not change it");

  const patched = await api.patch(`/api/tasks/${id}`, { as: 'alice', payload: { status: 'completed' } });
  t.match(patched.headers.etag, STRONG, 'PATCH 200 has one');
  t.not(patched.headers.etag, etag, 'a change gives a new ETag');
  const put = await api.put(`/api/tasks/${id}`, { as: 'alice', payload: { title: 'b' } });
  t.match(put.headers.etag, STRONG, 'PUT 200 has one');
  t.not(put.headers.etag, patched.headers.etag);
  t.equal((await api.get(`/api/tasks/${id}`, { as: 'alice' })).headers.etag, put.headers.etag, 'GET agrees with the last write');
});

t.test('GET with If-None-Match: 304 while unchanged, 200 once changed', async (t) => {
  const { api } = await build(t);
  const task = await api.createTask('alice', 'a');
  const url = `/api/tasks/${task.id}`;
  const etag = (await api.get(url, { as: 'alice' })).headers.etag as string;

  const same = await api.get(url, { as: 'alice', headers: { 'if-none-match': etag } });
  t.equal(same.statusCode, 304);
  t.equal(same.body, '', 'no body');
  t.equal(same.headers.etag, etag, 'the ETag comes with the 304');
  t.equal((await api.get(url, { as: 'alice', headers: { 'if-none-match': `"other", ${etag}` } })).statusCode, 304, 'a list that contains it');
  t.equal((await api.get(url, { as: 'alice', headers: { 'if-none-match': `W/${etag}` } })).statusCode, 304, 'weak comparison');
  t.equal((await api.get(url, { as: 'alice', headers: { 'if-none-match': '*' } })).statusCode, 304, '* matches');
  t.equal((await api.get(url, { as: 'alice', headers: { 'if-none-match': '"nope"' } })).statusCode, 200, 'another tag: 200');

  await api.patch(url, { as: 'alice', payload: { title: 'b' } });
  const changed = await api.get(url, { as: 'alice', headers: { 'if-none-match': etag } });
  t.equal(changed.statusCode, 200, 'after a change: 200 with the task');
  t.equal(changed.json().title, 'b');

  const other = await api.get(url, { as: 'bob', headers: { 'if-none-match': '*' } });
  t.equal(other.statusCode, 403, "another user's task is still a 403, never a 304");
});

t.test('the list has a weak ETag and honours If-None-Match', async (t) => {
  const { api } = await build(t);
  const task = await api.createTask('alice', 'a');
  const first = await api.get('/api/tasks', { as: 'alice' });
  const etag = first.headers.etag as string;
  t.match(etag, /^W\/"[!#-~]+"$/, 'a weak ETag');

  const same = await api.get('/api/tasks', { as: 'alice', headers: { 'if-none-match': etag } });
  t.equal(same.statusCode, 304);
  t.equal(same.body, '');
  t.equal(same.headers.etag, etag);

  t.not((await api.get('/api/tasks', { as: 'bob' })).headers.etag, etag, "another user's (empty) list has another ETag");
  t.not((await api.get('/api/tasks?status=completed', { as: 'alice' })).headers.etag, etag, 'another page has another ETag');

  for (const change of [
    () => api.patch(`/api/tasks/${task.id}`, { as: 'alice', payload: { status: 'completed' } }),
    () => api.createTask('alice', 'b'),
    () => api.delete(`/api/tasks/${task.id}`, { as: 'alice' }),
  ]) {
    const before = (await api.get('/api/tasks', { as: 'alice' })).headers.etag as string;
    await change();
    const after = await api.get('/api/tasks', { as: 'alice', headers: { 'if-none-match': before } });
    t.equal(after.statusCode, 200, 'a change (update, create, delete) makes the page 200 again');
    t.not(after.headers.etag, before);
  }
});

t.test('PUT, PATCH and DELETE with a stale If-Match: 412, and the task is untouched', async (t) => {
  const built = await build(t);
  const { api } = built;
  const task = await api.createTask('alice', 'original');
  const url = `/api/tasks/${task.id}`;
  const stale = (await api.get(url, { as: 'alice' })).headers.etag as string;
  const current = (await api.patch(url, { as: 'alice', payload: { status: 'completed' } })).headers.etag as string;
  const before = await stored(built, task.id);

  const writes = [
    ['PUT', { title: 'lost update' }],
    ['PATCH', { title: 'lost update', status: 'pending' }],
    ['DELETE', undefined],
  ] as const;
  for (const [method, payload] of writes) {
    const res = await api.request(method, url, { as: 'alice', ...(payload && { payload }), headers: { 'if-match': stale } });
    t.equal(res.statusCode, 412, `${method} with a stale ETag: 412`);
    t.equal(res.json().error.code, 'PRECONDITION_FAILED');
    t.same(await stored(built, task.id), before, `${method}: the task is untouched`);
  }
  for (const weak of [`W/${current}`, 'garbage', '"', `${current.slice(0, -1)}x"`]) {
    const res = await api.patch(url, { as: 'alice', payload: { title: 'x' }, headers: { 'if-match': weak } });
    t.equal(res.statusCode, 412, `If-Match ${weak}: 412 (strong comparison; anything else never matches)`);
  }
  t.same(await stored(built, task.id), before);

  const ok = await api.patch(url, { as: 'alice', payload: { title: 'seen' }, headers: { 'if-match': `"other", ${current}` } });
  t.equal(ok.statusCode, 200, 'the current ETag (in a list) lets the write through');
  t.equal(ok.json().title, 'seen');
  const put = await api.put(url, { as: 'alice', payload: { title: 'star' }, headers: { 'if-match': '*' } });
  t.equal(put.statusCode, 200, 'If-Match: * matches an existing task');
  const del = await api.delete(url, { as: 'alice', headers: { 'if-match': put.headers.etag as string } });
  t.equal(del.statusCode, 204, 'DELETE with the current ETag deletes');
  t.equal(await stored(built, task.id), undefined);
});

t.test('the order of checks: 401, 400, then 403/404, then 412', async (t) => {
  const { api } = await build(t);
  const task = await api.createTask('alice', 'a');
  const url = `/api/tasks/${task.id}`;
  const stale = { 'if-match': '"stale"' };

  t.equal((await api.patch(url, { payload: { title: '' }, headers: stale })).statusCode, 401, 'no token: 401 first');
  t.equal((await api.patch(url, { as: 'alice', payload: { title: '' }, headers: stale })).statusCode, 400, 'a bad body: 400 before 412');
  t.equal((await api.patch('/api/tasks/not-a-uuid', { as: 'alice', payload: { title: 'x' }, headers: stale })).statusCode, 400);
  t.equal((await api.patch(url, { as: 'bob', payload: { title: 'x' }, headers: stale })).statusCode, 403, "another user's task: 403");
  t.equal((await api.patch(url, { as: 'bob', payload: { title: 'x' }, headers: { 'if-match': '*' } })).statusCode, 403, 'even with *');
  const missing = '00000000-0000-4000-8000-000000000000';
  t.equal((await api.patch(`/api/tasks/${missing}`, { as: 'alice', payload: { title: 'x' }, headers: stale })).statusCode, 404);
  t.equal((await api.delete(`/api/tasks/${missing}`, { as: 'alice', headers: { 'if-match': '*' } })).statusCode, 404, '* on a missing task: 404');
  t.equal((await api.patch(url, { as: 'alice', payload: { title: 'x' }, headers: stale })).statusCode, 412, 'then 412');
});

t.test('without If-Match, writes stay unconditional', async (t) => {
  const { api } = await build(t);
  const task = await api.createTask('alice', 'a');
  const url = `/api/tasks/${task.id}`;
  await api.patch(url, { as: 'alice', payload: { title: 'b' } });
  t.equal((await api.put(url, { as: 'alice', payload: { title: 'c' } })).statusCode, 200);
  t.equal((await api.delete(url, { as: 'alice' })).statusCode, 204);
});

t.test('racing conditional writers: exactly one wins, every other one gets 412', async (t) => {
  const built = await build(t);
  const { api } = built;
  for (let round = 0; round < 3; round++) {
    const task = await api.createTask('alice', 'race');
    const url = `/api/tasks/${task.id}`;
    const etag = (await api.get(url, { as: 'alice' })).headers.etag as string;
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        i % 3 === 2
          ? api.put(url, { as: 'alice', payload: { title: `writer ${i}` }, headers: { 'if-match': etag } })
          : api.patch(url, { as: 'alice', payload: { title: `writer ${i}` }, headers: { 'if-match': etag } }),
      ),
    );
    const winners = results.filter((r) => r.statusCode === 200);
    t.equal(winners.length, 1, `round ${round}: exactly one 200`);
    t.equal(results.filter((r) => r.statusCode === 412).length, 11, 'the other eleven: 412');
    t.equal((await stored(built, task.id))?.title, winners[0]?.json().title, "the stored title is the winner's");
  }

  // A delete racing conditional updates: either the delete wins (the rest are 412 or 404) or an update does.
  const task = await api.createTask('alice', 'race with delete');
  const url = `/api/tasks/${task.id}`;
  const etag = (await api.get(url, { as: 'alice' })).headers.etag as string;
  const results = await Promise.all([
    api.delete(url, { as: 'alice', headers: { 'if-match': etag } }),
    ...Array.from({ length: 5 }, (_, i) => api.patch(url, { as: 'alice', payload: { title: `u${i}` }, headers: { 'if-match': etag } })),
  ]);
  t.equal(results.filter((r) => r.statusCode === 200 || r.statusCode === 204).length, 1, 'one write wins');
  t.ok(
    results.every((r) => [200, 204, 404, 412].includes(r.statusCode)),
    'the others are 412 (or 404 once it is gone)',
  );
});
