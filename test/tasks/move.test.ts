/**
 * The manual order: POST /api/tasks/{id}/move, positions compared as byte strings,
 * new tasks at the top, keys bounded, and concurrent movers never colliding.
 */
import t from 'tap';
import { build, type Built } from '../helper.ts';

interface Task {
  id: string;
  title: string;
  position: string;
  updated_at: string;
}

/** Byte-string order, as the contract says to compare positions (never localeCompare). */
const byPosition = (a: Task, b: Task) => (a.position < b.position ? -1 : a.position > b.position ? 1 : 0);

async function manualOrder(api: Built['api'], user: string): Promise<string[]> {
  const titles: string[] = [];
  let cursor: string | null = null;
  do {
    const res = await api.get(`/api/tasks?sort=position&limit=100${cursor ? `&cursor=${cursor}` : ''}`, { as: user });
    const page = res.json<{ items: Task[]; next_cursor: string | null }>();
    titles.push(...page.items.map((x) => x.title));
    cursor = page.next_cursor;
  } while (cursor);
  return titles;
}

async function seed(api: Built['api'], user: string, titles: string[]): Promise<Record<string, Task>> {
  const tasks: Record<string, Task> = {};
  for (const title of titles) tasks[title] = await api.createTask(user, title);
  return tasks;
}

const move = (api: Built['api'], id: string, payload: unknown, headers: Record<string, string> = {}) =>
  api.post(`/api/tasks/${id}/move`, { as: 'alice', payload: payload as object, headers });

t.test('new tasks go to the top of the manual order', async (t) => {
  const { api } = await build(t);
  const tasks = await seed(api, 'alice', ['a', 'b', 'c']);
  t.same(await manualOrder(api, 'alice'), ['c', 'b', 'a']);
  const sorted = Object.values(tasks).sort(byPosition).map((x) => x.title);
  t.same(sorted, ['c', 'b', 'a'], 'the positions themselves compare that way as byte strings');
});

t.test('before, after, top and bottom put the task exactly there', async (t) => {
  const { api } = await build(t);
  const x = await seed(api, 'alice', ['a', 'b', 'c', 'd']); // order: d c b a
  const moved = await move(api, x.a!.id, { before: x.c!.id });
  t.equal(moved.statusCode, 200);
  t.equal(moved.json().id, x.a!.id);
  t.not(moved.json().position, x.a!.position, 'a new position');
  t.equal(moved.headers.etag, `"${Date.parse(moved.json().updated_at).toString(36)}"`, 'with the new ETag');
  t.not(moved.json().updated_at, x.a!.updated_at, 'updated_at moved');
  t.same(await manualOrder(api, 'alice'), ['d', 'a', 'c', 'b']);

  await move(api, x.d!.id, { after: x.b!.id });
  t.same(await manualOrder(api, 'alice'), ['a', 'c', 'b', 'd']);
  await move(api, x.b!.id, { to: 'top' });
  t.same(await manualOrder(api, 'alice'), ['b', 'a', 'c', 'd']);
  await move(api, x.b!.id, { to: 'bottom' });
  t.same(await manualOrder(api, 'alice'), ['a', 'c', 'd', 'b']);
  await move(api, x.a!.id, { after: x.b!.id });
  t.same(await manualOrder(api, 'alice'), ['c', 'd', 'b', 'a']);

  const last = await move(api, x.c!.id, { to: 'top' });
  t.equal((await api.get(`/api/tasks/${x.c!.id}`, { as: 'alice' })).json().position, last.json().position, 'GET shows the position the move gave');
  await api.createTask('alice', 'e');
  t.same(await manualOrder(api, 'alice'), ['e', 'c', 'd', 'b', 'a'], 'a create after moves still goes on top');
});

t.test('a move is in the change feed and only changes the position', async (t) => {
  const { api } = await build(t);
  const x = await seed(api, 'alice', ['a', 'b']);
  const since = (await api.get('/api/tasks/changes', { as: 'alice' })).json().next_since as string;
  const moved = (await move(api, x.a!.id, { to: 'top' })).json();
  const feed = (await api.get(`/api/tasks/changes?since=${since}`, { as: 'alice' })).json();
  t.same(feed.changes, [{ type: 'upsert', task: moved }], 'the moved task, as the move answered it');
  t.same({ ...moved, position: x.a!.position, updated_at: x.a!.updated_at }, x.a, 'nothing else changed');
});

