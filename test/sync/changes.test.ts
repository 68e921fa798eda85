/**
 * The change feed: full sync, incremental changes in commit order with
 * deletions, paging (also through a bulk write), refusal of foreign or
 * expired positions, and convergence under concurrent writers.
 */
import t from 'tap';
import { encodePosition } from '../../src/sync/position.ts';
import { build, type Api } from '../helper.ts';

interface Task {
  id: string;
  title: string;
  status: string;
  updated_at: string;
  user_id: string;
  created_at: string;
}
type Change = { type: 'upsert'; task: Task } | { type: 'delete'; id: string };
interface Page {
  changes: Change[];
  next_since: string;
  has_more: boolean;
}

async function changes(api: Api, user: string, since?: string, limit?: number): Promise<Page> {
  const query = new URLSearchParams({ ...(since !== undefined && { since }), ...(limit !== undefined && { limit: String(limit) }) });
  const res = await api.get(`/api/tasks/changes${query.size ? `?${query}` : ''}`, { as: user });
  if (res.statusCode !== 200) throw new Error(`changes: ${res.statusCode} ${res.body}`);
  return res.json();
}

/** A client's replica: apply pages until has_more is false. */
async function drain(api: Api, user: string, replica: Map<string, Task>, since: string | undefined, limit = 100): Promise<string> {
  let position = since;
  for (;;) {
    const page = await changes(api, user, position, limit);
    for (const change of page.changes) {
      if (change.type === 'upsert') replica.set(change.task.id, change.task);
      else replica.delete(change.id);
    }
    position = page.next_since;
    if (!page.has_more) return position;
  }
}

