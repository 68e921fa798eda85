import pino from 'pino';
import t from 'tap';
import { LOG_REDACT } from '../../src/app.ts';
import { createSql, type Sql } from '../../src/db/client.ts';
import { build, freshSchema, token, type Test } from '../helper.ts';

interface LogLine {
  level: number;
  msg?: string;
  reqId?: string;
  reason?: string;
  [key: string]: unknown;
}

/** An info-level pino logger, redacting as the server does, that keeps every line it writes. */
function memoryLogger() {
  const lines: string[] = [];
  const logger = pino({ level: 'info', redact: LOG_REDACT }, { write: (line: string) => void lines.push(line) });
  return {
    logger,
    /** Every line written so far, as text. */
    text: () => lines.join(''),
    /** Every line written so far, parsed. */
    parsed: () => lines.map((line) => JSON.parse(line) as LogLine),
    clear: () => void lines.splice(0),
  };
}

/** Lets onResponse hooks (the "request completed" line) run after inject resolves. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

async function setup(t: Test, options: { sql?: Sql } = {}) {
  const log = memoryLogger();
  const built = await build(t, { loggerInstance: log.logger, ...options });
  return { ...built, log };
}

t.test('each failed authentication logs one warning whose reason is the error code', async (t) => {
  const { api, log } = await setup(t);
  const cases = [
    ['no Authorization header', undefined, 'NOT_AUTHENTICATED'],
    ['a Basic header', 'Basic YWxpY2U6c2VjcmV0', 'NOT_AUTHENTICATED'],
    ['a garbage token', 'Bearer abc', 'INVALID_TOKEN'],
    ['a token signed with another secret', `Bearer ${token('alice', { secret: 'x'.repeat(40) })}`, 'INVALID_TOKEN'],
    ['a token without a usable sub', `Bearer ${token('')}`, 'INVALID_TOKEN'],
    ['an expired token', `Bearer ${token('alice', { expiresIn: -60 })}`, 'TOKEN_EXPIRED'],
  ] as const;
  for (const [name, authorization, reason] of cases) {
    log.clear();
    const res = await api.get('/api/tasks', authorization === undefined ? {} : { headers: { authorization } });
    await settle();
    t.equal(res.statusCode, 401, `${name}: 401`);
    const lines = log.parsed();
    const warnings = lines.filter((line) => line.level === 40);
    t.equal(warnings.length, 1, `${name}: one warning`);
    t.equal(warnings[0]?.reason, reason, `${name}: reason ${reason}`);
    t.equal(warnings[0]?.msg, 'authentication failed', `${name}: message`);
    t.same(lines.filter((line) => line.level > 40), [], `${name}: nothing logged above warn`);
    const completed = lines.find((line) => line.msg === 'request completed');
    t.ok(completed, `${name}: the request was logged`);
    t.equal(warnings[0]?.reqId, completed?.reqId, `${name}: the warning carries the request's id`);
  }
});

t.test('a successful request logs no warning', async (t) => {
  const { api, log } = await setup(t);
  const res = await api.post('/api/tasks', { as: 'alice', payload: { title: 'x' } });
  t.equal(res.statusCode, 201);
  await settle();
  t.ok(log.parsed().some((line) => line.msg === 'request completed'), 'the request was logged');
  t.same(log.parsed().filter((line) => line.level >= 40), [], 'no warning or error');
});

t.test('a token never appears in the logs', async (t) => {
  const { api, log } = await setup(t);
  const valid = token('alice', { email: 'alice@example.com' });
  const requests: Array<[string, string]> = [
    ['a successful create', valid],
    ['a successful list', valid],
    ['an expired token', token('alice', { expiresIn: -60 })],
    ['a token signed with another secret', token('alice', { secret: 'y'.repeat(40) })],
    ['a token with an invalid sub', token('a'.repeat(256))],
    ['a garbage token', 'not-a-jwt-but-a-secret-looking-string'],
  ];
  for (const [name, bearer] of requests) {
    log.clear();
    const res = name === 'a successful create'
      ? await api.post('/api/tasks', { token: bearer, payload: { title: 'x' } })
      : await api.get('/api/tasks', { token: bearer });
    await settle();
    t.ok(res.statusCode === 200 || res.statusCode === 201 || res.statusCode === 401, `${name}: answered ${res.statusCode}`);
    const text = log.text();
    t.ok(text.includes('request completed'), `${name}: the request was logged`);
    t.notOk(text.includes(bearer), `${name}: the token is not logged`);
    t.notOk(text.includes(`Bearer ${bearer}`), `${name}: the header value is not logged`);
    const signature = bearer.split('.')[2];
    if (signature) t.notOk(text.includes(signature), `${name}: not even the signature is logged`);
  }
});

t.test('if request headers are ever logged, LOG_REDACT hides Authorization and Cookie', async (t) => {
  const log = memoryLogger();
  const secret = token('alice');
  const headersSent = { authorization: `Bearer ${secret}`, cookie: 'session=s3cr3t', accept: 'application/json' };
  log.logger.info({ req: { headers: headersSent } }, 'headers');
  const [line] = log.parsed();
  const headers = (line?.req as { headers?: Record<string, unknown> } | undefined)?.headers;
  t.equal(headers?.accept, 'application/json', 'other headers are kept');
  t.equal(headers?.authorization, '[Redacted]');
  t.equal(headers?.cookie, '[Redacted]');
  t.notOk(log.text().includes(secret));
  t.notOk(log.text().includes('s3cr3t'));
});

/** A pool whose task-list query throws a plain Error: a bug, as far as the app can tell. */
function sqlWithBrokenList(sql: Sql): Sql {
  return new Proxy(sql, {
    apply(target, thisArg, args: unknown[]) {
      const strings = args[0];
      if (Array.isArray(strings) && strings.join('?').includes('FROM tasks') && strings.join('?').includes('LIMIT')) {
        throw new Error('simulated bug: kaboom');
      }
      return Reflect.apply(target, thisArg, args);
    },
  });
}

