/**
 * Idempotency-Key on POST /api/tasks: a retried create happens once, whatever
 * the timing; the first 201 is replayed exactly; keys belong to their user.
 */
import t from 'tap';
import { build, type Built } from '../helper.ts';

const KEY = 'b7c1e0a4-2f4d-4c9e-8a51-0d7c3e9f1a22';

async function taskCount(built: Built, user: string): Promise<number> {
  const [row] = await built.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM tasks WHERE user_id = ${user}`;
  return row?.n ?? -1;
}

const create = (built: Built, user: string, title: string, key: string | null = KEY) =>
  built.api.post('/api/tasks', { as: user, payload: { title }, headers: key === null ? {} : { 'idempotency-key': key } });

t.test('the same key and title: the first 201 is replayed exactly, and only one task exists', async (t) => {
  const built = await build(t);
  const first = await create(built, 'alice', 'Buy milk');
  t.equal(first.statusCode, 201);
  t.equal(first.headers['idempotent-replayed'], undefined, 'a first answer is not marked as a replay');

  const again = await create(built, 'alice', '  Buy milk  ');
  t.equal(again.statusCode, 201, 'the retry (same title after trimming) gets 201 too');
  t.equal(again.headers['idempotent-replayed'], 'true');
  t.equal(again.body, first.body, 'the same body, byte for byte');
  t.equal(again.headers.location, first.headers.location, 'the same Location');
  t.equal(again.headers.etag, first.headers.etag, 'the same ETag');
  t.equal(await taskCount(built, 'alice'), 1, 'no second task');

  // Still the first answer after the task has changed: a replay is of the response, not of the task.
  const id = first.json().id as string;
  t.equal((await built.api.patch(`/api/tasks/${id}`, { as: 'alice', payload: { status: 'completed' } })).statusCode, 200);
  const later = await create(built, 'alice', 'Buy milk');
  t.equal(later.body, first.body, 'the replay is still the first 201');
  t.equal(await taskCount(built, 'alice'), 1);
});

t.test('the same key with another title is 422 IDEMPOTENCY_KEY_REUSED and creates nothing', async (t) => {
  const built = await build(t);
  t.equal((await create(built, 'alice', 'Buy milk')).statusCode, 201);
  const other = await create(built, 'alice', 'Buy bread');
  t.equal(other.statusCode, 422);
  t.equal(other.json().error.code, 'IDEMPOTENCY_KEY_REUSED');
  t.equal(await taskCount(built, 'alice'), 1);
});

t.test("keys belong to the user: another user's identical key is unrelated", async (t) => {
  const built = await build(t);
  const alice = await create(built, 'alice', 'Buy milk');
  const bob = await create(built, 'bob', 'Buy milk');
  t.equal(bob.statusCode, 201);
  t.equal(bob.headers['idempotent-replayed'], undefined);
  t.not(bob.json().id, alice.json().id, 'a task of his own');
  t.equal(bob.json().user_id, 'bob');
  const bobDifferent = await create(built, 'bob', 'Something else', 'another-key');
  t.equal(bobDifferent.statusCode, 201);
});

t.test('without a key, every POST creates a task', async (t) => {
  const built = await build(t);
  await create(built, 'alice', 'same', null);
  await create(built, 'alice', 'same', null);
  t.equal(await taskCount(built, 'alice'), 2);
});

t.test('20 concurrent identical requests: one task, and every 201 carries its id', async (t) => {
  const built = await build(t);
  const results = await Promise.all(Array.from({ length: 20 }, () => create(built, 'alice', 'Concurrent')));
  t.same(
    results.map((r) => r.statusCode),
    Array(20).fill(201),
    'every request gets 201',
  );
  const ids = new Set(results.map((r) => r.json().id as string));
  t.equal(ids.size, 1, 'one id in all of them');
  t.equal(results.filter((r) => r.headers['idempotent-replayed'] === undefined).length, 1, 'exactly one first answer');
  t.equal(await taskCount(built, 'alice'), 1, 'exactly one row');
});

t.test('concurrent requests with one key and different titles: one wins, the others are 422', async (t) => {
  const built = await build(t);
  const results = await Promise.all(Array.from({ length: 6 }, (_, i) => create(built, 'alice', `title ${i % 2}`)));
  const created = results.filter((r) => r.statusCode === 201);
  const winner = created[0]?.json().title as string;
  t.ok(created.length >= 1, 'at least one 201');
  t.ok(
    created.every((r) => r.json().title === winner),
    'every 201 is for the same title',
  );
  t.ok(
    results.every((r) => r.statusCode === 201 || (r.statusCode === 422 && r.json().error.code === 'IDEMPOTENCY_KEY_REUSED')),
    'the rest are 422',
  );
  t.equal(await taskCount(built, 'alice'), 1);
});

t.test('a refused request (4xx) leaves the key unused', async (t) => {
  const built = await build(t);
  const bad = await create(built, 'alice', '   ');
  t.equal(bad.statusCode, 400);
  const good = await create(built, 'alice', 'Now valid');
  t.equal(good.statusCode, 201);
  t.equal(good.headers['idempotent-replayed'], undefined, 'the key was still free');
  t.equal(good.json().title, 'Now valid');
});

t.test('a malformed key is a 400 naming the header, and creates nothing', async (t) => {
  const built = await build(t);
  const cases: Array<[string, string]> = [
    ['empty', ''],
    ['256 characters', 'k'.repeat(256)],
    ['an inner space', 'two words'],
    ['a tab', 'a\tb'],
    ['non-ASCII', 'clé'],
  ];
  for (const [name, key] of cases) {
    const res = await built.api.post('/api/tasks', {
      as: 'alice',
      payload: { title: 'x' },
      headers: { 'idempotency-key': key },
    });
    t.equal(res.statusCode, 400, `${name}: 400`);
    t.equal(res.json().error.code, 'VALIDATION_ERROR');
    t.match(res.json().error.details, [{ in: 'header', field: 'Idempotency-Key' }], `${name}: details name the header`);
  }
  const longest = await create(built, 'alice', 'x', '~'.repeat(255));
  t.equal(longest.statusCode, 201, '255 visible characters are fine');
  t.equal(await taskCount(built, 'alice'), 1);
});

t.test('a key expires after 24 hours: then it creates anew, and the sweep removes old keys', async (t) => {
  const built = await build(t);
  const first = await create(built, 'alice', 'Buy milk');
  await built.sql`UPDATE idempotency_keys SET created_at = now() - interval '24 hours 1 second'`;
  const again = await create(built, 'alice', 'Buy milk');
  t.equal(again.statusCode, 201);
  t.equal(again.headers['idempotent-replayed'], undefined, 'not a replay');
  t.not(again.json().id, first.json().id, 'a new task');
  t.equal(await taskCount(built, 'alice'), 2);

  await create(built, 'alice', 'Other', 'second-key');
  await built.sql`UPDATE idempotency_keys SET created_at = now() - interval '25 hours' WHERE key = 'second-key'`;
  const swept = await built.app.housekeeping();
  t.equal(swept.keys, 1, 'the sweep removed the expired key');
  const left = await built.sql<{ key: string }[]>`SELECT key FROM idempotency_keys`;
  t.same(
    left.map((r) => r.key),
    [KEY],
    'the live key stays',
  );
});
