import t from 'tap';
import { build } from '../helper.ts';

t.test('API responses carry security headers for a JSON API', async (t) => {
  const { api } = await build(t);
  for (const res of [await api.get('/api/tasks', { as: 'alice' }), await api.get('/api/tasks'), await api.get('/nowhere'), await api.get('/health')]) {
    const h = res.headers;
    t.equal(h['content-security-policy'], "default-src 'none';frame-ancestors 'none';base-uri 'none';form-action 'none'", `${res.statusCode}: nothing may load from or frame a response`);
    t.equal(h['x-content-type-options'], 'nosniff');
    t.equal(h['x-frame-options'], 'DENY');
    t.equal(h['referrer-policy'], 'no-referrer');
    t.match(h['strict-transport-security'], /^max-age=31536000; includeSubDomains/);
    t.equal(h['cross-origin-resource-policy'], 'same-origin');
    t.equal(h['x-powered-by'], undefined);
  }
});

t.test('/docs gets a policy that lets the reference page run, and no more', async (t) => {
  const { app } = await build(t);
  const res = await app.inject({ method: 'GET', url: '/docs/' });
  t.equal(res.statusCode, 200);
  const csp = String(res.headers['content-security-policy']);
  t.match(csp, /script-src 'self'/, 'its own scripts');
  t.match(csp, /connect-src 'self'/, 'calls to this API');
  t.notMatch(csp, /unsafe-eval|upgrade-insecure-requests/, 'no eval, and calls to http://localhost are not upgraded');
  t.equal(res.headers['x-content-type-options'], 'nosniff');
});
