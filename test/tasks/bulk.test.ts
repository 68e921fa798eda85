/**
 * Counts and the two bulk buttons of every todo UI: "mark all as done" (or
 * undo) and "clear completed". Each touches only the caller's tasks, in one
 * transaction, and shows up in the change feed.
 */
import t from 'tap';
import { build, type Api } from '../helper.ts';

async function seed(api: Api, user: string, pending: number, completed: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < pending + completed; i++) {
    const task = await api.createTask(user, `${user} ${i}`);
    if (i >= pending) await api.patch(`/api/tasks/${task.id}`, { as: user, payload: { status: 'completed' } });
    ids.push(task.id);
  }
  return ids;
}

const counts = async (api: Api, user: string) => (await api.get('/api/tasks/counts', { as: user })).json();

t.test('counts: pending, completed and total for the caller only', async (t) => {
  const { api } = await build(t);
  t.same(await counts(api, 'alice'), { pending: 0, completed: 0, total: 0 }, 'a new user: zeros');
  await seed(api, 'alice', 3, 2);
  await seed(api, 'bob', 1, 1);
  t.same(await counts(api, 'alice'), { pending: 3, completed: 2, total: 5 });
  t.same(await counts(api, 'bob'), { pending: 1, completed: 1, total: 2 });
  t.equal((await api.get('/api/tasks/counts')).statusCode, 401);
});

t.test('mark all as done: only tasks whose status changes are touched', async (t) => {
  const { api } = await build(t);
  const ids = await seed(api, 'alice', 3, 2);
  await seed(api, 'bob', 2, 0);
  const before = await Promise.all(ids.map(async (id) => (await api.get(`/api/tasks/${id}`, { as: 'alice' })).json()));

  const res = await api.patch('/api/tasks', { as: 'alice', payload: { status: 'completed' } });
  t.equal(res.statusCode, 200);
  t.same(res.json(), { updated: 3 }, 'the three pending ones');
  t.same(await counts(api, 'alice'), { pending: 0, completed: 5, total: 5 });
  t.same(await counts(api, 'bob'), { pending: 2, completed: 0, total: 2 }, "bob's tasks are untouched");

  const after = await Promise.all(ids.map(async (id) => (await api.get(`/api/tasks/${id}`, { as: 'alice' })).json()));
  for (let i = 0; i < ids.length; i++) {
    if (before[i].status === 'completed') t.same(after[i], before[i], `an already completed task keeps its updated_at`);
    else t.ok(Date.parse(after[i].updated_at) > Date.parse(before[i].updated_at), 'a changed task moves its updated_at');
  }

  t.same((await api.patch('/api/tasks', { as: 'alice', payload: { status: 'completed' } })).json(), { updated: 0 }, 'again: nothing to do');
  const undo = await api.patch('/api/tasks?status=completed', { as: 'alice', payload: { status: 'pending' } });
  t.same(undo.json(), { updated: 5 }, 'undo with the status filter');
});

t.test('the status filter of a bulk PATCH restricts it', async (t) => {
  const { api } = await build(t);
  await seed(api, 'alice', 2, 2);
  const res = await api.patch('/api/tasks?status=completed', { as: 'alice', payload: { status: 'completed' } });
  t.same(res.json(), { updated: 0 }, 'completed -> completed changes nothing');
  const reopen = await api.patch('/api/tasks?status=pending', { as: 'alice', payload: { status: 'pending' } });
  t.same(reopen.json(), { updated: 0 });
});

t.test('only status can be set in bulk, and a body is required', async (t) => {
  const { api } = await build(t);
  await seed(api, 'alice', 2, 0);
  for (const payload of [{ title: 'x' }, { status: 'completed', title: 'x' }, {}, { status: 'done' }]) {
    const res = await api.patch('/api/tasks', { as: 'alice', payload });
    t.equal(res.statusCode, 400, `${JSON.stringify(payload)}: 400`);
  }
  t.equal((await api.patch('/api/tasks', { as: 'alice' })).statusCode, 400, 'no body: 400');
  t.same(await counts(api, 'alice'), { pending: 2, completed: 0, total: 2 }, 'nothing changed');
});

t.test('clear completed: deletes exactly the caller\'s tasks with that status', async (t) => {
  const { api } = await build(t);
  await seed(api, 'alice', 2, 3);
  await seed(api, 'bob', 0, 2);
  const res = await api.delete('/api/tasks?status=completed', { as: 'alice' });
  t.equal(res.statusCode, 200);
  t.same(res.json(), { deleted: 3 });
  t.same(await counts(api, 'alice'), { pending: 2, completed: 0, total: 2 });
  t.same(await counts(api, 'bob'), { pending: 0, completed: 2, total: 2 }, "bob's completed tasks stay");
  t.same((await api.delete('/api/tasks?status=completed', { as: 'alice' })).json(), { deleted: 0 }, 'again: nothing');
});

t.test('a DELETE of the collection without a status is a 400 and deletes nothing', async (t) => {
  const { api } = await build(t);
  await seed(api, 'alice', 1, 1);
  const res = await api.delete('/api/tasks', { as: 'alice' });
  t.equal(res.statusCode, 400);
  t.match(res.json().error.details, [{ in: 'query', field: 'status' }]);
  t.equal((await api.delete('/api/tasks?status=finished', { as: 'alice' })).statusCode, 400, 'an unknown status: 400');
  t.same(await counts(api, 'alice'), { pending: 1, completed: 1, total: 2 });
});

t.test('bulk writes appear in the change feed', async (t) => {
  const { api } = await build(t);
  const ids = await seed(api, 'alice', 2, 2);
  const since = (await api.get('/api/tasks/changes', { as: 'alice' })).json().next_since as string;
  await api.patch('/api/tasks?status=pending', { as: 'alice', payload: { status: 'completed' } });
  const afterUpdate = (await api.get(`/api/tasks/changes?since=${since}`, { as: 'alice' })).json();
  t.same(
    afterUpdate.changes.map((c: { task: { id: string; status: string } }) => `${c.task.id}:${c.task.status}`).sort(),
    [`${ids[0]}:completed`, `${ids[1]}:completed`].sort(),
    'the two tasks that changed, as upserts',
  );
  await api.delete('/api/tasks?status=completed', { as: 'alice' });
  const afterDelete = (await api.get(`/api/tasks/changes?since=${afterUpdate.next_since}`, { as: 'alice' })).json();
  t.same(
    afterDelete.changes.map((c: { type: string; id: string }) => `${c.type}:${c.id}`).sort(),
    ids.map((id) => `delete:${id}`).sort(),
    'all four deletions',
  );
});