t.test('a 500 is logged at error level with the cause, which the response does not disclose', async (t) => {
  const { url } = await freshSchema(t);
  const { api, log } = await setup(t, { sql: sqlWithBrokenList(createSql(url)) });
  const bearer = token('alice');
  t.equal((await api.post('/api/tasks', { token: bearer, payload: { title: 'x' } })).statusCode, 201, 'other queries still work');
  log.clear();

  const res = await api.get('/api/tasks', { token: bearer });
  await settle();
  t.equal(res.statusCode, 500);
  t.equal(res.json().error.code, 'INTERNAL_ERROR');
  t.notOk(res.body.includes('kaboom'), 'the response says nothing about the cause');

  const errors = log.parsed().filter((line) => line.level === 50);
  t.equal(errors.length, 1, 'one error line');
  t.equal(errors[0]?.msg, 'unhandled error');
  t.match(errors[0]?.err, { message: 'simulated bug: kaboom' }, 'with the error');
  t.type(errors[0]?.reqId, 'string', 'and the request id');
  t.notOk(log.text().includes(bearer), 'and not the token');
});

t.test('one line per request, at info, with what an operator filters on', async (t) => {
  const { api, log } = await setup(t);
  const res = await api.post('/api/tasks', { as: 'alice', payload: { title: 'x' }, headers: { 'x-request-id': 'req-1' } });
  await settle();
  t.equal(res.statusCode, 201);
  t.equal(log.parsed().filter((line) => line.msg === 'incoming request').length, 0, 'no "incoming request" line');
  t.equal(log.parsed().filter((line) => line.reqId === 'req-1').length, 1, 'one line for the request, and no other');
  const lines = log.parsed().filter((line) => line.msg === 'request completed');
  t.equal(lines.length, 1, 'one line for the request');
  t.match(lines[0], {
    level: 30,
    msg: 'request completed',
    reqId: 'req-1',
    method: 'POST',
    route: '/api/tasks',
    operationId: 'createTask',
    status: 201,
    userId: 'alice',
    taskId: res.json().id,
  });
  t.type(lines[0]?.durationMs, 'number', 'with its duration');
  t.notOk('req' in (lines[0] ?? {}) || 'res' in (lines[0] ?? {}), 'and not the request and response objects');

  log.clear();
  await api.get('/api/tasks/not-a-uuid', { as: 'bob' });
  await api.get('/no/such/route');
  await settle();
  const [invalid, unknown] = log.parsed().filter((line) => line.msg === 'request completed');
  t.match(invalid, { route: '/api/tasks/:id', operationId: 'getTask', status: 400, userId: 'bob', code: 'VALIDATION_ERROR' }, 'the route template, not the URL');
  t.match(unknown, { route: '/no/such/route', status: 404, code: 'NOT_FOUND' }, 'an unknown route: its path');
  t.equal(unknown?.userId, undefined);
});
