/**
 * `npm run mock` (Stoplight Prism on openapi.yaml alone): started as a frontend
 * developer would, with no database. Every operation of the contract answers with
 * its documented example, valid against the contract; error examples are reachable
 * with Prism's `Prefer` header, and a missing token is the contract's 401. Every
 * documented request example (bodies and query parameters) passes the mock's request
 * validation, and 1.2.0's move, counts with today and ID_CONFLICT are served.
 */
import { spawn } from 'node:child_process';
import t from 'tap';
import { freePort } from '../../src/dev/embedded.ts';
import { HTTP_METHODS, operationAt } from '../../src/contract/spec.ts';
import { contractProblems, spec } from '../contract.ts';
import { build, token } from '../helper.ts';
import { fileURLToPath } from 'node:url';

type Any = Record<string, any>;
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

const deref = (v: any): any => {
  const ref = v?.$ref as string | undefined;
  if (!ref) return v;
  return deref(ref.slice(2).split('/').reduce((node: any, key) => node?.[key], spec));
};

/** A value the contract documents for a parameter: its example, else its schema's. */
function exampleFor(parameter: Any): string {
  const p = deref(parameter);
  const schema = deref(p.schema) ?? {};
  const value = p.example ?? schema.examples?.[0] ?? schema.default ?? schema.enum?.[0] ?? 'x';
  return String(value);
}

/** Every operation with a request the contract documents: path, required query parameters and body from its examples. */
const requests = Object.keys(spec.paths).flatMap((template) =>
  HTTP_METHODS.flatMap((method) => {
    const op = operationAt(spec, template, method) as Any | undefined;
    if (!op) return [];
    const params = [...((spec.paths[template] as Any).parameters ?? []), ...(op.parameters ?? [])].map(deref);
    let path = template;
    const query = new URLSearchParams();
    for (const p of params) {
      if (p.in === 'path') path = path.replace(`{${p.name}}`, encodeURIComponent(exampleFor(p)));
      if (p.in === 'query' && p.required) query.set(p.name, exampleFor(p));
    }
    const media = deref(op.requestBody)?.content?.['application/json'];
    const bodyExample = media ? deref(Object.values<Any>(media.examples ?? {})[0])?.value ?? media.example : undefined;
    const url = query.size > 0 ? `${path}?${query}` : path;
    return [{ operationId: op.operationId as string, method: method.toUpperCase(), url, body: bodyExample, op }];
  }),
);

/** Every example of an operation's request body: the media type's named ones, then its schema's. */
function requestExamples(op: Any): unknown[] {
  const media = deref(op.requestBody)?.content?.['application/json'];
  if (!media) return [];
  return [...Object.values<Any>(media.examples ?? {}).map((e) => deref(e).value), ...(deref(media.schema)?.examples ?? [])];
}

/** The documented value of every optional query parameter that has one. */
function optionalQuery(template: string, op: Any): URLSearchParams {
  const query = new URLSearchParams();
  for (const p of [...((spec.paths[template] as Any).parameters ?? []), ...(op.parameters ?? [])].map(deref)) {
    const schema = deref(p.schema) ?? {};
    const value = p.example ?? schema.examples?.[0];
    if (p.in === 'query' && !p.required && value !== undefined) query.set(p.name, String(value));
  }
  return query;
}

/** The first 2xx response and the examples the contract documents for it (the media type's, then its schema's). */
function success(op: Any): { status: number; examples: unknown[] } {
  const [status, response] = Object.entries<Any>(op.responses).find(([s]) => s.startsWith('2')) ?? ['204', {}];
  const media = deref(response)?.content?.['application/json'];
  const examples = [...Object.values<Any>(media?.examples ?? {}).map((e) => deref(e).value), ...(deref(media?.schema)?.examples ?? [])];
  return { status: Number(status), examples };
}

const operationsByPath = Object.keys(spec.paths).flatMap((template) =>
  HTTP_METHODS.flatMap((method) => {
    const op = operationAt(spec, template, method) as Any | undefined;
    return op ? [{ template, op }] : [];
  }),
);

const port = await freePort();
const base = `http://127.0.0.1:${port}`;
const mock = spawn(process.execPath, ['--import', 'tsx', 'scripts/mock.ts', '--port', String(port)], {
  cwd: ROOT,
  // No DATABASE_URL, no secret: the mock needs neither.
  env: { PATH: process.env.PATH, HOME: process.env.HOME, NO_COLOR: '1' },
  stdio: ['ignore', 'pipe', 'pipe'],
});
let output = '';
mock.stdout.on('data', (d: Buffer) => (output += d.toString()));
mock.stderr.on('data', (d: Buffer) => (output += d.toString()));
const exited = new Promise<void>((resolve) => mock.on('exit', () => resolve()));
t.teardown(async () => {
  mock.kill('SIGTERM');
  await exited;
});

