/**
 * GET /api/tasks in contract 1.2: sort (created, position, due, updated), the due-date
 * filters, the literal search q, keyset paging that is exact for every sort, cursors that
 * belong to their query, the 400s for bad parameters, and the dated counts.
 */
import t from 'tap';
import { createSql } from '../../src/db/client.ts';
import { build, freshSchema, type Api, type Test } from '../helper.ts';

interface Task {
  id: string;
  title: string;
  status: string;
  created_at: string;
  updated_at: string;
  notes: string;
  due_date: string | null;
  completed_at: string | null;
  position: string;
}
interface Page {
  items: Task[];
  next_cursor: string | null;
}
type Sort = 'created' | 'position' | 'due' | 'updated';
const SORTS: Sort[] = ['created', 'position', 'due', 'updated'];

async function add(api: Api, user: string, title: string, fields: { notes?: string; due_date?: string | null } = {}): Promise<Task> {
  const res = await api.post('/api/tasks', { as: user, payload: { title, ...fields } });
  if (res.statusCode !== 201) throw new Error(`create ${title}: ${res.statusCode} ${res.body}`);
  return res.json();
}

/** One page of up to 100 tasks for `query` (a query string without limit). */
async function page(api: Api, user: string, query: string): Promise<Page> {
  const url = `/api/tasks?${query}${query ? '&' : ''}limit=100`;
  const res = await api.get(url, { as: user });
  if (res.statusCode !== 200) throw new Error(`${url}: ${res.statusCode} ${res.body}`);
  return res.json();
}

const titles = async (api: Api, user: string, query: string) => (await page(api, user, query)).items.map((x) => x.title);

