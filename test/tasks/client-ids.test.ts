/**
 * Client-chosen ids on POST /api/tasks (contract 1.2): a new id creates, the same id
 * and fields replay the first 201 exactly, a taken id (other fields, another user's,
 * a deleted task's) is 409 ID_CONFLICT with nothing written, a deleted task never comes
 * back, and concurrent creates with one id, on one instance or two, make one task.
 */
import t from 'tap';
import { buildApp } from '../../src/app.ts';
import { createSql } from '../../src/db/client.ts';
import { Api, build, ORIGIN, SECRET, type Built, type Sent, type Test } from '../helper.ts';

const ID = '3f2a1b4c-5d6e-4f70-8a9b-0c1d2e3f4a5b';
const OTHER_ID = '9e8d7c6b-5a49-4382-b716-a5f4e3d2c1b0';

interface Fields {
  id?: string;
  title: string;
  notes?: string;
  due_date?: string | null;
}

const create = (api: Api, user: string, payload: Fields, headers: Record<string, string> = {}) => api.post('/api/tasks', { as: user, payload, headers });

async function taskCount(built: Built, id = ID): Promise<number> {
  const [row] = await built.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM tasks WHERE id = ${id}::uuid`;
  return row?.n ?? -1;
}

/**
 * What is stored for `user` (everyone without one): their tasks, user record (change
 * counter, top of the manual order), tombstones and keys, as JSON. "Nothing was written"
 * means this is unchanged.
 */
async function stored(built: Built, user?: string): Promise<Record<string, unknown[]>> {
  const all = user === undefined;
  const who = user ?? '';
  const rows = async (query: Promise<{ row: unknown }[]>) => (await query).map((r) => r.row);
  return {
    tasks: await rows(built.sql`SELECT to_jsonb(x) AS row FROM tasks AS x WHERE ${all} OR user_id = ${who} ORDER BY id`),
    users: await rows(built.sql`SELECT to_jsonb(x) AS row FROM users AS x WHERE ${all} OR id = ${who} ORDER BY id`),
    tombstones: await rows(built.sql`SELECT to_jsonb(x) AS row FROM task_tombstones AS x WHERE ${all} OR user_id = ${who} ORDER BY task_id`),
    keys: await rows(built.sql`SELECT to_jsonb(x) AS row FROM idempotency_keys AS x WHERE ${all} OR user_id = ${who} ORDER BY user_id, key`),
  };
}

/** A 409 ID_CONFLICT that is not a replay. */
function conflict(t: Test, res: Sent, name: string): void {
  t.equal(res.statusCode, 409, `${name}: 409`);
  t.equal(res.json().error?.code, 'ID_CONFLICT', `${name}: ID_CONFLICT`);
  t.equal(res.headers['idempotent-replayed'], undefined, `${name}: not a replay`);
}

interface ChangePage {
  changes: Array<{ type: 'upsert'; task: { id: string } } | { type: 'delete'; id: string }>;
  next_since: string;
  has_more: boolean;
}

/** The change feed from `since` (a full sync without it) to its end: every change, and where it ends. */
async function feed(api: Api, user: string, since?: string): Promise<{ changes: ChangePage['changes']; since: string }> {
  const changes: ChangePage['changes'] = [];
  let position = since;
  for (;;) {
    const url = `/api/tasks/changes${position === undefined ? '' : `?since=${position}`}`;
    const res = await api.get(url, { as: user });
    if (res.statusCode !== 200) throw new Error(`${url}: ${res.statusCode} ${res.body}`);
    const page: ChangePage = res.json();
    changes.push(...page.changes);
    position = page.next_since;
    if (!page.has_more) return { changes, since: position };
  }
}

const upserted = (changes: ChangePage['changes'], id: string) => changes.some((c) => c.type === 'upsert' && c.task.id === id);

async function manualOrder(api: Api, user: string): Promise<string[]> {
  const res = await api.get('/api/tasks?sort=position&limit=100', { as: user });
  if (res.statusCode !== 200) throw new Error(`sort=position: ${res.statusCode} ${res.body}`);
  return res.json().items.map((x: { title: string }) => x.title);
}

t.test('a new id is a 201 with that id, its Location and the fields sent', async (t) => {
  const built = await build(t);
  const res = await create(built.api, 'alice', { id: ID, title: ' Buy milk ', notes: '2 litres', due_date: '2026-01-07' });
  t.equal(res.statusCode, 201);
  t.equal(res.headers['idempotent-replayed'], undefined, 'a first answer is not a replay');
  t.equal(res.headers.location, `/api/tasks/${ID}`);
  t.match(res.json(), { id: ID, title: 'Buy milk', notes: '2 litres', due_date: '2026-01-07', status: 'pending', user_id: 'alice' });
  const fetched = await built.api.get(`/api/tasks/${ID}`, { as: 'alice' });
  t.equal(fetched.statusCode, 200);
  t.same(fetched.json(), res.json(), 'GET answers what the 201 said');
});

t.test('an id sent in upper case is stored and answered in lower case, and matches either case later', async (t) => {
  const built = await build(t);
  const first = await create(built.api, 'alice', { id: ID.toUpperCase(), title: 'Upper' });
  t.equal(first.statusCode, 201);
  t.equal(first.json().id, ID);
  t.equal(first.headers.location, `/api/tasks/${ID}`);
  t.equal((await built.api.get(`/api/tasks/${ID}`, { as: 'alice' })).statusCode, 200);
  for (const id of [ID, ID.toUpperCase()]) {
    const again = await create(built.api, 'alice', { id, title: 'Upper' });
    t.equal(again.statusCode, 201, `${id}: 201`);
    t.equal(again.headers['idempotent-replayed'], 'true', `${id}: a replay`);
    t.equal(again.body, first.body, `${id}: the first body`);
  }
  t.equal(await taskCount(built), 1);
});

t.test('the same id and fields again replay the first 201 exactly, even after the task has changed', async (t) => {
  const built = await build(t);
  const fields = { id: ID, title: 'Buy milk', notes: '2 litres\n', due_date: '2026-01-07' };
  const first = await create(built.api, 'alice', fields);
  t.equal(first.statusCode, 201);

  const again = await create(built.api, 'alice', { ...fields, title: '\t Buy milk  ' });
  t.equal(again.statusCode, 201, 'the same title after trimming');
  t.equal(again.headers['idempotent-replayed'], 'true');
  t.equal(again.body, first.body, 'the same body, byte for byte');
  t.equal(again.headers.location, first.headers.location, 'the same Location');
  t.equal(again.headers.etag, first.headers.etag, 'the same ETag');
  t.equal(await taskCount(built), 1, 'no second task');

  const changed = await built.api.patch(`/api/tasks/${ID}`, { as: 'alice', payload: { title: 'Buy oat milk', status: 'completed', notes: '', due_date: null } });
  t.equal(changed.statusCode, 200);
  const later = await create(built.api, 'alice', fields);
  t.equal(later.statusCode, 201);
  t.equal(later.headers['idempotent-replayed'], 'true');
  t.equal(later.body, first.body, 'still the first 201: a replay is of the answer, not of the task');
  t.same((await built.api.get(`/api/tasks/${ID}`, { as: 'alice' })).json(), changed.json(), 'and the change stays');
  t.equal(await taskCount(built), 1);
});

t.test('omitted notes and due date are the same fields as empty notes and no due date', async (t) => {
  const built = await build(t);
  const first = await create(built.api, 'alice', { id: ID, title: 'Plain' });
  t.equal(first.statusCode, 201);
  const again = await create(built.api, 'alice', { id: ID, title: 'Plain', notes: '', due_date: null });
  t.equal(again.statusCode, 201);
  t.equal(again.headers['idempotent-replayed'], 'true');
  t.equal(again.body, first.body);
});

t.test('a replay writes nothing: the order, the task and the change feed stay as they are', async (t) => {
  const built = await build(t);
  const fields = { id: ID, title: 'With id' };
  t.equal((await create(built.api, 'alice', fields)).statusCode, 201);
  await built.api.createTask('alice', 'newer');
  const { since } = await feed(built.api, 'alice');
  const before = await stored(built);

  t.equal((await create(built.api, 'alice', fields)).headers['idempotent-replayed'], 'true');
  t.same(await manualOrder(built.api, 'alice'), ['newer', 'With id'], 'the replayed task did not go back to the top');
  t.same(await stored(built), before, 'nothing stored changed: tasks, the user (change counter, top key), keys');
  const after = await feed(built.api, 'alice', since);
  t.same(after.changes, [], 'no change in the feed');
  t.equal(after.since, since, 'next_since has not moved');
});

t.test('the same id with other fields is 409 ID_CONFLICT, and nothing is written', async (t) => {
  const built = await build(t);
  const fields = { id: ID, title: 'Buy milk', notes: 'semi-skimmed', due_date: '2026-01-07' };
  const first = await create(built.api, 'alice', fields);
  t.equal(first.statusCode, 201);
  const { since } = await feed(built.api, 'alice');
  const before = await stored(built);
  const variants: Array<[string, Fields]> = [
    ['another title', { ...fields, title: 'Buy bread' }],
    ['a title differing in case', { ...fields, title: 'buy milk' }],
    ['other notes', { ...fields, notes: 'whole' }],
    ['notes with a space (notes are not trimmed)', { ...fields, notes: ' semi-skimmed' }],
    ['no notes', { id: ID, title: 'Buy milk', due_date: '2026-01-07' }],
    ['another due date', { ...fields, due_date: '2026-01-08' }],
    ['no due date', { ...fields, due_date: null }],
  ];
  for (const [name, payload] of variants) conflict(t, await create(built.api, 'alice', payload), name);
  t.same(await stored(built), before, 'nothing was written: tasks, the user (change counter, top key), keys');
  t.same(await feed(built.api, 'alice', since), { changes: [], since }, 'the feed has nothing new, and next_since has not moved');
  t.equal((await built.api.get(`/api/tasks/${ID}`, { as: 'alice' })).body, first.body, 'the task is as first created');
  const replay = await create(built.api, 'alice', fields);
  t.equal(replay.body, first.body, 'the first fields still replay');
});

t.test('an Idempotency-Key sent with an id must be that UUID (any case), or it is a 422', async (t) => {
  const built = await build(t);
  const first = await create(built.api, 'alice', { id: ID, title: 'Keyed' }, { 'idempotency-key': ID.toUpperCase() });
  t.equal(first.statusCode, 201, 'the same UUID in upper case');
  t.equal(first.headers['idempotent-replayed'], undefined);
  for (const key of [ID, ID.toUpperCase()]) {
    const again = await create(built.api, 'alice', { id: ID, title: 'Keyed' }, { 'idempotency-key': key });
    t.equal(again.headers['idempotent-replayed'], 'true', `key ${key}: a replay`);
    t.equal(again.body, first.body);
  }
  const without = await create(built.api, 'alice', { id: ID, title: 'Keyed' });
  t.equal(without.headers['idempotent-replayed'], 'true', 'the id alone replays the same 201');

  const before = await stored(built);
  for (const [name, id, key] of [
    ['a taken id with another key', ID, OTHER_ID],
    ['a new id with another UUID as key', OTHER_ID, ID],
    ['a new id with a key that is no UUID', OTHER_ID, 'retry-1'],
  ] as const) {
    const res = await create(built.api, 'alice', { id, title: 'Keyed' }, { 'idempotency-key': key });
    t.equal(res.statusCode, 422, `${name}: 422`);
    t.equal(res.json().error?.code, 'IDEMPOTENCY_KEY_REUSED', `${name}: IDEMPOTENCY_KEY_REUSED`);
  }
  t.same(await stored(built), before, 'nothing was written');
  t.equal((await built.api.get(`/api/tasks/${OTHER_ID}`, { as: 'alice' })).statusCode, 404);
  const fresh = await create(built.api, 'alice', { id: OTHER_ID, title: 'Keyed' });
  t.equal(fresh.statusCode, 201, 'a refused request left the new id unused');
  t.equal(fresh.headers['idempotent-replayed'], undefined);
});

t.test("another user's id is 409 ID_CONFLICT: their task is unchanged and not revealed", async (t) => {
  const built = await build(t);
  const bobs = await create(built.api, 'bob', { id: ID, title: 'Secret plan', notes: 'private notes', due_date: '2026-05-01' });
  t.equal(bobs.statusCode, 201);
  const bobBefore = await built.api.get(`/api/tasks/${ID}`, { as: 'bob' });
  const bobStored = await stored(built, 'bob');

  // Alice's own taken id, for comparison: the answer must be the same, whoever holds the id.
  t.equal((await create(built.api, 'alice', { id: OTHER_ID, title: 'mine' })).statusCode, 201);
  const own = await create(built.api, 'alice', { id: OTHER_ID, title: 'other fields' });
  conflict(t, own, "alice's own id with other fields");
  const aliceStored = await stored(built, 'alice');

  for (const [name, payload] of [
    ["bob's exact fields", { id: ID, title: 'Secret plan', notes: 'private notes', due_date: '2026-05-01' }],
    ['other fields', { id: ID, title: 'mine' }],
    ['in upper case', { id: ID.toUpperCase(), title: 'Secret plan', notes: 'private notes', due_date: '2026-05-01' }],
  ] as const) {
    const res = await create(built.api, 'alice', payload);
    conflict(t, res, name);
    t.same(res.json(), own.json(), `${name}: the same answer as for an id of her own`);
    for (const secret of ['bob', 'Secret', 'private', '2026-05-01']) t.notOk(res.body.includes(secret), `${name}: the body does not mention ${secret}`);
  }
  const after = await built.api.get(`/api/tasks/${ID}`, { as: 'bob' });
  t.equal(after.body, bobBefore.body, "bob's task is unchanged");
  t.equal(after.headers.etag, bobBefore.headers.etag, 'and so is its ETag');
  t.same(await stored(built, 'bob'), bobStored, "nothing of bob's changed");
  t.same(await stored(built, 'alice'), aliceStored, "nothing of alice's changed");
  t.same(
    (await feed(built.api, 'alice')).changes.map((c) => (c.type === 'upsert' ? c.task.id : c.id)),
    [OTHER_ID],
    "alice's feed has her own task only",
  );
});

t.test('one id sent by two users at once: one of them gets it, the other 409', async (t) => {
  const built = await build(t);
  const users = Array.from({ length: 20 }, (_, i) => (i % 2 ? 'alice' : 'bob'));
  const results = await Promise.all(users.map((user) => create(built.api, user, { id: ID, title: 'Race' })));
  const [row] = await built.sql<{ user_id: string }[]>`SELECT user_id FROM tasks WHERE id = ${ID}::uuid`;
  const owner = row?.user_id;
  t.equal(await taskCount(built), 1, 'one row');
  users.forEach((user, i) => {
    const res = results[i] as Sent;
    if (user === owner) t.equal(res.statusCode, 201, `${user} (the owner): 201`);
    else conflict(t, res, `${user} (not the owner)`);
  });
  t.equal(results.filter((r) => r.statusCode === 201 && r.headers['idempotent-replayed'] === undefined).length, 1, 'exactly one first answer');
});

t.test('the id of a deleted task is 409 ID_CONFLICT, and the task is never brought back', async (t) => {
  const built = await build(t);
  const fields = { id: ID, title: 'Gone soon' };
  t.equal((await create(built.api, 'alice', fields)).statusCode, 201);
  t.equal((await built.api.delete(`/api/tasks/${ID}`, { as: 'alice' })).statusCode, 204);
  const { since } = await feed(built.api, 'alice');
  const before = await stored(built);

  conflict(t, await create(built.api, 'alice', fields), 'the same fields');
  conflict(t, await create(built.api, 'alice', { id: ID, title: 'Something else' }), 'other fields');
  conflict(t, await create(built.api, 'bob', fields), 'another user');
  t.equal((await built.api.get(`/api/tasks/${ID}`, { as: 'alice' })).statusCode, 404, 'GET is still a 404');
  t.same(await stored(built), before, 'nothing was written: no task, no user record or counter changed');
  t.same(await feed(built.api, 'alice', since), { changes: [], since }, 'the feed has nothing new, and next_since has not moved');
  t.notOk(upserted((await feed(built.api, 'alice')).changes, ID), 'a full sync does not list it');
});

t.test('a deleted task stays deleted after housekeeping has purged its tombstone and its key', async (t) => {
  const built = await build(t, { syncRetentionDays: 0 });
  const fields = { id: ID, title: 'Gone for good' };
  t.equal((await create(built.api, 'alice', fields)).statusCode, 201);
  t.equal((await built.api.delete(`/api/tasks/${ID}`, { as: 'alice' })).statusCode, 204);
  const { since } = await feed(built.api, 'alice');

  const swept = await built.app.housekeeping();
  t.equal(swept.tombstones, 1, 'the tombstone was purged');
  conflict(t, await create(built.api, 'alice', fields), 'after the purge, the key still kept');
  conflict(t, await create(built.api, 'bob', fields), 'after the purge, another user');

  const [records] = await built.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM idempotency_keys`;
  t.equal(records?.n, 0, "the client id's record went with its task");
  conflict(t, await create(built.api, 'alice', { ...fields, title: 'other' }), 'after the purge, other fields');

  t.equal((await built.api.get(`/api/tasks/${ID}`, { as: 'alice' })).statusCode, 404, 'GET is still a 404');
  t.equal(await taskCount(built), 0, 'no row');
  t.same((await feed(built.api, 'alice', since)).changes, [], 'the feed shows nothing new');
  t.notOk(upserted((await feed(built.api, 'alice')).changes, ID), 'a full sync does not list it');
});

