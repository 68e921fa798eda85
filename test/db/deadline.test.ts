/**
 * A 503 never writes later: at the operation deadline the statement in flight
 * is cancelled and rolled back, and one still waiting for a pool connection
 * never runs. PostgreSQL's own timeouts (statement_timeout, lock_timeout) are
 * a 503 too, never a 500.
 */
import { connect, createServer, type AddressInfo } from 'node:net';
import t from 'tap';
import postgres from 'postgres';
import { createSql } from '../../src/db/client.ts';
import { Deadline, DeadlineExpiredError } from '../../src/db/deadline.ts';
import { build, freshSchema, type Built, type Test } from '../helper.ts';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function titles(built: Built, user: string): Promise<string[]> {
  return (await built.sql<{ title: string }[]>`SELECT title FROM tasks WHERE user_id = ${user} ORDER BY title`).map((r) => r.title);
}

/** Holds an ACCESS EXCLUSIVE lock on `tasks` from another session for `ms`; resolves when it is held. */
async function lockTasks(t: Test, url: string, ms: number): Promise<{ released: Promise<void> }> {
  const holder = postgres(url, { max: 1, onnotice: () => {} });
  t.teardown(() => holder.end({ timeout: 1 }));
  let held!: () => void;
  const isHeld = new Promise<void>((r) => (held = r));
  const released = holder
    .begin(async (tx) => {
      await tx`LOCK TABLE tasks IN ACCESS EXCLUSIVE MODE`;
      held();
      await tx`SELECT pg_sleep(${ms / 1000})`;
    })
    .then(() => undefined);
  await isHeld;
  return { released };
}

t.test('a create blocked past the deadline gets 503, and no task appears afterwards', async (t) => {
  const { url } = await freshSchema(t);
  // No server-side timeouts on this pool: the app's own cancel is what is tested.
  const built = await build(t, { sql: createSql(url), operationDeadlineMs: 800 });
  const { released } = await lockTasks(t, url, 2500);

  const started = Date.now();
  const res = await built.api.post('/api/tasks', { as: 'alice', payload: { title: 'blocked' }, headers: { 'idempotency-key': 'k1' } });
  const took = Date.now() - started;
  t.equal(res.statusCode, 503, 'the client is told 503');
  t.equal(res.json().error.code, 'SERVICE_UNAVAILABLE');
  t.ok(res.headers['retry-after'], 'with Retry-After');
  t.ok(took < 2400, `answered at the deadline, before the lock was released (${took} ms)`);

  await released;
  await sleep(300);
  t.same(await titles(built, 'alice'), [], 'the lock is gone and the task was never written');
  const [key] = await built.sql`SELECT 1 FROM idempotency_keys`;
  t.equal(key, undefined, 'nor was its idempotency key');

  const retry = await built.api.post('/api/tasks', { as: 'alice', payload: { title: 'blocked' }, headers: { 'idempotency-key': 'k1' } });
  t.equal(retry.statusCode, 201, 'the retry, as told, succeeds');
  t.equal(retry.headers['idempotent-replayed'], undefined, 'as a first answer: the 503 left nothing to replay');
  t.same(await titles(built, 'alice'), ['blocked'], 'exactly one task');
});

t.test('every write path rolls back at the deadline: PUT, PATCH, DELETE', async (t) => {
  const { url } = await freshSchema(t);
  const built = await build(t, { sql: createSql(url), operationDeadlineMs: 600 });
  const task = await built.api.createTask('alice', 'kept');
  const { released } = await lockTasks(t, url, 2000);
  const path = `/api/tasks/${task.id}`;
  const results = await Promise.all([
    built.api.put(path, { as: 'alice', payload: { title: 'put' } }),
    built.api.patch(path, { as: 'alice', payload: { status: 'completed' } }),
    built.api.delete(path, { as: 'alice' }),
  ]);
  t.same(
    results.map((r) => r.statusCode),
    [503, 503, 503],
  );
  await released;
  await sleep(300);
  const [row] = await built.sql<{ title: string; status: string }[]>`SELECT title, status FROM tasks WHERE id = ${task.id}`;
  t.same(row, { title: 'kept', status: 'pending' }, 'the task is exactly as before');
});

t.test('a request still queued for a pool connection at its deadline never runs', async (t) => {
  const { url } = await freshSchema(t);
  const sql = createSql(url, { max: 1 });
  const built = await build(t, { sql, operationDeadlineMs: 500 });
  // The only connection is busy for 1.5 s.
  const busy = sql`SELECT pg_sleep(1.5)`.execute();

  const res = await built.api.post('/api/tasks', { as: 'alice', payload: { title: 'queued' } });
  t.equal(res.statusCode, 503, 'the queued request gets 503 at its deadline');
  await busy;
  await sleep(300);
  t.same(await titles(built, 'alice'), [], 'and it did not run once the connection was free');
  t.equal((await built.api.post('/api/tasks', { as: 'alice', payload: { title: 'later' } })).statusCode, 201, 'the pool works on');
});

