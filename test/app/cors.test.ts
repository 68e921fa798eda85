import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import t from 'tap';
import { loadConfig } from '../../src/config.ts';
import { build, ORIGIN } from '../helper.ts';

const EVIL = 'http://evil.example';

/** A header's values as a lower-cased list ("GET, POST" -> ['get', 'post']). */
function list(value: string | string[] | number | undefined): string[] {
  return String(value ?? '')
    .split(',')
    .map((item) => item.trim().toLowerCase())
    .filter((item) => item !== '');
}

function preflight(app: FastifyInstance, origin: string, url = '/api/tasks', method = 'POST') {
  return app.inject({
    method: 'OPTIONS',
    url,
    headers: {
      origin,
      'access-control-request-method': method,
      'access-control-request-headers': 'authorization,content-type',
    },
  });
}

t.test('an allowed origin is echoed, with credentials', async (t) => {
  const { api } = await build(t);
  const res = await api.get('/api/tasks', { as: 'alice', headers: { origin: ORIGIN } });
  t.equal(res.statusCode, 200);
  t.equal(res.headers['access-control-allow-origin'], ORIGIN);
  t.equal(res.headers['access-control-allow-credentials'], 'true');
  t.ok(list(res.headers.vary).includes('origin'), 'Vary: Origin, so caches keep one answer per origin');
});

t.test('a disallowed origin gets no Access-Control-Allow-Origin', async (t) => {
  const { api } = await build(t);
  const res = await api.get('/api/tasks', { as: 'alice', headers: { origin: EVIL } });
  t.equal(res.statusCode, 200, 'the request itself is served; the browser withholds the response');
  t.equal(res.headers['access-control-allow-origin'], undefined);
  t.equal(res.headers['access-control-allow-credentials'], undefined);
  t.ok(list(res.headers.vary).includes('origin'), 'Vary: Origin here too');
});

t.test('origins are matched exactly', async (t) => {
  const { api } = await build(t);
  const lookalikes = [`${ORIGIN}/`, 'http://localhost:3001', 'https://localhost:3000', 'http://localhost:3000.evil.example', 'null'];
  for (const origin of lookalikes) {
    const res = await api.get('/api/tasks', { as: 'alice', headers: { origin } });
    t.equal(res.headers['access-control-allow-origin'], undefined, origin);
  }
});

t.test('a request without Origin gets no CORS headers', async (t) => {
  const { api } = await build(t);
  const res = await api.get('/api/tasks', { as: 'alice' });
  t.equal(res.statusCode, 200);
  t.equal(res.headers['access-control-allow-origin'], undefined);
});

t.test('a preflight from an allowed origin answers 204 with the methods and headers', async (t) => {
  const { app } = await build(t);
  const res = await preflight(app, ORIGIN);
  t.equal(res.statusCode, 204);
  t.equal(res.body, '');
  t.equal(res.headers['access-control-allow-origin'], ORIGIN);
  t.equal(res.headers['access-control-allow-credentials'], 'true');
  const methods = list(res.headers['access-control-allow-methods']);
  for (const method of ['get', 'post', 'put', 'patch', 'delete']) {
    t.ok(methods.includes(method), `allows ${method.toUpperCase()}`);
  }
  const headers = list(res.headers['access-control-allow-headers']);
  t.ok(headers.includes('authorization'), 'allows Authorization');
  t.ok(headers.includes('content-type'), 'allows Content-Type');
});

t.test('a preflight for a task URL works too', async (t) => {
  const { app } = await build(t);
  const res = await preflight(app, ORIGIN, '/api/tasks/6f1c2a9e-3b4d-4e5f-8a9b-0c1d2e3f4a5b', 'PATCH');
  t.equal(res.statusCode, 204);
  t.equal(res.headers['access-control-allow-origin'], ORIGIN);
  t.ok(list(res.headers['access-control-allow-methods']).includes('patch'));
});

t.test('a preflight from a disallowed origin carries no Access-Control-Allow-Origin', async (t) => {
  const { app } = await build(t);
  const res = await preflight(app, EVIL);
  t.equal(res.headers['access-control-allow-origin'], undefined);
  t.equal(res.headers['access-control-allow-methods'], undefined);
  t.equal(res.headers['access-control-allow-headers'], undefined);
});

