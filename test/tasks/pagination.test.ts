import t from 'tap';
import { build, type Api } from '../helper.ts';

type Page = { items: Array<{ id: string; status: string; created_at: string }>; next_cursor: string | null };

async function allPages(api: Api, user: string, query: string): Promise<{ pages: Page[]; ids: string[] }> {
  const pages: Page[] = [];
  let cursor: string | null = null;
  do {
    const sep = query ? '&' : '';
    const url: string = `/api/tasks?${query}${cursor ? `${sep}cursor=${encodeURIComponent(cursor)}` : ''}`;
    const res = await api.get(url, { as: user });
    if (res.statusCode !== 200) throw new Error(`${url} -> ${res.statusCode} ${res.body}`);
    const page: Page = res.json();
    pages.push(page);
    cursor = page.next_cursor;
  } while (cursor !== null && pages.length < 100);
  return { pages, ids: pages.flatMap((p) => p.items.map((i) => i.id)) };
}

t.test('pages cover every task once, newest first', async (t) => {
  const { api } = await build(t);
  const created: string[] = [];
  for (let i = 0; i < 7; i++) created.push((await api.createTask('alice', `task ${i}`)).id);
  await api.createTask('bob', 'not alice\'s');

  const { pages, ids } = await allPages(api, 'alice', 'limit=3');
  t.same(pages.map((p) => p.items.length), [3, 3, 1]);
  t.equal(pages.at(-1)?.next_cursor, null, 'the last page has no next_cursor');
  t.same(ids, created.reverse(), 'all of them, newest first, no repeats');
});

t.test('an exact multiple of the limit ends with next_cursor null, not an empty page', async (t) => {
  const { api } = await build(t);
  for (let i = 0; i < 4; i++) await api.createTask('alice', `t${i}`);
  const { pages } = await allPages(api, 'alice', 'limit=2');
  t.same(pages.map((p) => p.items.length), [2, 2]);
});

t.test('paging with a status filter', async (t) => {
  const { api } = await build(t);
  const done: string[] = [];
  for (let i = 0; i < 9; i++) {
    const task = await api.createTask('alice', `task ${i}`);
    if (i % 3 !== 0) {
      await api.patch(`/api/tasks/${task.id}`, { as: 'alice', payload: { status: 'completed' } });
      done.push(task.id);
    }
  }
  const completed = await allPages(api, 'alice', 'status=completed&limit=4');
  t.same(completed.pages.map((p) => p.items.length), [4, 2]);
  t.same(completed.ids, [...done].reverse());
  t.ok(completed.pages.every((p) => p.items.every((i) => i.status === 'completed')));

  const pending = await allPages(api, 'alice', 'status=pending&limit=2');
  t.equal(pending.ids.length, 3);
  t.ok(pending.pages.every((p) => p.items.every((i) => i.status === 'pending')));
});

t.test('tasks created in the same millisecond are neither skipped nor repeated', async (t) => {
  const { api, sql } = await build(t);
  await api.createTask('alice', 'makes the user');
  await sql`
    INSERT INTO tasks (user_id, title, created_at, updated_at, position)
    SELECT 'alice', 'tie ' || g, '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z', todo_key_for_index(g)
    FROM generate_series(1, 10) AS g`;
  const expected = (await sql`SELECT id FROM tasks WHERE user_id = 'alice' ORDER BY created_at DESC, id DESC`).map((r) => r.id as string);
  const { ids } = await allPages(api, 'alice', 'limit=3');
  t.same(ids, expected);
});

t.test('limit defaults to 50 and allows 100', async (t) => {
  const { api, sql } = await build(t);
  await api.createTask('alice', 'first');
  await sql`
    INSERT INTO tasks (user_id, title, created_at, position)
    SELECT 'alice', 'bulk ' || g, now() - g * interval '1 second', todo_key_for_index(g) FROM generate_series(1, 119) AS g`;
  const first = (await api.get('/api/tasks', { as: 'alice' })).json();
  t.equal(first.items.length, 50);
  t.type(first.next_cursor, 'string');
  const big = (await api.get('/api/tasks?limit=100', { as: 'alice' })).json();
  t.equal(big.items.length, 100);
  const { ids } = await allPages(api, 'alice', 'limit=100');
  t.equal(ids.length, 120);
  t.equal(new Set(ids).size, 120);
});

t.test('a cursor reveals nothing usable and cannot be forged', async (t) => {
  const { api } = await build(t);
  for (let i = 0; i < 3; i++) await api.createTask('alice', `t${i}`);
  const page = (await api.get('/api/tasks?limit=1', { as: 'alice' })).json();
  t.match(page.next_cursor, /^[A-Za-z0-9_-]+$/, 'URL-safe');
  const tampered = `${page.next_cursor.slice(0, -2)}${page.next_cursor.endsWith('A') ? 'B' : 'A'}A`;
  const res = await api.get(`/api/tasks?cursor=${tampered}`, { as: 'alice' });
  t.equal(res.statusCode, 400);
  t.same(res.json().error.details.map((d: { field: string }) => d.field), ['cursor']);

  const bobs = (await api.get(`/api/tasks?cursor=${page.next_cursor}`, { as: 'bob' })).json();
  t.same(bobs.items, [], 'another user\'s cursor shows only the caller\'s own tasks');
});
