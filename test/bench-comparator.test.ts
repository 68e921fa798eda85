/**
 * The bench's minimal server (bench/minimal-server.ts) does the same work as the API: on
 * one database, it answers what the API answers (bodies, statuses, cursors) for every
 * request the bench sends. Otherwise the ratio would compare
 * different work.
 */
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { startServer } from '../bench/servers.ts';
import { build, SECRET, token } from './helper.ts';

t.test('the minimal server answers what the API answers', async (t) => {
  const { api, url } = await build(t);
  const logFile = join(tmpdir(), `todo-api-minimal-${process.pid}.log`);
  const minimal = await startServer({ target: 'minimal', databaseUrl: url, secretKey: SECRET, logFile });
  t.teardown(async () => {
    await minimal.stop();
    await rm(logFile, { force: true });
  });
  const send = async (method: string, path: string, user: string | null, body?: unknown) => {
    const res = await fetch(`${minimal.url}${path}`, {
      method,
      headers: {
        ...(user !== null && { authorization: `Bearer ${token(user, { email: `${user}@example.com` })}` }),
        'content-type': 'application/json',
      },
      ...(body !== undefined && { body: JSON.stringify(body) }),
    });
    return { status: res.status, body: (await res.json()) as any };
  };
  const asApi = (user: string) => ({ as: user });

  const created = await send('POST', '/api/tasks', 'alice', { title: 'from the minimal server' });
  t.equal(created.status, 201, 'create: 201');
  const viaApi = await api.get(`/api/tasks/${created.body.id}`, asApi('alice'));
  t.same(created.body, viaApi.json(), 'create: the same task the API reads back');

  for (let i = 0; i < 60; i++) await api.createTask('alice', `task ${i}`);
  const page = await send('GET', '/api/tasks?limit=50', 'alice');
  const apiPage = await api.get('/api/tasks?limit=50', asApi('alice'));
  t.equal(page.status, 200);
  t.same(page.body, apiPage.json(), 'list: the same page, cursor included');
  t.equal(page.body.items.length, 50);
  const next = await send('GET', `/api/tasks?limit=50&cursor=${page.body.next_cursor}`, 'alice');
  const apiNext = await api.get(`/api/tasks?limit=50&cursor=${page.body.next_cursor}`, asApi('alice'));
  t.same(next.body, apiNext.json(), 'list: the same second page from the same cursor');

  const got = await send('GET', `/api/tasks/${created.body.id}`, 'alice');
  t.same(got.body, (await api.get(`/api/tasks/${created.body.id}`, asApi('alice'))).json(), 'get: the same body');

  const patched = await send('PATCH', `/api/tasks/${created.body.id}`, 'alice', { status: 'completed' });
  t.equal(patched.status, 200, 'patch: 200');
  t.equal(patched.body.status, 'completed');
  t.same(patched.body, (await api.get(`/api/tasks/${created.body.id}`, asApi('alice'))).json(), 'patch: the stored task');

  t.equal((await send('GET', `/api/tasks/${created.body.id}`, 'bob')).status, 403, "another user's task: 403, as the API");
  t.equal((await send('PATCH', `/api/tasks/${created.body.id}`, 'bob', { status: 'pending' })).status, 403, 'and it is left untouched');
  t.equal((await api.get(`/api/tasks/${created.body.id}`, asApi('alice'))).json().status, 'completed');
  t.equal((await send('GET', '/api/tasks/00000000-0000-4000-8000-000000000000', 'alice')).status, 404, 'a missing task: 404');
  t.equal((await send('GET', '/api/tasks', null)).status, 401, 'no token: 401');
});