t.test('a 401 to an allowed origin carries the CORS headers, so the browser can read the error', async (t) => {
  const { api } = await build(t);
  const res = await api.get('/api/tasks', { headers: { origin: ORIGIN } });
  t.equal(res.statusCode, 401);
  t.equal(res.json().error.code, 'NOT_AUTHENTICATED');
  t.equal(res.headers['access-control-allow-origin'], ORIGIN);
  t.equal(res.headers['access-control-allow-credentials'], 'true');
  t.ok(list(res.headers['access-control-expose-headers']).includes('www-authenticate'), 'WWW-Authenticate is readable');
});

t.test('with two configured origins, each gets its own origin back', async (t) => {
  const other = 'https://app.example.com';
  const { api } = await build(t, { corsOrigins: [ORIGIN, other] });
  for (const origin of [ORIGIN, other]) {
    const res = await api.get('/api/tasks', { as: 'alice', headers: { origin } });
    t.equal(res.headers['access-control-allow-origin'], origin, `${origin} is echoed alone, not both and not *`);
  }
  const evil = await api.get('/api/tasks', { as: 'alice', headers: { origin: EVIL } });
  t.equal(evil.headers['access-control-allow-origin'], undefined, 'an unlisted origin still gets nothing');
});

t.test('Location is exposed to the browser', async (t) => {
  const { api } = await build(t);
  const res = await api.post('/api/tasks', { as: 'alice', headers: { origin: ORIGIN }, payload: { title: 'x' } });
  t.equal(res.statusCode, 201);
  t.type(res.headers.location, 'string');
  t.ok(list(res.headers['access-control-expose-headers']).includes('location'), 'Location is in Access-Control-Expose-Headers');
});

t.test('outside production any loopback origin passes a preflight, whatever its port; in production only the exact list', async (t) => {
  const dev = await build(t, { corsOrigins: loadConfig({ ENVIRONMENT: 'development' }).corsOrigins, corsAllowLoopback: true });
  const loopback = ['http://localhost:5173', 'http://127.0.0.1:5173', 'http://localhost:3000', 'http://localhost:4200', 'http://127.0.0.1:8081', 'http://[::1]:4200', 'https://localhost:8443', 'http://localhost'];
  for (const origin of loopback) {
    const res = await preflight(dev.app, origin);
    t.equal(res.statusCode, 204, `${origin}: 204`);
    t.equal(res.headers['access-control-allow-origin'], origin, `${origin}: allowed in development`);
  }
  for (const origin of ['http://localhost.evil.example', 'http://127.0.0.2:4200', 'http://evil.example:4200', 'http://localhost:4200.evil.example']) {
    t.equal((await preflight(dev.app, origin)).headers['access-control-allow-origin'], undefined, `${origin}: not loopback, refused`);
  }
  const prod = await build(t, { corsOrigins: ['https://app.example.com'], corsAllowLoopback: false });
  t.equal((await preflight(prod.app, 'http://localhost:4200')).headers['access-control-allow-origin'], undefined, 'production: a loopback origin is refused');
  t.equal((await preflight(prod.app, 'https://app.example.com')).headers['access-control-allow-origin'], 'https://app.example.com', 'production: the listed one passes');
});

t.test('a refused preflight is logged at warn with the origin and the variable that would allow it', async (t) => {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  const { app } = await build(t, { loggerInstance: logger });
  await preflight(app, EVIL);
  const refused = lines.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('CORS preflight refused'));
  t.equal(refused.length, 1, 'one line');
  t.equal(refused[0]?.level, 40, 'at warn');
  t.equal(refused[0]?.origin, EVIL);
  t.equal(refused[0]?.variable, 'CORS_ORIGINS');
  t.match(refused[0]?.msg, /add it to CORS_ORIGINS/);

  lines.splice(0);
  await preflight(app, ORIGIN);
  await app.inject({ method: 'GET', url: '/health', headers: { origin: EVIL } });
  t.same(
    lines.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('CORS')),
    [],
    'nothing for an allowed preflight or a simple request',
  );
});