t.test("a client id's record outlives an Idempotency-Key's 24 hours: a late retry of a live task is its replay", async (t) => {
  const built = await build(t);
  const fields = { id: ID, title: 'Kept' };
  const first = await create(built.api, 'alice', fields);
  t.equal(first.statusCode, 201);
  // As if all of it had happened 25 hours ago.
  await built.sql`UPDATE idempotency_keys SET created_at = created_at - interval '25 hours'`;
  await built.sql`UPDATE tasks SET created_at = created_at - interval '25 hours', updated_at = updated_at - interval '25 hours'`;
  t.equal((await built.app.housekeeping()).keys, 0, 'the sweep leaves it');
  const late = await create(built.api, 'alice', fields);
  t.equal(late.statusCode, 201, 'the same fields after 24 hours');
  t.equal(late.headers['idempotent-replayed'], 'true');
  const aged = await built.api.get(`/api/tasks/${ID}`, { as: 'alice' });
  t.equal(late.body, aged.body, 'the first 201 (the task, unchanged since), exactly');
  t.equal(late.json().created_at, new Date(Date.parse(first.json().created_at) - 25 * 3600_000).toISOString());
  conflict(t, await create(built.api, 'alice', { ...fields, title: 'other' }), 'other fields after 24 hours');
  t.equal(await taskCount(built), 1);
  t.equal((await built.api.get(`/api/tasks/${ID}`, { as: 'alice' })).body, aged.body, 'the task is unchanged');
});

