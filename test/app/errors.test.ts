import pino from 'pino';
import t from 'tap';
import { buildApp } from '../../src/app.ts';
import { createSql } from '../../src/db/client.ts';
import { Api, freshSchema, ORIGIN, SECRET, build, rawSender, type Test } from '../helper.ts';

/** The app with extra routes that fail on purpose, registered before ready(). */
async function buildWithFailures(t: Test) {
  const { url } = await freshSchema(t);
  const sql = createSql(url);
  const app = await buildApp({ sql, secretKey: SECRET, corsOrigins: [ORIGIN] });
  app.get('/boom', async () => {
    const err = new Error('relation "secret_table" does not exist at /srv/app/src/db.ts:12');
    throw Object.assign(err, { query: 'SELECT * FROM secret_table' });
  });
  app.get('/bad-cast', async () => sql`SELECT ${'not a number'}::int`);
  app.get('/serialize', async () => {
    throw Object.assign(new Error('weird'), { statusCode: 418 });
  });
  await app.ready();
  t.teardown(() => app.close());
  return { app, api: new Api(t, app) };
}

t.test('an unexpected error is a masked 500 INTERNAL_ERROR', async (t) => {
  const { app } = await buildWithFailures(t);
  const res = await app.inject({ method: 'GET', url: '/boom' });
  t.equal(res.statusCode, 500);
  t.match(res.headers['content-type'], /^application\/json/);
  const id = res.headers['x-request-id'];
  t.type(id, 'string', 'the response has a request id');
  t.same(res.json(), {
    error: { code: 'INTERNAL_ERROR', message: `An unexpected error occurred; quote request id ${String(id)} when reporting it.`, details: null },
  });
  for (const leak of ['secret_table', '/srv/', 'SELECT', 'at ', 'stack']) {
    t.notOk(res.body.includes(leak), `the body does not carry "${leak}"`);
  }
});

t.test('a value PostgreSQL refuses is a 400, not a 500', async (t) => {
  const { app } = await buildWithFailures(t);
  const res = await app.inject({ method: 'GET', url: '/bad-cast' });
  t.equal(res.statusCode, 400);
  t.equal(res.json().error.code, 'VALIDATION_ERROR');
  t.notOk(res.body.includes('invalid input syntax'), 'the driver message is not echoed');
});

t.test('other client errors keep to the error body', async (t) => {
  const { app } = await buildWithFailures(t);
  const res = await app.inject({ method: 'GET', url: '/serialize' });
  t.equal(res.statusCode, 400);
  t.same(Object.keys(res.json().error).sort(), ['code', 'details', 'message']);
});

t.test('unknown routes are a JSON 404 NOT_FOUND', async (t) => {
  const { api } = await build(t);
  // GET / is an operation (getIndex); everything else unknown is a 404.
  for (const url of ['/nope', '/api', '/api/tasks/a/b', '/api/task']) {
    const res = await api.get(url);
    t.equal(res.statusCode, 404, url);
    t.equal(res.json().error.code, 'NOT_FOUND', url);
  }
});

t.test('a known path with another method is a 405 with Allow', async (t) => {
  const { api } = await build(t);
  const res = await api.request('PUT', '/api/tasks', { as: 'alice' });
  t.equal(res.statusCode, 405);
  t.equal(res.json().error.code, 'METHOD_NOT_ALLOWED');
  t.equal(res.headers.allow, 'GET, POST, DELETE, HEAD, PATCH');
  const one = await api.request('POST', '/api/tasks/6f1c2a9e-3b4d-4e5f-8a9b-0c1d2e3f4a5b', { as: 'alice' });
  t.equal(one.statusCode, 405);
  t.equal(one.headers.allow, 'GET, PUT, DELETE, HEAD, PATCH');
});