t.test('If-Match works as on PATCH', async (t) => {
  const { api } = await build(t);
  const x = await seed(api, 'alice', ['a', 'b']);
  const stale = `"${Date.parse(x.a!.updated_at).toString(36)}"`;
  await api.patch(`/api/tasks/${x.a!.id}`, { as: 'alice', payload: { notes: 'changed' } });
  const refused = await move(api, x.a!.id, { to: 'bottom' }, { 'if-match': stale });
  t.equal(refused.statusCode, 412);
  t.equal(refused.json().error.code, 'PRECONDITION_FAILED');
  t.same(await manualOrder(api, 'alice'), ['b', 'a'], 'nothing moved');
  const current = (await api.get(`/api/tasks/${x.a!.id}`, { as: 'alice' })).headers.etag as string;
  t.equal((await move(api, x.a!.id, { to: 'top' }, { 'if-match': current })).statusCode, 200);
  t.equal((await move(api, x.b!.id, { to: 'top' }, { 'if-match': '*' })).statusCode, 200);
  t.same(await manualOrder(api, 'alice'), ['b', 'a']);
});

t.test('the moved task follows the seed rules; the neighbour is never revealed', async (t) => {
  const { api } = await build(t);
  const x = await seed(api, 'alice', ['a', 'b']);
  const bobs = await api.createTask('bob', 'bob task');
  const missing = '00000000-0000-4000-8000-000000000000';

  const notFound = await move(api, missing, { to: 'top' });
  t.equal(notFound.statusCode, 404);
  t.equal(notFound.json().error.code, 'NOT_FOUND');
  const forbidden = await move(api, bobs.id, { to: 'top' });
  t.equal(forbidden.statusCode, 403);
  t.equal(forbidden.json().error.code, 'FORBIDDEN');

  const others = await move(api, x.a!.id, { before: bobs.id });
  const nobody = await move(api, x.a!.id, { after: missing });
  t.equal(others.statusCode, 400);
  t.equal(nobody.statusCode, 400);
  t.same(others.json().error.details, [{ in: 'body', field: 'before', message: 'must be the id of one of your tasks' }]);
  t.same(nobody.json().error.details, [{ in: 'body', field: 'after', message: 'must be the id of one of your tasks' }]);
  t.equal(others.json().error.message, nobody.json().error.message.replace('after', 'before'), 'someone else\'s and nobody\'s read alike');
  t.equal((await api.get(`/api/tasks/${bobs.id}`, { as: 'bob' })).json().position, bobs.position, "bob's task untouched");
  t.same(await manualOrder(api, 'alice'), ['b', 'a'], 'nothing moved');
});

t.test('bodies that are not exactly one of before, after, to are 400s', async (t) => {
  const { api } = await build(t);
  const x = await seed(api, 'alice', ['a', 'b']);
  const cases: Array<[unknown, string]> = [
    [{}, ''],
    [{ before: x.b!.id, to: 'top' }, ''],
    [{ before: x.b!.id, after: x.b!.id }, ''],
    [{ to: 'middle' }, 'to'],
    [{ before: 'not-a-uuid' }, 'before'],
    [{ after: 42 }, 'after'],
    [{ position: 'a0' }, 'position'],
    [{ before: x.a!.id }, 'before'],
    [{ after: x.a!.id.toUpperCase() }, 'after'],
  ];
  for (const [payload, field] of cases) {
    const res = await move(api, x.a!.id, payload);
    t.equal(res.statusCode, 400, JSON.stringify(payload));
    t.equal(res.json().error.code, 'VALIDATION_ERROR');
    t.equal(res.json().error.details[0]?.field, field, `${JSON.stringify(payload)} names ${field || 'the body'}`);
  }
  const empty = await move(api, x.a!.id, {});
  t.same(empty.json().error.details, [{ in: 'body', field: '', message: 'must have exactly one of: before, after, to' }]);
  t.same(await manualOrder(api, 'alice'), ['b', 'a'], 'nothing moved');
});

