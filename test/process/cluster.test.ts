/**
 * WEB_CONCURRENCY=2: two worker processes serve one port, and SIGTERM to the
 * primary shuts all of them down cleanly.
 */
import { request } from 'node:http';
import t from 'tap';
import { freePort, isAlive } from '../../src/dev/embedded.ts';
import { freshSchema, token } from '../helper.ts';
import { SECRET_KEY, call, logRecords, sleep, startServer, waitForHealth, type ServerProcess } from './server-process.ts';


/** GET /health on a connection of its own (so that the primary hands each to a worker in turn). */
function healthOnNewConnection(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/health', agent: false, headers: { connection: 'close' } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Until every worker listens (the first one answers /health before the others are up). */
async function allWorkersListening(server: ServerProcess): Promise<void> {
  for (let i = 0; i < 600 && !logRecords(server.stdout()).some((r) => r.msg === 'workers listening'); i++) await sleep(100);
}

/**
 * The processes whose request log lines are out, once both workers' are: a log line
 * reaches stdout within 25 ms (src/server.ts gathers lines into larger writes).
 */
async function servingPids(server: ServerProcess): Promise<Set<number>> {
  const pids = () =>
    new Set(
      logRecords(server.stdout())
        .filter((r) => 'reqId' in r && typeof r.pid === 'number')
        .map((r) => r.pid as number),
    );
  for (let i = 0; i < 50 && pids().size < 2; i++) await sleep(100);
  return pids();
}

t.test('WEB_CONCURRENCY=2: two workers on one port, all stopped by SIGTERM', async (t) => {
  const { url } = await freshSchema(t);
  const port = await freePort();
  const server = startServer(t, { DATABASE_URL: url, SECRET_KEY, PORT: String(port), HOST: '127.0.0.1', WEB_CONCURRENCY: '2' });
  await waitForHealth(server, port, 60_000);
  await allWorkersListening(server);
  const statuses = [];
  for (let i = 0; i < 20; i++) statuses.push(await healthOnNewConnection(port));
  t.same([...new Set(statuses)], [200], 'every request is served');

  const alice = token('alice', { secret: SECRET_KEY });
  const created = await call(port, 'POST', '/api/tasks', alice, { title: 'served by a worker' });
  t.equal(created.status, 201, 'a task is created');
  const list = await call(port, 'GET', '/api/tasks', alice);
  t.same(list.json().items.map((x: { id: string }) => x.id), [created.json().id], 'and every worker sees the same data');

  const primary = server.child.pid ?? 0;
  const serving = await servingPids(server);
  t.equal(serving.size, 2, `requests were served by two processes (${[...serving].join(', ')})`);
  t.notOk(serving.has(primary), 'neither of them the primary');

  server.child.kill('SIGTERM');
  t.same(await server.exitWithin(20_000), { code: 0, signal: null }, 'the primary exits 0');
  t.same([...serving].filter(isAlive), [], 'and no worker is left running');
  t.equal(
    logRecords(server.stdout()).filter((r) => r.msg === 'worker shutting down').length,
    2,
    'each worker shut down gracefully',
  );
});

t.test('WEB_CONCURRENCY=2: a worker that dies takes the whole process down, exit 1, for the orchestrator to restart', async (t) => {
  const { url } = await freshSchema(t);
  const port = await freePort();
  const server = startServer(t, { DATABASE_URL: url, SECRET_KEY, PORT: String(port), HOST: '127.0.0.1', WEB_CONCURRENCY: '2' });
  await waitForHealth(server, port, 60_000);
  await allWorkersListening(server);
  for (let i = 0; i < 10; i++) await healthOnNewConnection(port);
  const workerPids = [...(await servingPids(server))];
  t.equal(workerPids.length, 2, 'two workers');
  process.kill(workerPids[0] ?? 0, 'SIGKILL');
  t.same(await server.exitWithin(20_000), { code: 1, signal: null }, 'the primary exits 1');
  t.same(workerPids.filter(isAlive), [], 'and stops the other worker');
  t.ok(
    logRecords(server.stdout()).some((r) => r.msg === 'a worker exited unexpectedly: shutting down' && Number(r.level) >= 50),
    'logged at error',
  );
});