/** Every page of `query` with this page size, following next_cursor to the end. */
async function walk(api: Api, user: string, query: string, limit: number): Promise<Page[]> {
  const pages: Page[] = [];
  let cursor: string | null = null;
  do {
    const url: string = `/api/tasks?${query}${query ? '&' : ''}limit=${limit}${cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`}`;
    const res = await api.get(url, { as: user });
    if (res.statusCode !== 200) throw new Error(`${url}: ${res.statusCode} ${res.body}`);
    const next: Page = res.json();
    pages.push(next);
    cursor = next.next_cursor;
  } while (cursor !== null && pages.length < 200);
  return pages;
}

async function move(api: Api, user: string, id: string, to: object): Promise<void> {
  const res = await api.post(`/api/tasks/${id}/move`, { as: user, payload: to });
  if (res.statusCode !== 200) throw new Error(`move: ${res.statusCode} ${res.body}`);
}

async function patch(api: Api, user: string, id: string, payload: object): Promise<Task> {
  const res = await api.patch(`/api/tasks/${id}`, { as: user, payload });
  if (res.statusCode !== 200) throw new Error(`patch: ${res.statusCode} ${res.body}`);
  return res.json();
}

/** Byte-string order (what the contract says positions compare by; never a locale's). */
const bytes = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));
const newer = (a: string, b: string) => Date.parse(b) - Date.parse(a);
const idDesc = (a: Task, b: Task) => bytes(b.id, a.id);

/** Each sort's order, written out from the contract, to check the server's against. */
const ORDER: Record<Sort, (a: Task, b: Task) => number> = {
  created: (a, b) => newer(a.created_at, b.created_at) || idDesc(a, b),
  position: (a, b) => bytes(a.position, b.position),
  due: (a, b) =>
    (a.due_date === b.due_date ? 0 : a.due_date === null ? 1 : b.due_date === null ? -1 : a.due_date < b.due_date ? -1 : 1) ||
    newer(a.created_at, b.created_at) ||
    idDesc(a, b),
  updated: (a, b) => newer(a.updated_at, b.updated_at) || idDesc(a, b),
};

/** A 400 VALIDATION_ERROR whose first detail names this query parameter. */
function badQuery(t: Test, res: { statusCode: number; json: () => any }, field: string, name: string): void {
  t.equal(res.statusCode, 400, `${name}: 400`);
  const { error } = res.json();
  t.equal(error?.code, 'VALIDATION_ERROR', `${name}: VALIDATION_ERROR`);
  t.match(error?.details?.[0], { in: 'query', field }, `${name}: details[0] is ${field} in the query`);
}

t.test('without parameters the list is still newest first, the same as sort=created', async (t) => {
  const { api } = await build(t);
  for (const title of ['a', 'b', 'c']) await add(api, 'alice', title);
  t.same(await titles(api, 'alice', ''), ['c', 'b', 'a']);
  t.same(await titles(api, 'alice', 'sort=created'), ['c', 'b', 'a']);
});

t.test('sort=position is the manual order: new tasks on top, moves change it, positions ascend as bytes', async (t) => {
  const { api } = await build(t);
  const a = await add(api, 'alice', 'a');
  const b = await add(api, 'alice', 'b');
  const c = await add(api, 'alice', 'c');
  t.same(await titles(api, 'alice', 'sort=position'), ['c', 'b', 'a'], 'with no moves: newest first');

  await move(api, 'alice', c.id, { to: 'bottom' });
  t.same(await titles(api, 'alice', 'sort=position'), ['b', 'a', 'c'], 'c to the bottom');
  await move(api, 'alice', a.id, { before: b.id });
  t.same(await titles(api, 'alice', 'sort=position'), ['a', 'b', 'c'], 'a before b');
  await move(api, 'alice', b.id, { after: c.id });
  t.same(await titles(api, 'alice', 'sort=position'), ['a', 'c', 'b'], 'b after c');
  await add(api, 'alice', 'd');
  const listed = await page(api, 'alice', 'sort=position');
  t.same(
    listed.items.map((x) => x.title),
    ['d', 'a', 'c', 'b'],
    'a new task goes to the top after moves too',
  );
  const positions = listed.items.map((x) => x.position);
  t.ok(
    positions.every((p, i) => i === 0 || bytes(positions[i - 1] as string, p) < 0),
    `positions strictly ascend as byte strings: ${positions.join(' ')}`,
  );
  t.same(await titles(api, 'alice', ''), ['d', 'c', 'b', 'a'], 'the default order ignores moves');
});

t.test('sort=due: earliest due date first, tasks without one last, ties newest first', async (t) => {
  const { api } = await build(t);
  await add(api, 'alice', 'march, older', { due_date: '2026-03-01' });
  await add(api, 'alice', 'none, older');
  await add(api, 'alice', 'january', { due_date: '2026-01-15' });
  await add(api, 'alice', 'march, newer', { due_date: '2026-03-01' });
  await add(api, 'alice', 'none, newer', { due_date: null });
  await add(api, 'alice', 'last year', { due_date: '2025-12-31' });
  t.same(await titles(api, 'alice', 'sort=due'), ['last year', 'january', 'march, newer', 'march, older', 'none, newer', 'none, older']);
});

t.test('sort=updated: the most recently changed first', async (t) => {
  const { api } = await build(t);
  const a = await add(api, 'alice', 'a');
  const b = await add(api, 'alice', 'b');
  await add(api, 'alice', 'c');
  t.same(await titles(api, 'alice', 'sort=updated'), ['c', 'b', 'a'], 'unchanged tasks: newest first');
  await patch(api, 'alice', a.id, { notes: 'changed' });
  t.same(await titles(api, 'alice', 'sort=updated'), ['a', 'c', 'b']);
  await patch(api, 'alice', b.id, { status: 'completed' });
  t.same(await titles(api, 'alice', 'sort=updated'), ['b', 'a', 'c']);
  t.same(await titles(api, 'alice', 'sort=created'), ['c', 'b', 'a'], 'the default order ignores changes');
});

t.test('due_before and due_after are inclusive; tasks without a due date never match them', async (t) => {
  const { api } = await build(t);
  for (const due of ['2026-01-01', '2026-01-10', '2026-01-20', '2026-01-31']) await add(api, 'alice', due, { due_date: due });
  await add(api, 'alice', 'none');
  const sorted = async (query: string) => (await titles(api, 'alice', query)).sort();
  t.same(await sorted('due_after=2026-01-10&due_before=2026-01-20'), ['2026-01-10', '2026-01-20'], 'both bounds included');
  t.same(await sorted('due_before=2026-01-10'), ['2026-01-01', '2026-01-10']);
  t.same(await sorted('due_after=2026-01-20'), ['2026-01-20', '2026-01-31']);
  t.same(await sorted('due_after=2026-01-10&due_before=2026-01-10'), ['2026-01-10'], 'one day');
  t.same(await sorted('due_after=2026-01-21&due_before=2026-01-19'), [], 'an empty range');
  t.same(await sorted('due_before=2999-12-31'), ['2026-01-01', '2026-01-10', '2026-01-20', '2026-01-31'], 'no bound lets a task without a date in');
  t.same(await sorted('due_after=1970-01-01'), ['2026-01-01', '2026-01-10', '2026-01-20', '2026-01-31']);
  t.same(await sorted('due_before=2024-02-29'), [], 'a leap day is a valid bound');
});

t.test('has_due=true lists only tasks with a due date, has_due=false only those without', async (t) => {
  const { api } = await build(t);
  await add(api, 'alice', 'dated', { due_date: '2026-01-07' });
  await add(api, 'alice', 'undated');
  await add(api, 'alice', 'undated too', { due_date: null });
  t.same(await titles(api, 'alice', 'has_due=true'), ['dated']);
  t.same(await titles(api, 'alice', 'has_due=false'), ['undated too', 'undated']);
  t.same(await titles(api, 'alice', 'has_due=false&due_before=2030-01-01'), [], 'no task is both');
});

t.test('status, due filters, q and sort combine: every filter must hold', async (t) => {
  const { api } = await build(t);
  await add(api, 'alice', 'milk 1', { due_date: '2026-01-05' });
  const milk2 = await add(api, 'alice', 'milk 2', { due_date: '2026-01-10' });
  await add(api, 'alice', 'milk 3');
  await add(api, 'alice', 'bread', { due_date: '2026-01-06' });
  await add(api, 'alice', 'milk 4', { due_date: '2026-01-20' });
  await add(api, 'bob', 'milk of bob', { due_date: '2026-01-05' });
  await patch(api, 'alice', milk2.id, { status: 'completed' });

  t.same(await titles(api, 'alice', 'status=pending&q=milk&due_before=2026-01-31&sort=due'), ['milk 1', 'milk 4']);
  t.same(await titles(api, 'alice', 'has_due=false&q=MILK'), ['milk 3']);
  t.same(await titles(api, 'alice', 'status=completed&has_due=true&sort=position'), ['milk 2']);
  t.same(await titles(api, 'alice', 'due_after=2026-01-06&due_before=2026-01-10&sort=due'), ['bread', 'milk 2']);
  t.same(await titles(api, 'alice', 'q=milk&sort=updated'), ['milk 2', 'milk 4', 'milk 3', 'milk 1'], "bob's milk is not alice's");
});

t.test('q finds a case-insensitive substring of the title or the notes', async (t) => {
  const { api } = await build(t);
  await add(api, 'alice', 'Buy MILK');
  await add(api, 'alice', 'Errand', { notes: 'Call the Dentist at 9' });
  await add(api, 'alice', 'Nothing here');
  t.same(await titles(api, 'alice', 'q=milk'), ['Buy MILK']);
  t.same(await titles(api, 'alice', 'q=MiLk'), ['Buy MILK']);
  t.same(await titles(api, 'alice', 'q=dENTIST'), ['Errand'], 'found in the notes');
  t.same(await titles(api, 'alice', `q=${encodeURIComponent('the dentist at')}`), ['Errand'], 'spaces are part of the text');
  t.same(await titles(api, 'alice', 'q=y%20m'), ['Buy MILK'], 'anywhere in the text');
  t.same(await titles(api, 'alice', 'q=xyz'), []);
});

t.test('a search is planned on every call, never from a cached generic plan; the other lists stay prepared', async (t) => {
  // One connection, so the session whose prepared statements are read is the one that ran the lists.
  const sql = createSql((await freshSchema(t)).url, { max: 1 });
  t.teardown(() => sql.end());
  const { api } = await build(t, { sql });
  await add(api, 'ann', 'buy milk');
  // Past the fifth run, when PostgreSQL would consider a generic plan for a named statement.
  for (let i = 0; i < 7; i++) {
    t.same(await titles(api, 'ann', 'q=milk'), ['buy milk']);
    t.same(await titles(api, 'ann', ''), ['buy milk']);
  }
  const prepared = (await sql<{ statement: string }[]>`SELECT statement FROM pg_prepared_statements`).map((x) => x.statement);
  t.ok(prepared.some((x) => x.includes('FROM tasks') && x.includes('ORDER BY') && !x.includes('ILIKE')), 'the plain list is a prepared statement');
  t.notOk(prepared.some((x) => x.includes('ILIKE')), 'no search statement is prepared');
});

t.test('q: %, _ and \\ are literal characters, never patterns', async (t) => {
  const { api } = await build(t);
  for (const title of ['abc', 'a_c', 'axc', 'a%c', '50% off', '50 percent', 'back\\slash', 'backslash', 'plain']) await add(api, 'alice', title);
  await add(api, 'alice', 'noted', { notes: 'raise by 100%' });
  const found = async (q: string) => (await titles(api, 'alice', `q=${encodeURIComponent(q)}`)).sort();
  t.same(await found('%'), ['50% off', 'a%c', 'noted'], 'q=%');
  t.same(await found('_'), ['a_c'], 'q=_');
  t.same(await found('\\'), ['back\\slash'], 'q=\\');
  t.same(await found('a_c'), ['a_c'], 'q=a_c');
  t.same(await found('a%c'), ['a%c'], 'q=a%c');
  t.same(await found('0%'), ['50% off', 'noted'], 'q=0%');
  t.same(await found('\\s'), ['back\\slash'], 'q=\\s is a backslash and an s, not an escaped s');
  t.same(await found('\\\\'), [], 'q=\\\\ (two backslashes)');
  t.same(await found('%%'), [], 'q=%%');
  t.same(await found('__'), [], 'q=__');
});

t.test('q ignores case beyond ASCII: Ärger is found by ärg', async (t) => {
  const { api } = await build(t);
  await add(api, 'alice', 'Ärger im Büro');
  await add(api, 'alice', 'Arger');
  await add(api, 'alice', 'École', { notes: 'ÇA VA' });
  await add(api, 'alice', 'Молоко');
  await add(api, 'alice', 'Ærø Ω');
  const found = async (q: string) => (await titles(api, 'alice', `q=${encodeURIComponent(q)}`)).sort();
  t.same(await found('ärg'), ['Ärger im Büro'], 'ärg');
  t.same(await found('ÄRG'), ['Ärger im Büro'], 'ÄRG');
  t.same(await found('BÜRO'), ['Ärger im Büro'], 'BÜRO');
  t.same(await found('écOLE'), ['École'], 'écOLE');
  t.same(await found('ça va'), ['École'], 'ça va (in the notes)');
  t.same(await found('молоко'), ['Молоко'], 'молоко');
  t.same(await found('æRØ ω'), ['Ærø Ω'], 'æRØ ω');
});

t.test('q is 1 to 200 characters (code points)', async (t) => {
  const { api } = await build(t);
  await add(api, 'alice', 'long', { notes: `${'x'.repeat(300)}${'😀'.repeat(200)}` });
  t.same(await titles(api, 'alice', `q=${'x'.repeat(200)}`), ['long'], '200 characters');
  t.same(await titles(api, 'alice', `q=${encodeURIComponent('😀'.repeat(200))}`), ['long'], '200 emoji are 200 characters');
  badQuery(t, await api.get('/api/tasks?q=', { as: 'alice' }), 'q', 'q= (empty)');
  badQuery(t, await api.get(`/api/tasks?q=${'x'.repeat(201)}`, { as: 'alice' }), 'q', '201 characters');
  badQuery(t, await api.get(`/api/tasks?q=${encodeURIComponent('😀'.repeat(201))}`, { as: 'alice' }), 'q', '201 emoji');
  badQuery(t, await api.get('/api/tasks?q=a%00b', { as: 'alice' }), 'q', 'a NUL character');
});

t.test('every sort pages exactly: all pages together are the one big page, each task once', async (t) => {
  const { api } = await build(t);
  const dues = ['2026-01-10', null, '2026-01-05', '2026-01-10', null, '2026-01-10', '2026-02-01', null, '2026-01-05', '2026-01-10', null, '2026-03-01', '2026-01-10', null];
  const made: Task[] = [];
  for (const [i, due] of dues.entries()) made.push(await add(api, 'alice', `task ${i}${i % 3 === 0 ? ' milk' : ''}`, { due_date: due }));
  await add(api, 'bob', 'task of bob milk', { due_date: '2026-01-10' });
  // A manual order unlike the others, and updated_at ties: one bulk write stamps one time.
  await move(api, 'alice', (made[0] as Task).id, { to: 'top' });
  await move(api, 'alice', (made[13] as Task).id, { to: 'bottom' });
  await move(api, 'alice', (made[5] as Task).id, { after: (made[9] as Task).id });
  await patch(api, 'alice', (made[2] as Task).id, { title: 'task 2 renamed' });
  for (const i of [1, 4, 7, 10]) await patch(api, 'alice', (made[i] as Task).id, { status: 'completed' });
  const bulk = await api.patch('/api/tasks?status=pending', { as: 'alice', payload: { status: 'completed' } });
  t.equal(bulk.statusCode, 200);
  await patch(api, 'alice', (made[3] as Task).id, { status: 'pending' });
  await patch(api, 'alice', (made[8] as Task).id, { status: 'pending' });

  const queries = ['', 'status=completed', 'has_due=true', 'has_due=false', 'q=milk', 'due_after=2026-01-05&due_before=2026-01-10', 'status=pending&q=task'];
  for (const sort of SORTS) {
    for (const filter of queries) {
      const query = [`sort=${sort}`, filter].filter(Boolean).join('&');
      const big = (await page(api, 'alice', query)).items;
      t.ok(big.length > 0, `${query}: some tasks match`);
      t.same(
        big.map((x) => x.title),
        [...big].sort(ORDER[sort]).map((x) => x.title),
        `${query}: in the contract's order`,
      );
      for (const limit of [1, 2, 5]) {
        const pages = await walk(api, 'alice', query, limit);
        const walked = pages.flatMap((p) => p.items.map((x) => x.title));
        t.same(walked, big.map((x) => x.title), `${query}, limit=${limit}: the same tasks in the same order`);
        t.ok(
          pages.every((p) => p.items.length === limit || p.next_cursor === null),
          `${query}, limit=${limit}: only the last page is short`,
        );
        t.ok(pages.at(-1)?.items.length, `${query}, limit=${limit}: no empty last page`);
      }
    }
  }
  const all = (await page(api, 'alice', 'sort=due')).items;
  t.equal(new Set(all.map((x) => x.id)).size, dues.length, 'every task of alice, once');
});