async function listAll(api: Api, user: string): Promise<Task[]> {
  const all: Task[] = [];
  let cursor: string | null = null;
  do {
    const res = await api.get(`/api/tasks?limit=100${cursor ? `&cursor=${cursor}` : ''}`, { as: user });
    const page = res.json() as { items: Task[]; next_cursor: string | null };
    all.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  return all;
}

const byId = (tasks: Iterable<Task>) => [...tasks].sort((a, b) => a.id.localeCompare(b.id));

t.test('a full sync lists every current task as an upsert', async (t) => {
  const { api } = await build(t);
  const empty = await changes(api, 'alice');
  t.same(empty.changes, [], 'a new user: nothing');
  t.equal(empty.has_more, false);
  t.type(empty.next_since, 'string');

  const a = await api.createTask('alice', 'a');
  const b = await api.createTask('alice', 'b');
  const gone = await api.createTask('alice', 'gone');
  await api.delete(`/api/tasks/${gone.id}`, { as: 'alice' });
  await api.createTask('bob', "bob's");

  const full = await changes(api, 'alice');
  t.same(
    full.changes.map((c) => (c.type === 'upsert' ? c.task.title : `deleted ${c.id}`)),
    ['a', 'b'],
    'current tasks only, oldest change first; no deletions in a full sync; nothing of bob',
  );
  t.same(full.changes[0], { type: 'upsert', task: a }, 'each upsert carries the whole task');
  t.same(full.changes[1], { type: 'upsert', task: b });
});

t.test('with since: every change after it, each task once with its latest state, deletions included', async (t) => {
  const { api } = await build(t);
  const kept = await api.createTask('alice', 'kept');
  const edited = await api.createTask('alice', 'edited');
  const removed = await api.createTask('alice', 'removed');
  const since = (await changes(api, 'alice')).next_since;

  t.same((await changes(api, 'alice', since)).changes, [], 'nothing new yet');

  await api.patch(`/api/tasks/${edited.id}`, { as: 'alice', payload: { title: 'edited once' } });
  await api.put(`/api/tasks/${edited.id}`, { as: 'alice', payload: { title: 'edited twice' } });
  await api.delete(`/api/tasks/${removed.id}`, { as: 'alice' });
  const added = await api.createTask('alice', 'added');
  await api.createTask('bob', 'not yours');

  const page = await changes(api, 'alice', since);
  t.same(
    page.changes.map((c) => (c.type === 'upsert' ? `upsert ${c.task.title}` : `delete ${c.id}`)),
    ['upsert edited twice', `delete ${removed.id}`, 'upsert added'],
    'in commit order; the edited task once, at its latest state',
  );
  const latest = (await api.get(`/api/tasks/${edited.id}`, { as: 'alice' })).json();
  t.same(page.changes[0], { type: 'upsert', task: latest });
  t.equal(page.has_more, false);
  t.notOk(page.changes.some((c) => c.type === 'upsert' && c.task.id === kept.id), 'an unchanged task is not repeated');
  t.ok(added.id);

  t.same((await changes(api, 'alice', page.next_since)).changes, [], 'after next_since: nothing');
});

t.test('paging: has_more until done, and a bulk write can span pages without losing a task', async (t) => {
  const { api } = await build(t);
  for (let i = 0; i < 7; i++) await api.createTask('alice', `t${i}`);
  const since = (await changes(api, 'alice')).next_since;
  const bulk = await api.patch('/api/tasks', { as: 'alice', payload: { status: 'completed' } });
  t.same(bulk.json(), { updated: 7 });

  const seen: string[] = [];
  let position = since;
  let pages = 0;
  for (;;) {
    const page = await changes(api, 'alice', position, 3);
    pages++;
    t.ok(page.changes.length <= 3, 'at most limit changes a page');
    for (const c of page.changes) if (c.type === 'upsert') seen.push(`${c.task.title}:${c.task.status}`);
    position = page.next_since;
    if (!page.has_more) break;
  }
  t.equal(pages, 3, '7 changes in pages of 3');
  t.same(seen.sort(), Array.from({ length: 7 }, (_, i) => `t${i}:completed`), 'every task of the bulk write, once');
});

t.test('a since that is not ours, or is another user\'s, is 400; limit is 1..500', async (t) => {
  const { api } = await build(t);
  await api.createTask('alice', 'a');
  const alices = (await changes(api, 'alice')).next_since;
  const cases: Array<[string, string]> = [
    ['garbage', 'not-a-position'],
    ['another user', alices],
    ['a position ahead of the user', encodePosition('bob', { seq: 99, id: '00000000-0000-0000-0000-000000000000' })],
    ['edited', `${alices}x`],
  ];
  for (const [name, since] of cases) {
    const res = await api.get(`/api/tasks/changes?since=${encodeURIComponent(since)}`, { as: 'bob' });
    t.equal(res.statusCode, 400, `${name}: 400`);
    t.match(res.json().error.details, [{ in: 'query', field: 'since' }]);
  }
  for (const limit of ['0', '501', 'x']) {
    t.equal((await api.get(`/api/tasks/changes?limit=${limit}`, { as: 'alice' })).statusCode, 400, `limit=${limit}: 400`);
  }
  t.equal((await api.get('/api/tasks/changes?limit=500', { as: 'alice' })).statusCode, 200);
  t.equal((await api.get('/api/tasks/changes')).statusCode, 401, 'a token is required');
});

t.test('a since older than the retained deletions is 410 SYNC_EXPIRED; a newer one still works', async (t) => {
  const { api, app, sql } = await build(t);
  const old = await api.createTask('alice', 'old');
  const ancient = (await changes(api, 'alice')).next_since;
  await api.delete(`/api/tasks/${old.id}`, { as: 'alice' });
  const afterDelete = (await changes(api, 'alice', ancient)).next_since;
  await sql`UPDATE task_tombstones SET deleted_at = now() - interval '31 days'`;
  const swept = await app.housekeeping();
  t.equal(swept.tombstones, 1, 'the old tombstone is purged');

  const res = await api.get(`/api/tasks/changes?since=${ancient}`, { as: 'alice' });
  t.equal(res.statusCode, 410);
  t.equal(res.json().error.code, 'SYNC_EXPIRED');
  t.equal((await api.get(`/api/tasks/changes?since=${afterDelete}`, { as: 'alice' })).statusCode, 200, 'a position after it is fine');
  t.equal((await api.get('/api/tasks/changes', { as: 'alice' })).statusCode, 200, 'and a full sync always is');
});

t.test('convergence: a syncing reader ends with exactly the server state, whatever concurrent writers do', async (t) => {
  const { api } = await build(t);
  for (let i = 0; i < 10; i++) await api.createTask('alice', `seed ${i}`);
  const replica = new Map<string, Task>();
  let since = await drain(api, 'alice', replica, undefined, 7);

  let writing = true;
  const live = new Set<string>([...replica.keys()]);
  const writer = async (n: number) => {
    for (let i = 0; i < 25; i++) {
      const ids = [...live];
      const pick = ids[(i * 7 + n) % Math.max(ids.length, 1)];
      switch ((i + n) % 6) {
        case 0:
        case 1: {
          const res = await api.post('/api/tasks', { as: 'alice', payload: { title: `w${n}-${i}` } });
          live.add(res.json().id);
          break;
        }
        case 2:
          if (pick) await api.patch(`/api/tasks/${pick}`, { as: 'alice', payload: { status: i % 2 ? 'completed' : 'pending' } });
          break;
        case 3:
          if (pick) await api.put(`/api/tasks/${pick}`, { as: 'alice', payload: { title: `renamed ${n}-${i}` } });
          break;
        case 4:
          if (pick) {
            live.delete(pick);
            await api.delete(`/api/tasks/${pick}`, { as: 'alice' });
          }
          break;
        case 5:
          if (i % 2) await api.patch('/api/tasks?status=pending', { as: 'alice', payload: { status: 'completed' } });
          else await api.delete('/api/tasks?status=completed', { as: 'alice' });
          break;
      }
      // Another user's writes in between: never delivered to alice.
      if (i % 5 === 0) await api.post('/api/tasks', { as: 'bob', payload: { title: 'bob' } });
    }
  };
  const reader = (async () => {
    let polls = 0;
    while (writing) {
      since = await drain(api, 'alice', replica, since, 5);
      polls++;
    }
    return polls;
  })();
  await Promise.all([writer(1), writer(2), writer(3), writer(4)]);
  writing = false;
  const polls = await reader;
  since = await drain(api, 'alice', replica, since, 5);

  const server = await listAll(api, 'alice');
  t.ok(polls > 1, `the reader synced while the writers wrote (${polls} polls)`);
  t.ok(server.length > 0, `there is something to compare (${server.length} tasks)`);
  t.same(byId(replica.values()), byId(server), 'the replica equals GET /api/tasks: same ids, titles, statuses, updated_at');
  t.notOk([...replica.values()].some((task) => task.user_id !== 'alice'), "nothing of bob's");
});

t.test('a write that commits late is never skipped: positions follow commit order', async (t) => {
  const { api, url } = await build(t);
  const slow = await api.createTask('alice', 'slow');
  const since = (await changes(api, 'alice')).next_since;

  // Another session holds the task's row, so the PATCH below waits before it can commit.
  const { default: postgres } = await import('postgres');
  const locker = postgres(url, { max: 1, onnotice: () => {} });
  t.teardown(() => locker.end());
  let release!: () => void;
  let locked!: () => void;
  const isLocked = new Promise<void>((r) => (locked = r));
  const held = locker.begin(async (tx) => {
    await tx`SELECT 1 FROM tasks WHERE id = ${slow.id} FOR UPDATE`;
    locked();
    await new Promise<void>((r) => (release = r));
  });
  await isLocked;

  const patch = api.patch(`/api/tasks/${slow.id}`, { as: 'alice', payload: { title: 'slow, committed first?' } });
  await new Promise((r) => setTimeout(r, 200));
  const create = api.post('/api/tasks', { as: 'alice', payload: { title: 'fast' } });
  await new Promise((r) => setTimeout(r, 300));

  // A reader polls while the PATCH is still uncommitted.
  const during = await changes(api, 'alice', since);
  t.same(during.changes, [], 'nothing after the uncommitted PATCH is visible yet (the create waits its turn)');

  release();
  await held;
  t.equal((await patch).statusCode, 200);
  t.equal((await create).statusCode, 201);
  const after = await changes(api, 'alice', during.next_since);
  t.same(
    after.changes.map((c) => (c.type === 'upsert' ? c.task.title : c.id)),
    ['slow, committed first?', 'fast'],
    'both changes arrive, the late-committing one included',
  );
});