t.test('an unsupported method is a 405 with Allow whatever its headers and body', async (t) => {
  const { app } = await build(t);
  const variants: Array<[string, Record<string, string>, string | undefined]> = [
    ['no Content-Type, no body', {}, undefined],
    ['no Content-Type, a body', {}, 'abc'],
    ['JSON', { 'content-type': 'application/json' }, '{"a":1}'],
    ['malformed JSON', { 'content-type': 'application/json' }, '{'],
    ['text', { 'content-type': 'text/plain' }, 'x'],
    ['an unknown media type', { 'content-type': 'application/x-whatever' }, 'x'],
  ];
  for (const method of ['QUERY', 'PROPFIND', 'PUT']) {
    for (const [name, headers, payload] of variants) {
      const res = await app.inject({ method: method as 'PUT', url: '/health/live', headers, ...(payload !== undefined && { payload }) });
      t.equal(res.statusCode, 405, `${method} with ${name}`);
      t.equal(res.headers.allow, 'GET, HEAD', `${method} with ${name}: Allow`);
      t.equal(res.json().error.code, 'METHOD_NOT_ALLOWED');
    }
  }
});

t.test('every error body has exactly code, message and details', async (t) => {
  const { api } = await build(t);
  const responses = [
    await api.get('/api/tasks'),
    await api.get('/api/tasks/nope', { as: 'a' }),
    await api.get('/missing'),
    await api.post('/api/tasks', { as: 'a', headers: { 'content-type': 'text/plain' }, payload: 'x' }),
  ];
  for (const res of responses) {
    t.same(Object.keys(res.json()), ['error']);
    t.same(Object.keys(res.json().error).sort(), ['code', 'details', 'message']);
    t.type(res.json().error.message, 'string');
  }
});

t.test('a URL with broken percent-encoding gets the contract\'s error body', async (t) => {
  const { app } = await build(t);
  for (const url of ['/api/tasks/%zz', '/api/tasks/%FF']) {
    const res = await app.inject({ method: 'GET', url });
    t.equal(res.statusCode, 400, url);
    t.same(Object.keys(res.json().error).sort(), ['code', 'details', 'message']);
    t.equal(res.json().error.code, 'MALFORMED_REQUEST');
  }
});

t.test('requests the HTTP parser refuses get the contract\'s error body', async (t) => {
  const { app } = await build(t);
  const raw = await rawSender(app);
  const big = await raw(`GET /api/tasks HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
  t.match(big, /^HTTP\/1\.1 431 /);
  t.same(JSON.parse(big.split('\r\n\r\n')[1] ?? '').error.code, 'MALFORMED_REQUEST');
  const junk = await raw('NOT A REQUEST\r\n\r\n');
  t.match(junk, /^HTTP\/1\.1 400 /);
  t.equal(JSON.parse(junk.split('\r\n\r\n')[1] ?? '').error.code, 'MALFORMED_REQUEST');
});

t.test('a database that stops answering is a 503 after the deadline, not a hang', async (t) => {
  const { url } = await freshSchema(t);
  const real = createSql(url);
  // A pool whose queries never settle, like a database that is frozen (it cannot even take a cancel).
  const frozen = new Proxy(real, { apply: () => Object.assign(new Promise(() => {}), { cancel: () => {} }) });
  const app = await buildApp({ sql: frozen, secretKey: SECRET, corsOrigins: [ORIGIN], operationDeadlineMs: 300 });
  await app.ready();
  t.teardown(async () => {
    await app.close().catch(() => {});
    await real.end();
  });
  const api = new Api(t, app);
  const res = await api.get('/api/tasks', { as: 'alice' });
  t.equal(res.statusCode, 503);
  t.equal(res.json().error.code, 'SERVICE_UNAVAILABLE');
  t.equal(res.headers['retry-after'], '5');
});

t.test("a body in a media type the contract names only for responses (an event stream, a page) is a 415, and the app starts without a warning", async (t) => {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'warn' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  const { api } = await build(t, { loggerInstance: logger });
  t.same(lines, [], 'nothing at warn while the routes were bound (glue asks a parser for every media type)');
  for (const type of ['text/event-stream', 'text/html']) {
    const res = await api.post('/api/tasks', { as: 'alice', headers: { 'content-type': type }, payload: 'x' });
    t.equal(res.statusCode, 415, type);
    t.equal(res.json().error.message, `The request body came with Content-Type ${type}; send it as application/json (UTF-8).`);
  }
});
