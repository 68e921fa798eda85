import t from 'tap';
import { createSql, type Sql } from '../../src/db/client.ts';
import { build, freshSchema } from '../helper.ts';

/** The pool, counting the health check's queries (`SELECT 1`) that reach it. */
function countingHealthQueries(sql: Sql): { sql: Sql; count: () => number } {
  let n = 0;
  const wrapped = new Proxy(sql, {
    apply(target, thisArg, args: unknown[]) {
      const strings = args[0];
      if (Array.isArray(strings) && strings.join('?').trim() === 'SELECT 1') n++;
      return Reflect.apply(target, thisArg, args);
    },
  });
  return { sql: wrapped, count: () => n };
}

const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

t.test('a flood of /health checks shares one database query a second', async (t) => {
  const { url } = await freshSchema(t);
  const counting = countingHealthQueries(createSql(url));
  const { api } = await build(t, { sql: counting.sql });
  const flood = await Promise.all([...Array(200)].map(() => api.get('/health')));
  t.same(new Set(flood.map((r) => r.statusCode)), new Set([200]), '200 checks, all 200');
  t.equal(counting.count(), 1, 'one query answered all of them');
  for (let i = 0; i < 20; i++) await api.get('/health');
  t.equal(counting.count(), 1, 'checks right after it reuse its verdict');
  await wait(1100);
  t.equal((await api.get('/health')).statusCode, 200);
  t.equal(counting.count(), 2, 'after a second, the next check asks the database again');
});

t.test('/health/live answers without the database', async (t) => {
  const { url } = await freshSchema(t);
  const real = createSql(url);
  let queries = 0;
  // A database that never answers.
  const frozen = new Proxy(real, { apply: () => (queries++, new Promise(() => {})) });
  const { api } = await build(t, { sql: frozen });
  t.teardown(() => real.end());
  const before = queries;
  const res = await api.get('/health/live');
  t.equal(res.statusCode, 200);
  t.same(res.json(), { status: 'ok' });
  t.equal(queries - before, 0, 'no query was made');
  t.match(res.headers['x-request-id'], /.+/);
});

t.test('health checks are public and ignore query parameters (probes add cache-busters)', async (t) => {
  const { api } = await build(t);
  t.equal((await api.get('/health/live', { headers: { authorization: 'Bearer garbage' } })).statusCode, 200, 'a bad token is ignored');
  t.equal((await api.get('/health/live?x=1')).statusCode, 200);
  t.equal((await api.get('/health?x=1')).statusCode, 200);
});
