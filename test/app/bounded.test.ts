import t from 'tap';
import { buildApp } from '../../src/app.ts';
import { createSql } from '../../src/db/client.ts';
import { contractProblems } from '../contract.ts';
import { build, freshSchema, ORIGIN, SECRET, token, type Test } from '../helper.ts';
import { memoryLogger, settle } from '../log-capture.ts';

const KIB16 = 16 * 1024;

async function setup(t: Test) {
  const log = memoryLogger();
  const built = await build(t, { loggerInstance: log.logger });
  return { ...built, log };
}

/** Distinct one- and two-character keys: as many unknown fields as fit in the 64 KiB body limit. */
function manyUnknownFields(max: number): { body: string; count: number } {
  const alphabet = [...Array(94)].map((_, i) => String.fromCharCode(33 + i)).filter((c) => c !== '"' && c !== '\\');
  const keys = [...alphabet, ...alphabet.flatMap((a) => alphabet.map((b) => a + b))];
  let body = '{"title":"x"';
  let count = 0;
  for (const key of keys) {
    const next = `,"${key}":0`;
    if (body.length + next.length + 1 > max) break;
    body += next;
    count++;
  }
  return { body: `${body}}`, count };
}

function checkLogLines(t: Test, lines: string[], what: string) {
  t.ok(lines.length > 0, `${what}: the request was logged`);
  const longest = Math.max(...lines.map((line) => Buffer.byteLength(line)));
  t.ok(longest <= KIB16, `${what}: the longest log line is ${longest} bytes, at most 16 KiB`);
}

t.test('a body full of unknown fields gets a small 400 and small log lines', async (t) => {
  const { api, log } = await setup(t);
  const { body, count } = manyUnknownFields(64 * 1024);
  t.ok(count > 8000, `${count} unknown fields in ${body.length} bytes`);
  const res = await api.post('/api/tasks', { as: 'alice', headers: { 'content-type': 'application/json' }, payload: body });
  await settle();
  t.equal(res.statusCode, 400);
  t.ok(Buffer.byteLength(res.body) <= KIB16, `the response is ${Buffer.byteLength(res.body)} bytes, at most 16 KiB`);
  const { error } = res.json();
  t.equal(error.code, 'VALIDATION_ERROR');
  t.equal(error.details.length, 20, 'details lists 20 failures');
  t.match(error.message, new RegExp(`has ${count} problems: details lists the first 20; ${count - 20} more were not listed`));
  checkLogLines(t, log.raw(), 'unknown fields');
  const rejected = log.parsed().find((line) => line.msg === 'request completed');
  t.match(rejected, { status: 400, code: 'VALIDATION_ERROR', problems: count, listed: 20 }, "the request's line has the code and the counts");
});

t.test('10,000 unknown query parameters get a small 400 and small log lines', async (t) => {
  const { app, log } = await setup(t);
  const query = [...Array(10_000)].map((_, i) => `p${i}=1`).join('&');
  // inject, as Node's HTTP parser would refuse a 90 KB URL (16 KiB of headers at most) with a 431.
  const res = await app.inject({ method: 'GET', url: `/api/tasks?${query}`, headers: { authorization: `Bearer ${token('alice')}` } });
  await settle();
  t.same(contractProblems({ method: 'GET', url: '/api/tasks', statusCode: res.statusCode, headers: res.headers, body: res.body }), []);
  t.equal(res.statusCode, 400);
  t.ok(Buffer.byteLength(res.body) <= KIB16, `the response is ${Buffer.byteLength(res.body)} bytes`);
  t.equal(res.json().error.details.length, 20);
  t.match(res.json().error.message, /has 10000 problems: details lists the first 20; 9980 more were not listed/);
  checkLogLines(t, log.raw(), 'unknown query parameters');
});

t.test('a field name as long as the body allows is cut in the response', async (t) => {
  const { api, log } = await setup(t);
  const name = 'k'.repeat(60_000);
  const res = await api.post('/api/tasks', { as: 'alice', payload: { title: 'x', [name]: 1 } });
  await settle();
  t.equal(res.statusCode, 400);
  t.ok(Buffer.byteLength(res.body) <= KIB16, `the response is ${Buffer.byteLength(res.body)} bytes`);
  const [detail] = res.json().error.details;
  t.equal(detail.field, `${'k'.repeat(100)}…`, 'the name is cut to 100 characters');
  checkLogLines(t, log.raw(), 'long field name');
});

t.test('a very long URL gets a small 404 and small log lines', async (t) => {
  const { app, log } = await setup(t);
  const res = await app.inject({ method: 'GET', url: `/${'x'.repeat(100_000)}?${'q'.repeat(50_000)}` });
  await settle();
  t.equal(res.statusCode, 404);
  t.ok(Buffer.byteLength(res.body) <= KIB16, `the response is ${Buffer.byteLength(res.body)} bytes`);
  checkLogLines(t, log.raw(), 'long URL');
  const line = log.parsed().find((l) => l.msg === 'request completed');
  t.match(line?.route, /^\/x{1023}…\(100001 characters\)$/, 'the logged path is cut');
});

t.test('a long URL logged through the request serializer is cut', async (t) => {
  const { url } = await freshSchema(t);
  const log = memoryLogger();
  const sql = createSql(url);
  const app = await buildApp({ sql, secretKey: SECRET, corsOrigins: [ORIGIN], loggerInstance: log.logger });
  t.teardown(() => app.close());
  app.get('/log-req/*', async (request) => {
    request.log.info({ req: request }, 'with the request');
    return {};
  });
  await app.ready();
  await app.inject({ method: 'GET', url: `/log-req/${'y'.repeat(100_000)}` });
  await settle();
  const line = log.parsed().find((l) => l.msg === 'with the request');
  const req = line?.req as { url?: string } | undefined;
  t.ok(req?.url !== undefined && req.url.length < 1100, `the serialized URL is ${req?.url?.length} characters`);
  t.match(req?.url, /…\(100009 characters\)$/);
});

t.test("a token header's long alg or kid does not make a long log line", async (t) => {
  const { api, log } = await setup(t);
  const b64 = (v: object) => Buffer.from(JSON.stringify(v)).toString('base64url');
  for (const header of [{ alg: 'A'.repeat(12_000) }, { alg: 'EdDSA', kid: 'k'.repeat(12_000) }]) {
    log.clear();
    const res = await api.get('/api/tasks', { token: `${b64(header)}.${b64({ sub: 'a', exp: 9e9 })}.c2ln` });
    await settle();
    t.equal(res.statusCode, 401);
    t.ok(Buffer.byteLength(res.body) < 1024, 'a short response');
    checkLogLines(t, log.raw(), 'long token header');
    t.ok(Math.max(...log.raw().map((l) => l.length)) < 2048, 'every line is short');
  }
});