t.test('a cursor belongs to its query: another sort, filter or q is a 400 on cursor', async (t) => {
  const { api } = await build(t);
  for (let i = 0; i < 4; i++) await add(api, 'alice', `task ${i}`, { due_date: i % 2 ? '2026-01-07' : null });
  const next = async (query: string) => {
    const res = await api.get(`/api/tasks?${query}&limit=1`, { as: 'alice' });
    t.equal(res.statusCode, 200, `${query}: first page`);
    return res.json().next_cursor as string;
  };
  const cursor = await next('sort=due');
  const others = [
    'sort=created',
    'sort=position',
    'sort=updated',
    '',
    'sort=due&status=pending',
    'sort=due&has_due=true',
    'sort=due&due_before=2030-01-01',
    'sort=due&due_after=2000-01-01',
    'sort=due&q=task',
  ];
  for (const other of others) {
    const res = await api.get(`/api/tasks?${other}${other ? '&' : ''}limit=1&cursor=${cursor}`, { as: 'alice' });
    badQuery(t, res, 'cursor', `a sort=due cursor with "${other}"`);
  }
  const same = await api.get(`/api/tasks?sort=due&limit=3&cursor=${cursor}`, { as: 'alice' });
  t.equal(same.statusCode, 200, 'the same query with another limit is fine');
  t.equal(same.json().items.length, 3);

  const searched = await next('q=task&has_due=true');
  badQuery(t, await api.get(`/api/tasks?limit=1&cursor=${searched}`, { as: 'alice' }), 'cursor', 'a q cursor without q');
  badQuery(t, await api.get(`/api/tasks?q=task&limit=1&cursor=${searched}`, { as: 'alice' }), 'cursor', 'a q cursor without has_due');
  badQuery(t, await api.get(`/api/tasks?q=tas&has_due=true&limit=1&cursor=${searched}`, { as: 'alice' }), 'cursor', 'a q cursor with another q');

  const plain = await next('status=pending');
  t.equal((await api.get(`/api/tasks?status=pending&sort=created&limit=1&cursor=${plain}`, { as: 'alice' })).statusCode, 200, 'sort=created is the default: the same query');
});