t.test('20 concurrent creates with one id: one row, one first 201, the rest its replay', async (t) => {
  const built = await build(t);
  const results = await Promise.all(Array.from({ length: 20 }, () => create(built.api, 'alice', { id: ID, title: 'Concurrent', notes: 'n' })));
  t.same(new Set(results.map((r) => r.statusCode)), new Set([201]), 'every answer is 201');
  t.equal(results.filter((r) => r.headers['idempotent-replayed'] === undefined).length, 1, 'exactly one first answer');
  t.equal(new Set(results.map((r) => r.body)).size, 1, 'all with the same body');
  t.equal(await taskCount(built), 1, 'one row');
});

t.test('concurrent creates with one id on two instances sharing a database: one row', async (t) => {
  const one = await build(t);
  const app = await buildApp({ sql: createSql(one.url), secretKey: SECRET, corsOrigins: [ORIGIN] });
  await app.ready();
  t.teardown(() => app.close());
  const other = new Api(t, app);
  const results = await Promise.all(
    Array.from({ length: 20 }, (_, i) => create(i % 2 ? other : one.api, 'alice', { id: ID, title: 'Both', due_date: '2026-01-07' })),
  );
  t.same(new Set(results.map((r) => r.statusCode)), new Set([201]), 'every answer is 201');
  t.equal(results.filter((r) => r.headers['idempotent-replayed'] === undefined).length, 1, 'exactly one first answer');
  t.equal(new Set(results.map((r) => r.body)).size, 1, 'all with the same body');
  t.equal(await taskCount(one), 1, 'one row');
});

