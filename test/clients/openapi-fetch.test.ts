/**
 * The path a frontend team takes: a client generated from openapi.yaml
 * (openapi-typescript types + openapi-fetch) over real HTTP. It type-checks in
 * CI, so a breaking change to the contract breaks this file's build.
 */
import createClient, { type Middleware } from 'openapi-fetch';
import t from 'tap';
import type { components, paths } from '../../src/generated/openapi.ts';
import { contractProblems } from '../contract.ts';
import { build, token, type Test } from '../helper.ts';

type Task = components['schemas']['Task'];

async function client(t: Test, user: string) {
  const { app } = await build(t);
  const base = await app.listen({ port: 0, host: '127.0.0.1' });
  const api = createClient<paths>({ baseUrl: base, headers: { Authorization: `Bearer ${token(user)}` } });
  // Every response this client receives is also checked against the contract.
  const conformance: Middleware = {
    async onResponse({ request, response }) {
      const body = await response.clone().text();
      const problems = contractProblems({
        method: request.method,
        url: new URL(request.url).pathname + new URL(request.url).search,
        statusCode: response.status,
        headers: Object.fromEntries(response.headers),
        body,
      });
      t.same(problems, [], `${request.method} ${new URL(request.url).pathname} -> ${response.status} conforms`);
    },
  };
  api.use(conformance);
  return { api, base };
}

t.test('the full task flow through the generated client', async (t) => {
  const { api, base } = await client(t, 'fetch-user');

  const created: Task[] = [];
  for (const title of ['first', 'second', 'third']) {
    const { data, response } = await api.POST('/api/tasks', { body: { title } });
    t.equal(response.status, 201);
    t.equal(response.headers.get('location'), `/api/tasks/${data?.id}`);
    if (data) created.push(data);
  }
  t.equal(created.length, 3);
  const [first, second, third] = created as [Task, Task, Task];

  const page1 = await api.GET('/api/tasks', { params: { query: { limit: 2 } } });
  t.same(page1.data?.items.map((x) => x.id), [third.id, second.id]);
  const cursor = page1.data?.next_cursor;
  t.type(cursor, 'string');
  const page2 = await api.GET('/api/tasks', { params: { query: { limit: 2, cursor: cursor ?? '' } } });
  t.same(page2.data?.items.map((x) => x.id), [first.id]);
  t.equal(page2.data?.next_cursor, null);

  const got = await api.GET('/api/tasks/{id}', { params: { path: { id: first.id } } });
  t.same(got.data, first);

  const put = await api.PUT('/api/tasks/{id}', { params: { path: { id: first.id } }, body: { title: 'renamed' } });
  t.equal(put.data?.title, 'renamed');

  const patched = await api.PATCH('/api/tasks/{id}', { params: { path: { id: second.id } }, body: { status: 'completed' } });
  t.equal(patched.data?.status, 'completed');

  const filtered = await api.GET('/api/tasks', { params: { query: { status: 'completed' } } });
  t.same(filtered.data?.items.map((x) => x.id), [second.id]);

  const deleted = await api.DELETE('/api/tasks/{id}', { params: { path: { id: third.id } } });
  t.equal(deleted.response.status, 204);

  const missing = await api.GET('/api/tasks/{id}', { params: { path: { id: third.id } } });
  t.equal(missing.response.status, 404);
  t.equal(missing.error?.error.code, 'NOT_FOUND');

  const invalid = await api.POST('/api/tasks', { body: { title: '' } });
  t.equal(invalid.response.status, 400);
  t.equal(invalid.error?.error.code, 'VALIDATION_ERROR');
  t.same(invalid.error?.error.details?.map((d) => d.field), ['title']);

  const other = createClient<paths>({ baseUrl: base, headers: { Authorization: `Bearer ${token('someone-else')}` } });
  const forbidden = await other.PATCH('/api/tasks/{id}', { params: { path: { id: first.id } }, body: { status: 'completed' } });
  t.equal(forbidden.response.status, 403);
  t.equal(forbidden.error?.error.code, 'FORBIDDEN');

  const anonymous = createClient<paths>({ baseUrl: base });
  const unauthorized = await anonymous.GET('/api/tasks');
  t.equal(unauthorized.response.status, 401);
  t.equal(unauthorized.error?.error.code, 'NOT_AUTHENTICATED');
  t.match(unauthorized.response.headers.get('www-authenticate'), /^Bearer /);

  const health = await anonymous.GET('/health');
  t.same(health.data, { status: 'ok', database: 'ok' });
});
