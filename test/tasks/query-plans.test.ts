/**
 * Flat at any size (issue 11, goal 3; issue 17): the statements the API really sends
 * (captured from postgres.js, not copied here) read an index in the order they return,
 * with no Sort node, on a table big enough that the planner's choice means something:
 * every sort (created, position, due, updated), with and without status=pending, first
 * page and a later one. Checked with real values (the plan of one execution) and as the
 * generic plan a prepared statement switches to after five executions. The search (q)
 * may read an index or scan: its plans are reported, not asserted.
 */
import postgres from 'postgres';
import t from 'tap';
import { Deadline } from '../../src/db/deadline.ts';
import { START } from '../../src/sync/position.ts';
import { createSyncQueries, type SyncQueries } from '../../src/sync/queries.ts';
import { createTaskQueries, type TaskQueries } from '../../src/tasks/queries.ts';
import { KEY_OF, type ListQuery, type Sort, type SortKey } from '../../src/tasks/search.ts';
import { freshSchema, type Test } from '../helper.ts';

interface Statement {
  text: string;
  parameters: unknown[];
}

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  Plans?: PlanNode[];
}

const USERS = 2000;
const PER_USER = 20;
const HEAVY = 20_000;

/** A pool that records each statement it sends, with its parameters. */
async function recordingDatabase(t: Test) {
  const { url } = await freshSchema(t);
  const sent: Statement[] = [];
  const sql = postgres(url, {
    max: 1,
    onnotice: () => {},
    debug: (_connection, text, parameters) => sent.push({ text, parameters }),
  });
  t.teardown(() => sql.end());
  // 2,000 users with a page or less, one with 20,000: 60,000 rows with real statistics. As the
  // bench seeds them (bench/database.ts): a third completed, 60 % with a due date over two
  // years, 60 % with notes (a seventh of those about milk), positions unique per user.
  await sql`INSERT INTO users (id) SELECT 'u' || g FROM generate_series(1, ${USERS}::int) g UNION ALL SELECT 'heavy'`;
  await sql`
    INSERT INTO tasks (user_id, title, status, created_at, change_seq, notes, due_date, completed_at, position)
    SELECT user_id, 'task ' || g, CASE WHEN g % 3 = 0 THEN 'completed' ELSE 'pending' END, at, g,
           CASE WHEN g % 5 < 2 THEN '' WHEN g % 7 = 0 THEN 'Buy milk on the way home.' ELSE 'Call the dentist about next week.' END,
           CASE WHEN g % 5 < 3 THEN DATE '2025-01-01' + (g * 37 % 730) END,
           CASE WHEN g % 3 = 0 THEN at END,
           todo_key_for_index(g)
    FROM (SELECT 'u' || (g % ${USERS}::int + 1) AS user_id, g, timestamptz '2026-01-01' + g * interval '1 second' AS at
          FROM generate_series(1, ${USERS * PER_USER}::int) g
          UNION ALL
          SELECT 'heavy', g, timestamptz '2026-01-01' + g * interval '1 second' FROM generate_series(1, ${HEAVY}::int) g) AS seed`;
  await sql`UPDATE users SET top_position = (SELECT min(position) FROM tasks WHERE tasks.user_id = users.id)`;
  // Deletions too: the change feed reads them beside the tasks.
  await sql`
    INSERT INTO task_tombstones (task_id, user_id, change_seq)
    SELECT gen_random_uuid(), CASE WHEN g % 2 = 0 THEN 'heavy' ELSE 'u' || (g % ${USERS}::int + 1) END, ${HEAVY} + g
    FROM generate_series(1, 20000) g`;
  await sql`ANALYZE tasks`;
  // As autovacuum leaves it: the visibility map set, so index-only scans are priced as such.
  await sql`VACUUM ANALYZE task_tombstones`;
  await sql`ANALYZE users`;
  return { sql, sent, queries: createTaskQueries(sql), sync: createSyncQueries(sql) };
}

/** The one statement `run` sends. */
async function captured(sent: Statement[], run: () => Promise<unknown>): Promise<Statement> {
  const before = sent.length;
  await run();
  const statements = sent.slice(before);
  if (statements.length !== 1) throw new Error(`expected one statement, saw ${statements.length}`);
  return statements[0] as Statement;
}

function nodes(plan: PlanNode): PlanNode[] {
  return [plan, ...(plan.Plans ?? []).flatMap(nodes)];
}

/** A plan's nodes: whether it reads tasks through an index, and whether it sorts. */
function summarise(plan: PlanNode) {
  const all = nodes(plan);
  const onTasks = all.filter((n) => n['Relation Name'] === 'tasks' || n['Relation Name'] === 'task_tombstones');
  return {
    summary: all.map((n) => `${n['Node Type']}${n['Index Name'] ? ` using ${n['Index Name']}` : ''}`).join(' > '),
    sorts: all.some((n) => /Sort/.test(n['Node Type'])),
    indexOnly: onTasks.length > 0 && onTasks.every((n) => /^Index (Only )?Scan$/.test(n['Node Type'])),
  };
}

type Explain = Array<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }>;

async function customPlan(sql: postgres.Sql, s: Statement): Promise<PlanNode> {
  const [row] = await sql.unsafe<Explain>(`EXPLAIN (FORMAT JSON) ${s.text}`, s.parameters as postgres.ParameterOrJSON<never>[]);
  return (row?.['QUERY PLAN'][0] as { Plan: PlanNode }).Plan;
}