t.test("PostgreSQL's lock_timeout and statement_timeout are 503, never 500", async (t) => {
  const { url } = await freshSchema(t);
  // The pool's server-side timeouts (just under 400 ms) fire before the app's 5 s deadline.
  const built = await build(t, { sql: createSql(url, { deadlineMs: 400 }), operationDeadlineMs: 5000 });
  const [settings] = await built.sql<{ statement_timeout: string; lock_timeout: string }[]>`
    SELECT current_setting('statement_timeout') AS statement_timeout, current_setting('lock_timeout') AS lock_timeout`;
  t.same(settings, { statement_timeout: '300ms', lock_timeout: '300ms' }, 'the pool sets both below the deadline');

  const { released } = await lockTasks(t, url, 1500);
  const started = Date.now();
  const res = await built.api.post('/api/tasks', { as: 'alice', payload: { title: 'x' } });
  t.equal(res.statusCode, 503, 'lock_timeout (55P03): 503');
  t.ok(Date.now() - started < 1400, 'answered by the server-side timeout, not the app deadline');
  t.notMatch(res.body, /lock|timeout|postgres|canceling/i, 'nothing of the database in the body');
  await released;
  t.same(await titles(built, 'alice'), []);

  await t.rejects(built.sql`SELECT pg_sleep(1)`, { code: '57014' }, 'statement_timeout cancels a long statement');
});

t.test('a transaction-mode pooler URL (prepare=false) gets no startup timeouts, which poolers refuse', async (t) => {
  const { url } = await freshSchema(t);
  const pooled = new URL(url);
  pooled.searchParams.set('prepare', 'false');
  const sql = createSql(pooled.toString(), { deadlineMs: 400 });
  t.teardown(() => sql.end());
  const [row] = await sql<{ statement_timeout: string }[]>`SELECT current_setting('statement_timeout') AS statement_timeout`;
  t.equal(row?.statement_timeout, '0', 'left to the app-side cancel');
});

t.test('a Deadline on its own: a statement started after it expired never runs; one that finished is never cancelled', async (t) => {
  const { url } = await freshSchema(t);
  const sql = createSql(url);
  t.teardown(() => sql.end());

  const late = new Deadline(50);
  t.teardown(() => late.end());
  await sleep(120);
  t.ok(late.expired, 'expired with no statement in flight');
  const refused = await late.run(sql`INSERT INTO users (id) VALUES ('late')`).then(
    () => undefined,
    (err: unknown) => err,
  );
  t.ok(refused instanceof DeadlineExpiredError, 'the next statement is refused as expired (the HTTP layer answers 503)');
  await sleep(100);
  t.same(await sql`SELECT id FROM users WHERE id = 'late'`, [], 'and it never reached the database');

  const done = new Deadline(80);
  t.teardown(() => done.end());
  const statement = sql<{ n: number }[]>`SELECT 1 AS n`;
  let cancels = 0;
  const cancel = statement.cancel.bind(statement);
  statement.cancel = () => {
    cancels++;
    return cancel();
  };
  const [row] = await done.run(statement);
  t.equal(row?.n, 1, 'on time: the result');
  await sleep(150);
  t.ok(done.expired, 'its clock ran out afterwards');
  t.equal(cancels, 0, 'and the finished statement was not cancelled');
});

t.test('a deadline whose cancel cannot reach the database answers 503 at the grace, and the process runs on', async (t) => {
  const { url } = await freshSchema(t);
  // The pool reaches PostgreSQL through a relay that, once closed, refuses new connections
  // (the cancel's) while the pool's own connection stays: a database that went unreachable.
  const target = new URL(url);
  const relay = createServer((client) => {
    const upstream = connect(Number(target.port), target.hostname);
    client.pipe(upstream).pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', () => resolve()));
  const relayed = new URL(url);
  relayed.port = String((relay.address() as AddressInfo).port);
  const sql = createSql(relayed.toString(), { max: 1 });
  t.teardown(() => sql.end({ timeout: 1 }));
  await sql`SELECT 1`;

  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  t.teardown(() => process.off('unhandledRejection', onUnhandled));

  const deadline = new Deadline(300);
  t.teardown(() => deadline.end());
  const started = Date.now();
  const outcome = deadline.run(sql`SELECT pg_sleep(2.5)`).then(
    () => 'finished',
    (err: unknown) => err,
  );
  await sleep(100);
  relay.close();
  const answer = await outcome;
  t.ok(answer instanceof DeadlineExpiredError, 'the caller gets the expired deadline (a 503 over HTTP)');
  t.ok(Date.now() - started < 2000, `at the grace after the deadline, not when the statement ends (${Date.now() - started} ms)`);
  await sleep(200);
  t.same(unhandled, [], 'the failed cancel is no unhandled rejection (which would stop the server)');
});
