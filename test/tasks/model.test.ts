/**
 * The task model of contract 1.2: notes, due_date, completed_at and position, in every
 * answer, with the seed's behaviour unchanged for a client that sends only title/status.
 */
import t from 'tap';
import { build } from '../helper.ts';

const FIELDS = ['completed_at', 'created_at', 'due_date', 'id', 'notes', 'position', 'status', 'title', 'updated_at', 'user_id'];

t.test('a seed-era create gets the new fields with their defaults', async (t) => {
  const { api } = await build(t);
  const res = await api.post('/api/tasks', { as: 'alice', payload: { title: ' Buy milk ' } });
  t.equal(res.statusCode, 201);
  const task = res.json();
  t.same(Object.keys(task).sort(), FIELDS);
  t.equal(task.title, 'Buy milk');
  t.equal(task.notes, '');
  t.equal(task.due_date, null);
  t.equal(task.completed_at, null);
  t.match(task.position, /^[0-9A-Za-z]{1,64}$/);
  t.same((await api.get(`/api/tasks/${task.id}`, { as: 'alice' })).json(), task, 'GET answers the same');
});

t.test('notes and due_date on create are stored as sent; notes are not trimmed', async (t) => {
  const { api } = await build(t);
  const notes = '\n  indented first line\n🥛 two litres\t';
  const res = await api.post('/api/tasks', { as: 'alice', payload: { title: 'Buy milk', notes, due_date: '2028-02-29' } });
  t.equal(res.statusCode, 201);
  t.equal(res.json().notes, notes);
  t.equal(res.json().due_date, '2028-02-29', 'a leap day is a date');
  const listed = (await api.get('/api/tasks', { as: 'alice' })).json().items[0];
  t.same(listed, res.json(), 'the list shows the same task');
});

t.test('notes: 8,192 code points at most, no NUL', async (t) => {
  const { api } = await build(t);
  const ok = await api.post('/api/tasks', { as: 'alice', payload: { title: 'x', notes: '😀'.repeat(8192) } });
  t.equal(ok.statusCode, 201, '8,192 emoji are 8,192 characters');
  for (const [notes, message] of [
    ['a'.repeat(8193), 'must be at most 8192 characters; got 8193'],
    ['a\u0000b', 'must not contain NUL characters or unpaired surrogates'],
  ] as const) {
    const res = await api.post('/api/tasks', { as: 'alice', payload: { title: 'x', notes } });
    t.equal(res.statusCode, 400);
    t.same(res.json().error.details, [{ in: 'body', field: 'notes', message }]);
  }
  const nullNotes = await api.post('/api/tasks', { as: 'alice', payload: { title: 'x', notes: null } });
  t.equal(nullNotes.statusCode, 400, 'notes are never null');
  t.equal(nullNotes.json().error.details[0].field, 'notes');
});

t.test('due_date: a real calendar date YYYY-MM-DD or null, else a 400 on due_date', async (t) => {
  const { api } = await build(t);
  const task = await api.createTask('alice', 'x');
  for (const due of ['2026-02-30', '2026-13-01', '2026-1-01', '2026-01-01T00:00:00Z', '20260101', '', 'tomorrow', 20260101, '2027-02-29']) {
    for (const [method, url, payload] of [
      ['POST', '/api/tasks', { title: 'x', due_date: due }],
      ['PATCH', `/api/tasks/${task.id}`, { due_date: due }],
    ] as const) {
      const res = await api.request(method, url, { as: 'alice', payload });
      t.equal(res.statusCode, 400, `${method} due_date ${JSON.stringify(due)}`);
      t.equal(res.json().error.details[0]?.field, 'due_date');
    }
  }
  const [row] = (await api.get('/api/tasks', { as: 'alice' })).json().items;
  t.same(row, task, 'nothing was written');
});

t.test('PATCH sets and clears notes and due_date, each change a new version', async (t) => {
  const { api } = await build(t);
  const task = await api.createTask('alice', 'x');
  const withDue = await api.patch(`/api/tasks/${task.id}`, { as: 'alice', payload: { due_date: '2026-03-01', notes: 'n' } });
  t.equal(withDue.statusCode, 200);
  t.equal(withDue.json().due_date, '2026-03-01');
  t.equal(withDue.json().notes, 'n');
  t.not(withDue.headers.etag, undefined);
  t.ok(withDue.json().updated_at > task.updated_at, 'updated_at moved');
  const kept = (await api.patch(`/api/tasks/${task.id}`, { as: 'alice', payload: { title: 'y' } })).json();
  t.equal(kept.due_date, '2026-03-01', 'an absent due_date is left alone');
  t.equal(kept.notes, 'n', 'absent notes are left alone');
  const cleared = await api.patch(`/api/tasks/${task.id}`, { as: 'alice', payload: { due_date: null, notes: '' } });
  t.equal(cleared.json().due_date, null, 'null clears the due date');
  t.equal(cleared.json().notes, '');
  t.not(cleared.headers.etag, withDue.headers.etag, 'a new ETag');
});