t.test('creates with ids go to the top of the manual order', async (t) => {
  const built = await build(t);
  await built.api.createTask('alice', 'a');
  t.equal((await create(built.api, 'alice', { id: ID, title: 'b (id)' })).statusCode, 201);
  const c = await built.api.createTask('alice', 'c');
  t.same(await manualOrder(built.api, 'alice'), ['c', 'b (id)', 'a']);
  const moved = await built.api.post(`/api/tasks/${c.id}/move`, { as: 'alice', payload: { to: 'bottom' } });
  t.equal(moved.statusCode, 200);
  t.equal((await create(built.api, 'alice', { id: OTHER_ID, title: 'd (id)' })).statusCode, 201);
  t.same(await manualOrder(built.api, 'alice'), ['d (id)', 'b (id)', 'a', 'c'], 'above every other task, after moves too');
});

t.test('a malformed id is a 400 on id, and creates nothing', async (t) => {
  const built = await build(t);
  for (const id of ['', 'not-a-uuid', `${ID}0`, ID.replace(/-/g, ''), `{${ID}}`]) {
    const res = await create(built.api, 'alice', { id, title: 'x' });
    t.equal(res.statusCode, 400, `${JSON.stringify(id)}: 400`);
    t.match(res.json().error?.details?.[0], { in: 'body', field: 'id' }, `${JSON.stringify(id)}: details name id`);
  }
  t.same(await stored(built), { tasks: [], users: [], tombstones: [], keys: [] }, 'nothing was stored');
});
