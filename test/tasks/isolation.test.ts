import t from 'tap';
import { build } from '../helper.ts';

t.test('another user\'s task is FORBIDDEN on every operation, and left untouched', async (t) => {
  const { api, sql } = await build(t);
  const task = await api.createTask('alice', 'private');
  const url = `/api/tasks/${task.id}`;

  for (const [method, payload] of [
    ['GET', undefined],
    ['PUT', { title: 'stolen' }],
    ['PATCH', { status: 'completed' }],
    ['PATCH', { title: 'stolen' }],
    ['DELETE', undefined],
  ] as const) {
    const res = await api.request(method, url, { as: 'bob', ...(payload && { payload }) });
    t.equal(res.statusCode, 403, `bob ${method}`);
    t.equal(res.json().error.code, 'FORBIDDEN', `bob ${method}`);
  }

  const after = await api.get(url, { as: 'alice' });
  t.same(after.json(), task, 'alice\'s task is exactly as it was');
  const rows = await sql`SELECT id FROM tasks`;
  t.equal(rows.length, 1, 'nothing was deleted');
});

t.test('lists show only the caller\'s own tasks', async (t) => {
  const { api } = await build(t);
  const a1 = await api.createTask('alice', 'a1');
  const b1 = await api.createTask('bob', 'b1');
  const a2 = await api.createTask('alice', 'a2');

  const alice = (await api.get('/api/tasks', { as: 'alice' })).json();
  t.same(alice.items.map((x: { id: string }) => x.id), [a2.id, a1.id]);
  const bob = (await api.get('/api/tasks', { as: 'bob' })).json();
  t.same(bob.items.map((x: { id: string }) => x.id), [b1.id]);
  t.ok(alice.items.every((x: { user_id: string }) => x.user_id === 'alice'));

  const completed = (await api.get('/api/tasks?status=pending', { as: 'bob' })).json();
  t.same(completed.items.map((x: { id: string }) => x.id), [b1.id], 'the status filter keeps to the caller too');
});

t.test('user ids that differ only in case or by prefix are different users', async (t) => {
  const { api } = await build(t);
  const task = await api.createTask('Alice');
  t.equal((await api.get(`/api/tasks/${task.id}`, { as: 'alice' })).statusCode, 403);
  t.equal((await api.get(`/api/tasks/${task.id}`, { as: 'Alic' })).statusCode, 403);
  t.equal((await api.get('/api/tasks', { as: 'alice' })).json().items.length, 0);
});

t.test('the owner comes only from the token', async (t) => {
  const { api } = await build(t);
  const res = await api.post('/api/tasks', { as: 'mallory', payload: { title: 'x', user_id: 'alice' } });
  t.equal(res.statusCode, 400, 'a user_id in the body is refused');
  const own = await api.createTask('mallory', 'x');
  t.equal(own.user_id, 'mallory');
  t.equal((await api.get('/api/tasks', { as: 'alice' })).json().items.length, 0);
});