t.test('completed_at: set on completion, cleared on reopening, untouched otherwise', async (t) => {
  const { api } = await build(t);
  const task = await api.createTask('alice', 'x');
  const done = (await api.patch(`/api/tasks/${task.id}`, { as: 'alice', payload: { status: 'completed' } })).json();
  t.equal(done.completed_at, done.updated_at, 'completed when it changed');
  t.match(done.completed_at, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
  const again = (await api.patch(`/api/tasks/${task.id}`, { as: 'alice', payload: { status: 'completed', title: 'renamed' } })).json();
  t.equal(again.completed_at, done.completed_at, 'completing a completed task keeps the time');
  t.ok(again.updated_at > done.updated_at);
  const renamed = (await api.put(`/api/tasks/${task.id}`, { as: 'alice', payload: { title: 'put' } })).json();
  t.equal(renamed.completed_at, done.completed_at, 'PUT leaves it');
  t.equal(renamed.status, 'completed');
  const reopened = (await api.patch(`/api/tasks/${task.id}`, { as: 'alice', payload: { status: 'pending' } })).json();
  t.equal(reopened.completed_at, null, 'reopening clears it');
});

t.test('read-only and unknown fields in a body are 400s, and nothing changes', async (t) => {
  const { api } = await build(t);
  const task = await api.createTask('alice', 'x');
  for (const field of ['completed_at', 'position', 'status', 'user_id', 'created_at']) {
    const value = field === 'status' ? 'completed' : field === 'position' ? 'a0' : '2026-01-01T00:00:00.000Z';
    const create = await api.post('/api/tasks', { as: 'alice', payload: { title: 'y', [field]: value } });
    t.equal(create.statusCode, 400, `create with ${field}`);
    t.same(create.json().error.details, [{ in: 'body', field, message: 'is not an allowed field' }]);
    if (field === 'status') continue; // PATCH may set the status
    const patch = await api.patch(`/api/tasks/${task.id}`, { as: 'alice', payload: { [field]: value } });
    t.equal(patch.statusCode, 400, `PATCH with ${field}`);
  }
  const put = await api.put(`/api/tasks/${task.id}`, { as: 'alice', payload: { title: 'z', notes: 'n' } });
  t.equal(put.statusCode, 400, 'PUT still takes the title only');
  t.same((await api.get('/api/tasks', { as: 'alice' })).json().items, [task], 'one task, unchanged');
});

t.test('bulk PATCH sets and clears completed_at, only on tasks whose status changes', async (t) => {
  const { api } = await build(t);
  const a = await api.createTask('alice', 'a');
  const b = await api.createTask('alice', 'b');
  const early = (await api.patch(`/api/tasks/${a.id}`, { as: 'alice', payload: { status: 'completed' } })).json();
  t.equal((await api.patch('/api/tasks', { as: 'alice', payload: { status: 'completed' } })).json().updated, 1);
  const after = Object.fromEntries((await api.get('/api/tasks', { as: 'alice' })).json().items.map((x: { id: string }) => [x.id, x]));
  t.equal(after[a.id].completed_at, early.completed_at, 'an already completed task keeps its time');
  t.equal(after[b.id].completed_at, after[b.id].updated_at, 'the newly completed one gets its time');
  t.equal((await api.patch('/api/tasks', { as: 'alice', payload: { status: 'pending' } })).json().updated, 2);
  const reopened = (await api.get('/api/tasks', { as: 'alice' })).json().items;
  t.same(reopened.map((x: { completed_at: null }) => x.completed_at), [null, null]);
});

t.test('the change feed and an idempotent replay carry the new fields', async (t) => {
  const { api } = await build(t);
  const payload = { title: 'x', notes: 'n', due_date: '2026-05-05' };
  const first = await api.post('/api/tasks', { as: 'alice', payload, headers: { 'idempotency-key': 'k1' } });
  const done = (await api.patch(`/api/tasks/${first.json().id}`, { as: 'alice', payload: { status: 'completed' } })).json();
  const replay = await api.post('/api/tasks', { as: 'alice', payload, headers: { 'idempotency-key': 'k1' } });
  t.equal(replay.headers['idempotent-replayed'], 'true');
  t.equal(replay.body, first.body, 'the first 201, byte for byte');
  const other = await api.post('/api/tasks', { as: 'alice', payload: { ...payload, notes: 'other' }, headers: { 'idempotency-key': 'k1' } });
  t.equal(other.statusCode, 422, 'the key with other notes is reused');
  const feed = (await api.get('/api/tasks/changes', { as: 'alice' })).json();
  t.same(feed.changes, [{ type: 'upsert', task: done }]);
});