t.test('bad parameters are a 400 on that parameter', async (t) => {
  const { api } = await build(t);
  const res = await api.get('/api/tasks?sort=title', { as: 'alice' });
  badQuery(t, res, 'sort', 'sort=title');
  for (const allowed of SORTS) t.match(res.json().error.message, allowed, `the message lists ${allowed}`);

  const cases: Array<[string, string]> = [
    ['sort=', 'sort'],
    ['sort=DUE', 'sort'],
    ['due_before=2026-02-30', 'due_before'],
    ['due_before=2026-1-1', 'due_before'],
    ['due_before=2026-01-01T00:00:00Z', 'due_before'],
    ['due_after=2026-13-01', 'due_after'],
    ['due_after=2025-02-29', 'due_after'],
    ['due_after=', 'due_after'],
    ['has_due=yes', 'has_due'],
  ];
  for (const [query, field] of cases) badQuery(t, await api.get(`/api/tasks?${query}`, { as: 'alice' }), field, query);
});

t.test('counts: without today exactly pending, completed and total', async (t) => {
  const { api } = await build(t);
  await add(api, 'alice', 'late', { due_date: '2020-01-01' });
  const done = await add(api, 'alice', 'done');
  await patch(api, 'alice', done.id, { status: 'completed' });
  const res = await api.get('/api/tasks/counts', { as: 'alice' });
  t.equal(res.statusCode, 200);
  t.same(Object.keys(res.json()).sort(), ['completed', 'pending', 'total']);
  t.same(res.json(), { pending: 1, completed: 1, total: 2 });
});

