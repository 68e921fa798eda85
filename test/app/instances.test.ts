/**
 * Two instances of the app (each with its own pool) on one database, serving the
 * same users at once: idempotency keys, ETags and the change feed behave exactly
 * as with one, because all of their state is in PostgreSQL.
 */
import t from 'tap';
import { buildApp } from '../../src/app.ts';
import { createSql } from '../../src/db/client.ts';
import { Api, build, ORIGIN, SECRET, type Built, type Test } from '../helper.ts';

async function twoInstances(t: Test): Promise<{ one: Built; other: Api }> {
  const one = await build(t);
  const app = await buildApp({ sql: createSql(one.url), secretKey: SECRET, corsOrigins: [ORIGIN] });
  await app.ready();
  t.teardown(() => app.close());
  return { one, other: new Api(t, app) };
}

t.test('one Idempotency-Key sent to both instances at once: one task, one id', async (t) => {
  const { one, other } = await twoInstances(t);
  const results = await Promise.all(
    Array.from({ length: 20 }, (_, i) =>
      (i % 2 ? other : one.api).post('/api/tasks', { as: 'alice', payload: { title: 'both' }, headers: { 'idempotency-key': 'shared' } }),
    ),
  );
  t.same(new Set(results.map((r) => r.statusCode)), new Set([201]), 'every answer is 201');
  t.equal(new Set(results.map((r) => r.json().id)).size, 1, 'with one id');
  t.equal(new Set(results.map((r) => r.headers.etag)).size, 1, 'and one ETag');
  const [row] = await one.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM tasks`;
  t.equal(row?.n, 1, 'one row');
});

t.test('conditional writers on both instances: exactly one wins', async (t) => {
  const { one, other } = await twoInstances(t);
  const task = await one.api.createTask('alice', 'contended');
  const etag = (await other.get(`/api/tasks/${task.id}`, { as: 'alice' })).headers.etag as string;
  t.equal((await one.api.get(`/api/tasks/${task.id}`, { as: 'alice' })).headers.etag, etag, 'both instances give the same ETag');
  const results = await Promise.all(
    Array.from({ length: 10 }, (_, i) =>
      (i % 2 ? other : one.api).patch(`/api/tasks/${task.id}`, { as: 'alice', payload: { title: `w${i}` }, headers: { 'if-match': etag } }),
    ),
  );
  t.equal(results.filter((r) => r.statusCode === 200).length, 1, 'one 200');
  t.equal(results.filter((r) => r.statusCode === 412).length, 9, 'nine 412');
});

t.test('the change feed read from one instance follows writes made through the other', async (t) => {
  const { one, other } = await twoInstances(t);
  let since = (await other.get('/api/tasks/changes', { as: 'alice' })).json().next_since as string;
  const replica = new Map<string, { title: string }>();
  const apply = async () => {
    for (;;) {
      const page = (await other.get(`/api/tasks/changes?since=${since}&limit=3`, { as: 'alice' })).json();
      for (const c of page.changes) {
        if (c.type === 'upsert') replica.set(c.task.id, c.task);
        else replica.delete(c.id);
      }
      since = page.next_since;
      if (!page.has_more) return;
    }
  };
  await Promise.all(
    Array.from({ length: 8 }, async (_, i) => {
      const writer = i % 2 ? other : one.api;
      const task = await writer.createTask('alice', `t${i}`);
      if (i % 3 === 0) await writer.delete(`/api/tasks/${task.id}`, { as: 'alice' });
      else await one.api.patch(`/api/tasks/${task.id}`, { as: 'alice', payload: { status: 'completed' } });
      await apply();
    }),
  );
  await apply();
  const listed = (await one.api.get('/api/tasks', { as: 'alice' })).json().items as Array<{ id: string }>;
  t.same([...replica.values()].sort((a, b) => a.title.localeCompare(b.title)), [...listed].sort((a: any, b: any) => a.title.localeCompare(b.title)));
});