/** The plan for any values (PostgreSQL 16+), as a prepared statement uses after five runs. */
async function genericPlan(sql: postgres.Sql, s: Statement): Promise<PlanNode> {
  const [row] = await sql.unsafe<Explain>(`EXPLAIN (GENERIC_PLAN, FORMAT JSON) ${s.text}`).simple();
  return (row?.['QUERY PLAN'][0] as { Plan: PlanNode }).Plan;
}

const SORTS: Sort[] = ['created', 'position', 'due', 'updated'];
const STATUSES = [undefined, 'pending'] as const;
const name = (query: ListQuery) => `list ?sort=${query.sort}${query.status ? `&status=${query.status}` : ''}`;

/** Where the heavy user's list under `query` is half read: a later page's key, as a cursor carries it. */
async function middleKey(queries: TaskQueries, query: ListQuery): Promise<SortKey> {
  const { tasks } = await queries.list(new Deadline(), 'heavy', query, undefined, HEAVY / 4);
  const last = tasks.at(-1);
  if (!last) throw new Error('no row to start a cursor from');
  return KEY_OF[query.sort ?? 'created'](last);
}

/** Every paged read the API serves: the list in each sort, with and without status, first page and later; and the change feed. */
async function pagedReads(queries: TaskQueries, sync: SyncQueries) {
  const d = new Deadline();
  const since = { seq: HEAVY / 2, id: START.id };
  const reads: Array<readonly [string, (user: string) => Promise<unknown>]> = [];
  for (const sort of SORTS) {
    for (const status of STATUSES) {
      const query: ListQuery = { sort, ...(status && { status }) };
      const after = await middleKey(queries, query);
      reads.push([name(query), (user: string) => queries.list(d, user, query, undefined, 50)]);
      reads.push([`${name(query)} with a cursor`, (user: string) => queries.list(d, user, query, after, 50)]);
    }
  }
  // A cursor of another status than the first page's is refused by the API, but the statement is still one to check.
  const completed: ListQuery = { sort: 'created', status: 'completed' };
  const afterCompleted = await middleKey(queries, completed);
  reads.push(['list ?status=completed with a cursor', (user: string) => queries.list(d, user, completed, afterCompleted, 50)]);
  reads.push(['change feed, full sync', (user: string) => sync.changesAfter(d, user, START, 100, true)]);
  reads.push(['change feed since a position', (user: string) => sync.changesAfter(d, user, since, 100, false)]);
  return reads;
}

async function serverVersion(sql: postgres.Sql): Promise<number> {
  const [{ version } = { version: 0 }] = await sql<{ version: number }[]>`SELECT current_setting('server_version_num')::int AS version`;
  return version;
}

// One database for the three tests: seeding it is most of their time.
const database = await recordingDatabase(t);

t.test('paged reads use an index and never sort', async (t) => {
  const { sql, sent, queries, sync } = database;
  const version = await serverVersion(sql);

  for (const [name, run] of await pagedReads(queries, sync)) {
    for (const user of ['u7', 'heavy']) {
      const statement = await captured(sent, () => run(user));
      const plan = summarise(await customPlan(sql, statement));
      t.ok(plan.indexOnly, `${name}, user ${user}: tasks is read through an index (${plan.summary})`);
      t.notOk(plan.sorts, `${name}, user ${user}: no Sort node (${plan.summary})`);
    }
    if (version >= 160000) {
      const statement = await captured(sent, () => run('u7'));
      const plan = summarise(await genericPlan(sql, statement));
      t.ok(plan.indexOnly, `${name}, generic plan: tasks is read through an index (${plan.summary})`);
      t.notOk(plan.sorts, `${name}, generic plan: no Sort node (${plan.summary})`);
    }
  }
});

t.test('the search: its plans, reported', async (t) => {
  // q may be served by the trigram index (then sorted) or by the sort's index with a filter;
  // which one is the planner's call, on the statistics. Reported here, asserted only to run.
  const { sql, sent, queries } = database;
  const version = await serverVersion(sql);
  const d = new Deadline();
  for (const q of ['mil', 'zzz']) {
    const query: ListQuery = { sort: 'created', q };
    for (const user of ['u7', 'heavy']) {
      const statement = await captured(sent, () => queries.list(d, user, query, undefined, 50));
      const plan = summarise(await customPlan(sql, statement));
      t.comment(`q=${q}, user ${user}: ${plan.summary}${plan.sorts ? ' (sorts)' : ''}`);
      t.ok(plan.summary.length > 0, `q=${q}, user ${user}: planned`);
    }
    if (version >= 160000) {
      const statement = await captured(sent, () => queries.list(d, 'u7', query, undefined, 50));
      const plan = summarise(await genericPlan(sql, statement));
      t.comment(`q=${q}, generic plan: ${plan.summary}${plan.sorts ? ' (sorts)' : ''}`);
    }
  }
});

t.test('the plans are checked on a plan that does sort', async (t) => {
  // Guards the checks themselves: an ORDER BY no index provides must be caught.
  const { sql } = database;
  const plan = summarise(
    await customPlan(sql, { text: `SELECT id FROM tasks WHERE user_id = $1 ORDER BY title LIMIT 51`, parameters: ['heavy'] }),
  );
  t.ok(plan.sorts, `a Sort node is found (${plan.summary})`);
  const seq = summarise(await customPlan(sql, { text: `SELECT id FROM tasks WHERE title = $1`, parameters: ['task 1'] }));
  t.notOk(seq.indexOnly, `a sequential scan is found (${seq.summary})`);
});