t.test('counts with today: overdue and due_today count pending tasks only', async (t) => {
  const { api } = await build(t);
  await add(api, 'alice', 'yesterday', { due_date: '2026-01-06' });
  await add(api, 'alice', 'today', { due_date: '2026-01-07' });
  await add(api, 'alice', 'tomorrow', { due_date: '2026-01-08' });
  await add(api, 'alice', 'someday');
  const doneLate = await add(api, 'alice', 'done late', { due_date: '2025-12-01' });
  const doneToday = await add(api, 'alice', 'done today', { due_date: '2026-01-07' });
  await add(api, 'bob', "bob's", { due_date: '2026-01-01' });
  for (const task of [doneLate, doneToday]) await patch(api, 'alice', task.id, { status: 'completed' });

  const counts = async (today: string) => {
    const res = await api.get(`/api/tasks/counts?today=${today}`, { as: 'alice' });
    t.equal(res.statusCode, 200, `today=${today}`);
    return res.json();
  };
  t.same(await counts('2026-01-07'), { pending: 4, completed: 2, total: 6, overdue: 1, due_today: 1 });
  t.same(await counts('2026-01-08'), { pending: 4, completed: 2, total: 6, overdue: 2, due_today: 1 }, 'another day, other numbers');
  t.same(await counts('2026-01-01'), { pending: 4, completed: 2, total: 6, overdue: 0, due_today: 0 });

  await patch(api, 'alice', doneLate.id, { status: 'pending' });
  t.same(await counts('2026-01-07'), { pending: 5, completed: 1, total: 6, overdue: 2, due_today: 1 }, 'reopened, it is overdue again');

  const nobody = await api.get('/api/tasks/counts?today=2026-01-07', { as: 'nobody-yet' });
  t.same(nobody.json(), { pending: 0, completed: 0, total: 0, overdue: 0, due_today: 0 }, 'a user with no tasks: five zeros');
  for (const today of ['2026-02-30', '2026-1-7', 'yesterday', '']) {
    badQuery(t, await api.get(`/api/tasks/counts?today=${today}`, { as: 'alice' }), 'today', `today=${today}`);
  }
});
