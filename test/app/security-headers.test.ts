import t from 'tap';
import { build } from '../helper.ts';

const API_SET = {
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
  'strict-transport-security': 'max-age=31536000; includeSubDomains',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-resource-policy': 'same-origin',
};
// Headers that act on HTML documents only: on /docs, never on the API's JSON.
const DOCUMENT_ONLY = ['x-xss-protection', 'x-download-options', 'x-dns-prefetch-control', 'x-permitted-cross-domain-policies', 'origin-agent-cluster', 'cross-origin-opener-policy'];

t.test("API responses carry exactly a JSON API's security headers; everything under /api is private, no-cache", async (t) => {
  const { api } = await build(t);
  const task = await api.createTask('alice', 'cached?');
  const etag = String((await api.get(`/api/tasks/${task.id}`, { as: 'alice' })).headers.etag);
  const responses: Array<[string, Awaited<ReturnType<typeof api.get>>, boolean]> = [
    ['a list', await api.get('/api/tasks', { as: 'alice' }), true],
    ['a task', await api.get(`/api/tasks/${task.id}`, { as: 'alice' }), true],
    ['a 304', await api.get(`/api/tasks/${task.id}`, { as: 'alice', headers: { 'if-none-match': etag } }), true],
    ['a 401', await api.get('/api/tasks'), true],
    ['an unknown /api route', await api.get('/api/nowhere', { as: 'alice' }), true],
    ['a 404 elsewhere', await api.get('/nowhere'), false],
    ['/health', await api.get('/health'), false],
    ['/', await api.get('/'), false],
  ];
  for (const [name, res, underApi] of responses) {
    for (const [header, value] of Object.entries(API_SET)) t.equal(res.headers[header], value, `${name}: ${header}`);
    for (const header of DOCUMENT_ONLY) t.equal(res.headers[header], undefined, `${name}: no ${header}`);
    t.equal(res.headers['cache-control'], underApi ? 'private, no-cache' : undefined, `${name}: cache-control`);
    t.equal(res.headers['x-powered-by'], undefined);
  }
  t.equal(responses[2]?.[1].statusCode, 304, 'the revalidation answered 304');
});

t.test('/docs, an HTML page, keeps the full browser set', async (t) => {
  const { app } = await build(t);
  const res = await app.inject({ method: 'GET', url: '/docs/' });
  t.equal(res.statusCode, 200);
  t.equal(res.headers['x-xss-protection'], '0');
  t.equal(res.headers['cross-origin-opener-policy'], 'same-origin');
  t.equal(res.headers['origin-agent-cluster'], '?1');
  t.equal(res.headers['x-dns-prefetch-control'], 'off');
  t.equal(res.headers['x-download-options'], 'noopen');
  t.equal(res.headers['x-permitted-cross-domain-policies'], 'none');
  t.equal(res.headers['x-frame-options'], 'DENY');
  t.equal(res.headers['cache-control'], undefined, 'the page is public: not under /api');
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