t.test('10,000 moves between the same two tasks: no position ever passes 64 characters', async (t) => {
  const { api, sql } = await build(t);
  const x = await seed(api, 'alice', ['first', 'last', 'mover']); // order: mover last first
  await move(api, x.first!.id, { to: 'top' }); // first mover last
  let longest = 0;
  let before = x.last!.id;
  // Alternate two tasks into the gap just above `last`, each time between the other and `last`:
  // every key halves the same interval, the worst case for fractional keys.
  const movers = [x.mover!.id, (await api.createTask('alice', 'other')).id];
  await move(api, movers[1]!, { before: x.last!.id });
  for (let i = 0; i < 10_000; i++) {
    const id = movers[i % 2]!;
    const res = await move(api, id, { before });
    if (res.statusCode !== 200) {
      t.fail(`move ${i} answered ${res.statusCode}: ${res.body}`);
      break;
    }
    longest = Math.max(longest, res.json().position.length);
    before = id;
  }
  t.ok(longest <= 64, `the longest position was ${longest} characters`);
  const [row] = await sql<{ max: number; renumbered: boolean }[]>`SELECT max(char_length(position))::int AS max FROM tasks`;
  t.ok((row?.max ?? 99) <= 64, 'none stored longer');
  const order = await manualOrder(api, 'alice');
  t.equal(order[0], 'first');
  t.equal(order.at(-1), 'last');
  t.same(order.slice(1, 3).sort(), ['mover', 'other'], 'the movers are between first and last');
});

t.test('a renumbering changes every task it renumbers, and each is in the change feed', async (t) => {
  const { api } = await build(t);
  // d stays on top, so that each move halves the gap between d and the last mover.
  const x = await seed(api, 'alice', ['a', 'b', 'c', 'd']); // d c b a
  const since = (await api.get('/api/tasks/changes', { as: 'alice' })).json().next_since as string;
  let before = x.b!.id;
  let renumbered = false;
  for (let i = 0; i < 1000 && !renumbered; i++) {
    const id = i % 2 ? x.a!.id : x.c!.id;
    const moved = (await move(api, id, { before })).json();
    before = id;
    const b = (await api.get(`/api/tasks/${x.b!.id}`, { as: 'alice' })).json();
    renumbered = b.position !== x.b!.position;
    if (renumbered) {
      t.not(b.updated_at, x.b!.updated_at, 'the renumbered task has a new version');
      t.ok(moved.position.length <= 64);
    }
  }
  t.ok(renumbered, 'the keys were renumbered within 1,000 moves');
  const feed = (await api.get(`/api/tasks/changes?since=${since}&limit=500`, { as: 'alice' })).json();
  t.same(new Set(feed.changes.map((c: { task: Task }) => c.task.title)), new Set(['a', 'b', 'c', 'd']), 'every renumbered task is a change');
  const order = await manualOrder(api, 'alice');
  t.equal(order.at(-1), 'b', 'the order survived the renumbering');
});

t.test('concurrent moves and creates of one user never produce equal positions', async (t) => {
  const { api, sql } = await build(t);
  const ids: string[] = [];
  for (let i = 0; i < 8; i++) ids.push((await api.createTask('alice', `t${i}`)).id);
  const anchor = ids[0]!;
  const results = await Promise.all([
    ...ids.slice(1).map((id) => move(api, id, { before: anchor })),
    ...ids.slice(1).map((id, i) => move(api, id, i % 2 ? { to: 'top' } : { after: anchor })),
    ...ids.slice(1, 4).map((id) => move(api, id, { to: 'bottom' })),
    ...[0, 1, 2, 3].map((i) => api.post('/api/tasks', { as: 'alice', payload: { title: `new ${i}` } })),
  ]);
  t.same(new Set(results.map((r) => r.statusCode)), new Set([200, 201]), 'every move and create succeeded');
  const [row] = await sql<{ n: number; distinct: number }[]>`
    SELECT count(*)::int AS n, count(DISTINCT position)::int AS distinct FROM tasks WHERE user_id = 'alice'`;
  t.equal(row?.distinct, row?.n, 'all positions distinct');
  t.equal((await manualOrder(api, 'alice')).length, 12);
});
