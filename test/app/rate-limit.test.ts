import t from 'tap';
import { build, token, type Sent, type Test } from '../helper.ts';

function assertRateLimited(t: Test, res: Sent, limit: number): void {
  t.equal(res.statusCode, 429, '429');
  t.equal(res.json().error.code, 'RATE_LIMITED');
  t.match(res.json().error.message, new RegExp(`the limit is ${limit} a minute`), 'the message states the limit');
  t.equal(res.headers['ratelimit-limit'], String(limit), 'RateLimit-Limit');
  t.equal(res.headers['ratelimit-remaining'], '0', 'RateLimit-Remaining');
  const retryAfter = Number(res.headers['retry-after']);
  t.ok(retryAfter > 0 && retryAfter <= 60, `Retry-After is ${retryAfter} s`);
  t.equal(res.headers['ratelimit-reset'], res.headers['retry-after'], 'RateLimit-Reset agrees');
}

t.test('each user has RATE_LIMIT_PER_MINUTE requests a minute; over it, 429 and nothing is done', async (t) => {
  const { api, sql } = await build(t, { rateLimitPerMinute: 3 });
  for (let i = 0; i < 3; i++) {
    const res = await api.get('/api/tasks', { as: 'alice' });
    t.equal(res.statusCode, 200, `request ${i + 1} is served`);
    t.equal(res.headers['ratelimit-remaining'], String(2 - i), 'and says how many remain');
  }
  assertRateLimited(t, await api.get('/api/tasks', { as: 'alice' }), 3);
  const create = await api.post('/api/tasks', { as: 'alice', payload: { title: 'over the limit' } });
  assertRateLimited(t, create, 3);
  t.same([...(await sql`SELECT count(*)::int AS n FROM tasks`)], [{ n: 0 }], 'the refused create wrote nothing');
  t.equal((await api.get('/api/tasks', { as: 'bob' })).statusCode, 200, 'another user is unaffected');
  t.equal((await api.get('/health')).statusCode, 200, 'public routes are not counted per user');
});

t.test('failed authentications from one IP are limited; a valid token from it still works', async (t) => {
  const { api } = await build(t, { authFailureLimitPerMinute: 2 });
  const bad = { token: token('alice', { secret: 'w'.repeat(40) }) };
  t.equal((await api.get('/api/tasks', bad)).statusCode, 401);
  t.equal((await api.get('/api/tasks')).statusCode, 401, 'a missing token is a failure too');
  assertRateLimited(t, await api.get('/api/tasks', bad), 2);
  assertRateLimited(t, await api.get('/api/tasks', { token: 'garbage' }), 2);
  t.equal((await api.get('/api/tasks', { as: 'alice' })).statusCode, 200, 'a valid token is still served');
});

t.test('X-Forwarded-For decides the client IP only with TRUST_PROXY', async (t) => {
  const bad = (ip: string) => ({ token: 'garbage', headers: { 'x-forwarded-for': ip } });
  await t.test('trusted', async (t) => {
    const { api } = await build(t, { authFailureLimitPerMinute: 1, trustProxy: true });
    t.equal((await api.get('/api/tasks', bad('198.51.100.1'))).statusCode, 401);
    t.equal((await api.get('/api/tasks', bad('198.51.100.1'))).statusCode, 429, 'the same client is limited');
    t.equal((await api.get('/api/tasks', bad('198.51.100.2'))).statusCode, 401, 'another client behind the proxy is not');
  });
  await t.test('not trusted (the default)', async (t) => {
    const { api } = await build(t, { authFailureLimitPerMinute: 1 });
    t.equal((await api.get('/api/tasks', bad('198.51.100.1'))).statusCode, 401);
    t.equal((await api.get('/api/tasks', bad('198.51.100.2'))).statusCode, 429, 'a forged X-Forwarded-For does not escape the limit');
  });
});

t.test('the defaults are 1200 requests per user and 300 failures per IP a minute; 0 turns a limit off', async (t) => {
  const defaults = await build(t, { rateLimitPerMinute: undefined, authFailureLimitPerMinute: undefined });
  const ok = await defaults.api.get('/api/tasks', { as: 'alice' });
  t.equal(ok.headers['ratelimit-limit'], '1200');
  const statuses: number[] = [];
  for (let i = 0; i < 301; i++) statuses.push((await defaults.app.inject({ url: '/api/tasks' })).statusCode);
  t.same(statuses.slice(0, 300), Array(300).fill(401), '300 failures are answered 401');
  t.equal(statuses[300], 429, 'the 301st is a 429');

  const off = await build(t); // build(t) turns both off
  for (let i = 0; i < 400; i++) {
    if ((await off.app.inject({ url: '/api/tasks' })).statusCode !== 401) t.fail(`failure ${i + 1} was not a 401`);
  }
  const res = await off.api.get('/api/tasks', { as: 'alice' });
  t.equal(res.headers['ratelimit-limit'], undefined, 'no RateLimit headers when off');
});
