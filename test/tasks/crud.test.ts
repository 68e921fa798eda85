import t from 'tap';
import { build, TASK_ID_OPERATIONS } from '../helper.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

t.test('create returns 201, the task and its Location', async (t) => {
  const { api } = await build(t);
  const before = Date.now();
  const res = await api.post('/api/tasks', { as: 'alice', payload: { title: 'Buy milk' } });
  t.equal(res.statusCode, 201);
  const task = res.json();
  t.same(Object.keys(task).sort(), ['completed_at', 'created_at', 'due_date', 'id', 'notes', 'position', 'status', 'title', 'updated_at', 'user_id']);
  t.match(task.id, UUID);
  t.equal(task.title, 'Buy milk');
  t.equal(task.status, 'pending');
  t.equal(task.user_id, 'alice');
  t.equal(task.created_at, task.updated_at);
  t.ok(Date.parse(task.created_at) >= before - 1000 && Date.parse(task.created_at) <= Date.now() + 1000, 'created_at is now');
  t.equal(res.headers.location, `/api/tasks/${task.id}`);

  const fetched = await api.get(res.headers.location as string, { as: 'alice' });
  t.equal(fetched.statusCode, 200);
  t.same(fetched.json(), task, 'GET returns what POST returned');
});

t.test('titles are trimmed before they are stored', async (t) => {
  const { api } = await build(t);
  const task = await api.createTask('alice', '  \t Buy milk \n ');
  t.equal(task.title, 'Buy milk');
});

t.test('list returns the caller\'s tasks newest first', async (t) => {
  const { api } = await build(t);
  const first = await api.createTask('alice', 'first');
  const second = await api.createTask('alice', 'second');
  const third = await api.createTask('alice', 'third');
  const res = await api.get('/api/tasks', { as: 'alice' });
  t.equal(res.statusCode, 200);
  const page = res.json();
  t.same(page.items.map((x: { id: string }) => x.id), [third.id, second.id, first.id]);
  t.equal(page.next_cursor, null);

  const empty = await api.get('/api/tasks', { as: 'nobody-yet' });
  t.same(empty.json(), { items: [], next_cursor: null }, 'a user with no tasks gets an empty page');
});

t.test('PUT replaces the title, keeps status and created_at, moves updated_at', async (t) => {
  const { api } = await build(t);
  const task = await api.createTask('alice', 'old');
  await api.patch(`/api/tasks/${task.id}`, { as: 'alice', payload: { status: 'completed' } });
  const res = await api.put(`/api/tasks/${task.id}`, { as: 'alice', payload: { title: ' new ' } });
  t.equal(res.statusCode, 200);
  const updated = res.json();
  t.equal(updated.title, 'new');
  t.equal(updated.status, 'completed', 'PUT leaves the status alone');
  t.equal(updated.id, task.id);
  t.equal(updated.created_at, task.created_at, 'created_at never changes');
  t.ok(Date.parse(updated.updated_at) > Date.parse(task.updated_at), 'updated_at moved forward');
});

t.test('PATCH changes only the given fields', async (t) => {
  const { api } = await build(t);
  const task = await api.createTask('alice', 'title');

  const done = (await api.patch(`/api/tasks/${task.id}`, { as: 'alice', payload: { status: 'completed' } })).json();
  t.equal(done.status, 'completed');
  t.equal(done.title, 'title');

  const renamed = (await api.patch(`/api/tasks/${task.id}`, { as: 'alice', payload: { title: 'renamed' } })).json();
  t.equal(renamed.title, 'renamed');
  t.equal(renamed.status, 'completed');

  const both = await api.patch(`/api/tasks/${task.id}`, { as: 'alice', payload: { title: 'both', status: 'pending' } });
  t.equal(both.statusCode, 200);
  t.same({ title: both.json().title, status: both.json().status }, { title: 'both', status: 'pending' });
  t.equal(both.json().created_at, task.created_at);
});

t.test('updated_at moves forward on every update, even back to back', async (t) => {
  const { api } = await build(t);
  const task = await api.createTask('alice', 'x');
  let last = task.updated_at;
  for (let i = 0; i < 5; i++) {
    const res = await api.patch(`/api/tasks/${task.id}`, { as: 'alice', payload: { status: i % 2 ? 'pending' : 'completed' } });
    const next = res.json().updated_at;
    t.ok(Date.parse(next) > Date.parse(last), `update ${i + 1}: ${next} > ${last}`);
    last = next;
  }
});

t.test('DELETE returns 204 with no body, and the task is gone', async (t) => {
  const { api, sql } = await build(t);
  const task = await api.createTask('alice');
  const res = await api.delete(`/api/tasks/${task.id}`, { as: 'alice' });
  t.equal(res.statusCode, 204);
  t.equal(res.body, '');
  t.equal((await api.get(`/api/tasks/${task.id}`, { as: 'alice' })).statusCode, 404);
  t.equal((await api.delete(`/api/tasks/${task.id}`, { as: 'alice' })).statusCode, 404, 'deleting twice is a 404');
  const [row] = await sql`SELECT count(*)::int AS n FROM tasks WHERE id = ${task.id}`;
  t.equal(row?.n, 0);
});

t.test('a missing task is a 404 NOT_FOUND on every operation', async (t) => {
  const { api } = await build(t);
  const id = '00000000-0000-4000-8000-000000000000';
  for (const [method, payload] of TASK_ID_OPERATIONS) {
    const res = await api.request(method, `/api/tasks/${id}`, { as: 'alice', ...(payload && { payload }) });
    t.equal(res.statusCode, 404, method);
    t.equal(res.json().error.code, 'NOT_FOUND', method);
  }
});

t.test('the user is recorded on the first write, with the token\'s email', async (t) => {
  const { api, sql } = await build(t);
  const { token } = await import('../helper.ts');
  t.equal((await api.get('/api/tasks', { as: 'carol' })).statusCode, 200);
  t.same(await sql`SELECT id FROM users WHERE id = 'carol'`, [], 'a read does not create the user');

  await api.post('/api/tasks', { token: token('carol', { email: 'carol@example.com' }), payload: { title: 'a' } });
  t.same([...(await sql`SELECT id, email FROM users`)], [{ id: 'carol', email: 'carol@example.com' }]);

  await api.post('/api/tasks', { token: token('carol', { email: 'carol@new.example' }), payload: { title: 'b' } });
  await api.post('/api/tasks', { token: token('carol'), payload: { title: 'c' } });
  t.same([...(await sql`SELECT id, email FROM users`)], [{ id: 'carol', email: 'carol@new.example' }], 'a new email is recorded; none keeps the old');
});

t.test('deleting a user deletes their tasks (ON DELETE CASCADE)', async (t) => {
  const { api, sql } = await build(t);
  await api.createTask('dave');
  await api.createTask('erin');
  await sql`DELETE FROM users WHERE id = 'dave'`;
  const owners = await sql`SELECT DISTINCT user_id FROM tasks`;
  t.same([...owners], [{ user_id: 'erin' }]);
});

t.test('the database enforces status and title rules too', async (t) => {
  const { api, sql } = await build(t);
  const task = await api.createTask('alice');
  await t.rejects(sql`UPDATE tasks SET status = 'archived' WHERE id = ${task.id}`, { code: '23514' });
  await t.rejects(sql`UPDATE tasks SET title = '' WHERE id = ${task.id}`, { code: '23514' });
});
