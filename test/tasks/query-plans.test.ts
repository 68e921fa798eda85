/**
 * Flat at any size (issue 11, goal 3): the statements the API really sends (captured
 * from postgres.js, not copied here) read an index in the order they return, with no
 * Sort node, on a table big enough that the planner's choice means something. Checked
 * with real values (the plan of one execution) and as the generic plan a prepared
 * statement switches to after five executions.
 */
import postgres from 'postgres';
import t from 'tap';
import { Deadline } from '../../src/db/deadline.ts';
import { START } from '../../src/sync/position.ts';
import { createSyncQueries, type SyncQueries } from '../../src/sync/queries.ts';
import { createTaskQueries, type TaskQueries } from '../../src/tasks/queries.ts';
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
  // 2,000 users with a page or less, one with 20,000: 60,000 rows with real statistics.
  await sql`INSERT INTO users (id) SELECT 'u' || g FROM generate_series(1, ${USERS}::int) g UNION ALL SELECT 'heavy'`;
  await sql`
    INSERT INTO tasks (user_id, title, status, created_at, change_seq)
    SELECT 'u' || (g % ${USERS}::int + 1), 'task ' || g, CASE WHEN g % 3 = 0 THEN 'completed' ELSE 'pending' END,
           timestamptz '2026-01-01' + g * interval '1 second', g
    FROM generate_series(1, ${USERS * PER_USER}::int) g
    UNION ALL
    SELECT 'heavy', 'task ' || g, CASE WHEN g % 3 = 0 THEN 'completed' ELSE 'pending' END,
           timestamptz '2026-01-01' + g * interval '1 second', g
    FROM generate_series(1, ${HEAVY}::int) g`;
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

/** Every paged read the API serves: the list and the change feed. */
function pagedReads(queries: TaskQueries, sync: SyncQueries, after: { createdAt: string; id: string }) {
  const d = new Deadline();
  const since = { seq: HEAVY / 2, id: START.id };
  return [
    ['list', (user: string) => queries.list(d, user, { status: undefined, after: undefined, limit: 50 })],
    ['list ?status=pending', (user: string) => queries.list(d, user, { status: 'pending', after: undefined, limit: 50 })],
    ['list with a cursor', (user: string) => queries.list(d, user, { status: undefined, after, limit: 50 })],
    ['list ?status=completed with a cursor', (user: string) => queries.list(d, user, { status: 'completed', after, limit: 50 })],
    ['change feed, full sync', (user: string) => sync.changesAfter(d, user, START, 100, true)],
    ['change feed since a position', (user: string) => sync.changesAfter(d, user, since, 100, false)],
  ] as const;
}

t.test('paged reads use an index and never sort', async (t) => {
  const { sql, sent, queries, sync } = await recordingDatabase(t);
  const [middle] = await sql<{ created_at: Date; id: string }[]>`
    SELECT created_at, id FROM tasks WHERE user_id = 'heavy' ORDER BY created_at DESC, id DESC OFFSET ${HEAVY / 2} LIMIT 1`;
  if (!middle) throw new Error('no row to start a cursor from');
  const after = { createdAt: middle.created_at.toISOString(), id: middle.id };
  const [{ version } = { version: 0 }] = await sql<{ version: number }[]>`SELECT current_setting('server_version_num')::int AS version`;

  for (const [name, run] of pagedReads(queries, sync, after)) {
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

t.test('the plans are checked on a plan that does sort', async (t) => {
  // Guards the checks themselves: an ORDER BY no index provides must be caught.
  const { sql } = await recordingDatabase(t);
  const plan = summarise(
    await customPlan(sql, { text: `SELECT id FROM tasks WHERE user_id = $1 ORDER BY title LIMIT 51`, parameters: ['heavy'] }),
  );
  t.ok(plan.sorts, `a Sort node is found (${plan.summary})`);
  const seq = summarise(await customPlan(sql, { text: `SELECT id FROM tasks WHERE title = $1`, parameters: ['task 1'] }));
  t.notOk(seq.indexOnly, `a sequential scan is found (${seq.summary})`);
});