await new Promise<void>((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error(`the mock did not start within 60 s:\n${output}`)), 60_000);
  const check = setInterval(() => {
    if (output.includes(`Prism is listening on ${base}`)) {
      clearInterval(check);
      clearTimeout(timer);
      resolve();
    }
  }, 100);
  mock.on('exit', (code) => reject(new Error(`the mock exited with ${code}:\n${output}`)));
});

async function send(method: string, url: string, headers: Record<string, string>, body?: unknown) {
  const res = await fetch(base + url, {
    method,
    headers: { ...(body !== undefined && { 'content-type': 'application/json' }), ...headers },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  const received = { method, url, statusCode: res.status, headers: Object.fromEntries(res.headers), body: text };
  return { ...received, problems: contractProblems(received) };
}

t.test('every operation answers with its documented example, valid against the contract', async (t) => {
  t.ok(requests.length >= 7, `${requests.length} operations`);
  for (const { operationId, method, url, body, op } of requests) {
    const res = await send(method, url, { authorization: 'Bearer anything-goes' }, body);
    const expected = success(op);
    t.equal(res.statusCode, expected.status, `${operationId}: ${method} ${url} -> ${res.statusCode}`);
    t.same(res.problems, [], `${operationId}: the response conforms to openapi.yaml`);
    if (expected.examples.length > 0) {
      const body = JSON.parse(res.body) as unknown;
      // Prism takes the schema's examples before the media type's on OpenAPI 3.1: either is documented.
      t.ok(expected.examples.some((e) => JSON.stringify(e) === JSON.stringify(body)), `${operationId}: one of its documented examples`);
    }
  }
});

t.test('error examples: Prefer code= and example=, and a missing token', async (t) => {
  const id = '6f1c2a9e-3b4d-4e5f-8a9b-0c1d2e3f4a5b';
  const notFound = await send('GET', `/api/tasks/${id}`, { authorization: 'Bearer x', prefer: 'code=404' });
  t.equal(notFound.statusCode, 404);
  t.same(notFound.problems, [], '404 conforms');
  t.equal(JSON.parse(notFound.body).error.code, 'NOT_FOUND');

  const expired = await send('GET', '/api/tasks', { authorization: 'Bearer x', prefer: 'code=401, example=expired' });
  t.equal(expired.statusCode, 401);
  t.same(expired.problems, [], '401 conforms (with WWW-Authenticate)');
  t.equal(JSON.parse(expired.body).error.code, 'TOKEN_EXPIRED');

  const invalid = await send('POST', '/api/tasks', { authorization: 'Bearer x', prefer: 'code=400, example=validation' }, { title: 'x' });
  t.equal(invalid.statusCode, 400);
  t.same(invalid.problems, [], '400 conforms');
  t.equal(JSON.parse(invalid.body).error.code, 'VALIDATION_ERROR');

  const anonymous = await send('GET', '/api/tasks', {});
  t.equal(anonymous.statusCode, 401, 'no token: 401');
  t.same(anonymous.problems, [], 'the 401 conforms');
});

t.test('every documented request example, body and query, passes the mock\'s request validation', async (t) => {
  for (const { operationId, method, url, body, op } of requests) {
    for (const example of requestExamples(op)) {
      const res = await send(method, url, { authorization: 'Bearer x' }, example);
      t.ok(res.statusCode < 300, `${operationId}: body ${JSON.stringify(example)} -> ${res.statusCode}`);
    }
    const template = operationsByPath.find((o) => o.op === op)!.template;
    const query = optionalQuery(template, op);
    if (query.size === 0) continue;
    const withQuery = `${url}${url.includes('?') ? '&' : '?'}${query}`;
    const res = await send(method, withQuery, { authorization: 'Bearer x' }, body);
    t.ok(res.statusCode < 300, `${operationId}: ${method} ${withQuery} -> ${res.statusCode}`);
    t.same(res.problems, [], `${operationId}: with every documented query parameter, the response conforms`);
  }
});

t.test('1.2.0: move, counts with today, ID_CONFLICT, and a move to two places is refused', async (t) => {
  const id = '6f1c2a9e-3b4d-4e5f-8a9b-0c1d2e3f4a5b';
  const auth = { authorization: 'Bearer x' };
  const moved = await send('POST', `/api/tasks/${id}/move`, auth, { to: 'top' });
  t.equal(moved.statusCode, 200);
  t.same(moved.problems, [], 'the moved task conforms (ETag included)');
  t.match(JSON.parse(moved.body), { id, notes: String, due_date: null, completed_at: null, position: /^[0-9A-Za-z]+$/ }, 'a task with the 1.2.0 fields');

  const counts = await send('GET', '/api/tasks/counts?today=2026-01-07', { ...auth, prefer: 'example=withToday' });
  t.equal(counts.statusCode, 200);
  t.same(counts.problems, []);
  t.same(JSON.parse(counts.body), { pending: 3, completed: 2, total: 5, overdue: 1, due_today: 1 }, 'Prefer: example=withToday');

  const conflict = await send('POST', '/api/tasks', { ...auth, prefer: 'code=409, example=idConflict' }, { id, title: 'Buy milk' });
  t.equal(conflict.statusCode, 409);
  t.same(conflict.problems, [], '409 conforms');
  t.equal(JSON.parse(conflict.body).error.code, 'ID_CONFLICT');

  const twoPlaces = await send('POST', `/api/tasks/${id}/move`, auth, { before: '0b9d8c7a-6e5f-4a3b-9c2d-1e0f9a8b7c6d', to: 'top' });
  t.equal(twoPlaces.statusCode, 400, 'exactly one of before, after, to: the mock validates it too');
  t.same(twoPlaces.problems, [], 'the 400 conforms');
});

t.test('the mock refuses invalid requests with the status and code the server gives', async (t) => {
  const server = await build(t);
  const id = '6f1c2a9e-3b4d-4e5f-8a9b-0c1d2e3f4a5b';
  const json = { 'content-type': 'application/json' };
  const cases: Array<[string, string, string, Record<string, string>, string | undefined]> = [
    ['no token', 'GET', '/api/tasks', {}, undefined],
    ['an empty title', 'POST', '/api/tasks', json, '{"title":""}'],
    ['a field that is not allowed', 'POST', '/api/tasks', json, '{"title":"x","user_id":"bob"}'],
    ['a title that is not a string', 'POST', '/api/tasks', json, '{"title":5}'],
    ['a limit over the maximum', 'GET', '/api/tasks?limit=500', {}, undefined],
    ['an unknown query parameter', 'GET', '/api/tasks?stauts=pending', {}, undefined],
    ['an impossible status filter', 'GET', '/api/tasks?status=done', {}, undefined],
    ['an id that is not a UUID', 'GET', '/api/tasks/nope', {}, undefined],
    ['an empty PATCH', 'PATCH', `/api/tasks/${id}`, json, '{}'],
    ['a move to two places', 'POST', `/api/tasks/${id}/move`, json, `{"to":"top","before":"${id}"}`],
    ['a body that is not JSON', 'POST', '/api/tasks', { 'content-type': 'text/plain' }, 'x'],
    ['an unknown route', 'GET', '/nowhere', {}, undefined],
    ['a method the path does not have', 'PUT', '/api/tasks', {}, undefined],
  ];
  for (const [name, method, url, headers, body] of cases) {
    const withToken = name === 'no token' ? headers : { ...headers, authorization: `Bearer ${token('alice')}` };
    const real = await server.app.inject({ method: method as 'GET', url, headers: withToken, ...(body !== undefined && { payload: body }) });
    const mocked = await fetch(base + url, { method, headers: withToken, ...(body !== undefined && { body }) });
    const text = await mocked.text();
    const mockedBody = JSON.parse(text) as { error?: { code?: string } };
    t.same(contractProblems({ method, url, statusCode: mocked.status, headers: Object.fromEntries(mocked.headers), body: text }), [], `${name}: the mock's answer conforms`);
    t.same(
      [mocked.status, mockedBody.error?.code],
      [real.statusCode, real.json().error?.code],
      `${name}: the mock answers ${mocked.status} ${mockedBody.error?.code}, as the server does`,
    );
    if (real.statusCode === 405) t.equal(mocked.headers.get('allow'), real.headers.allow, `${name}: the same Allow`);
    // The mock builds these answers with the server's own constructors (src/errors.ts): the same words.
    if (real.statusCode !== 400) t.equal((mockedBody.error as { message?: string }).message, real.json().error.message, `${name}: the same message`);
    if (real.statusCode === 401) t.equal(mocked.headers.get('www-authenticate'), real.headers['www-authenticate'], `${name}: the same challenge`);
  }
});
