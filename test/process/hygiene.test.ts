/**
 * Process hygiene of `npm start` with the embedded PostgreSQL: a second start
 * never touches the running instance, signalling npm alone stops everything, and
 * what the server does to a PostgreSQL it did not start is logged where an
 * operator sees it (info or above).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { freePort, isAlive, runningPostmaster } from '../../src/dev/embedded.ts';
import { token, type Test } from '../helper.ts';
import { SECRET_KEY, call, logRecords, sleep, startServer, tempDataDir, waitForHealth, type ServerProcess } from './server-process.ts';

t.jobs = 2;

const INFO = 30;

function env(dataDir: string, port: number): Record<string, string> {
  return { DATA_DIR: dataDir, PORT: String(port), HOST: '127.0.0.1', SECRET_KEY };
}

/** The first server still answers, and writes. */
async function stillServes(t: Test, port: number, title: string): Promise<void> {
  const bearer = token('alice', { secret: SECRET_KEY });
  const created = await call(port, 'POST', '/api/tasks', bearer, { title });
  t.equal(created.status, 201, 'the first server still creates tasks');
  const health = await fetch(`http://127.0.0.1:${port}/health`);
  t.equal(health.status, 200, 'and its database is up');
}


async function firstServer(t: Test, prefix: string): Promise<{ dataDir: string; port: number; server: ServerProcess; postmaster: number | undefined }> {
  const dataDir = await tempDataDir(t, prefix);
  const port = await freePort();
  const server = startServer(t, env(dataDir, port));
  await waitForHealth(server, port, 60_000);
  return { dataDir, port, server, postmaster: runningPostmaster(dataDir) };
}

t.test('a second start on the same DATA_DIR says it is in use, exits 1, and leaves the first alone', async (t) => {
  const first = await firstServer(t, 'todo-api-hygiene-dir-');
  t.not(first.postmaster, undefined, 'the first server runs its PostgreSQL');

  const second = startServer(t, env(first.dataDir, await freePort()));
  t.same(await second.exitWithin(30_000), { code: 1, signal: null }, 'the second exits 1');
  const lines = second.stderr().split('\n').filter((l) => l !== '');
  t.equal(lines.length, 1, `one line on stderr: ${second.stderr()}`);
  t.match(lines[0] ?? '', `DATA_DIR ${first.dataDir} is in use by another todo-api process (pid ${first.server.child.pid})`, 'naming the DATA_DIR and the process');
  t.equal(runningPostmaster(first.dataDir), first.postmaster, "the first server's PostgreSQL was not touched");
  await stillServes(t, first.port, 'after a second start on the same DATA_DIR');
});

t.test('a second start on the same port says so, exits 1, and starts no PostgreSQL', async (t) => {
  const first = await firstServer(t, 'todo-api-hygiene-port-');
  const otherDir = await tempDataDir(t, 'todo-api-hygiene-port2-');
  const second = startServer(t, env(otherDir, first.port));
  t.same(await second.exitWithin(30_000), { code: 1, signal: null }, 'the second exits 1');
  const lines = second.stderr().split('\n').filter((l) => l !== '');
  t.equal(lines.length, 1, `one line on stderr: ${second.stderr()}`);
  t.match(lines[0] ?? '', `port ${first.port} on 127.0.0.1 is in use`, 'naming the port');
  t.notOk(existsSync(join(otherDir, 'postgres')), 'it checked the port before creating or starting any PostgreSQL');
  t.equal(runningPostmaster(first.dataDir), first.postmaster, "the first server's PostgreSQL was not touched");
  await stillServes(t, first.port, 'after a second start on the same port');
});

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  t.test(`${signal} to the npm process alone stops node and its embedded PostgreSQL`, async (t) => {
    const dataDir = await tempDataDir(t, `todo-api-hygiene-npm-${signal.toLowerCase()}-`);
    const port = await freePort();
    const npm = startServer(t, env(dataDir, port), { command: 'npm', args: ['run', '-s', 'start'] });
    await waitForHealth(npm, port, 90_000);
    const nodePid = Number(logRecords(npm.stdout()).find((r) => typeof r.pid === 'number')?.pid);
    t.ok(Number.isInteger(nodePid), `the server logs its pid (${nodePid})`);
    const postmaster = runningPostmaster(dataDir);
    t.not(postmaster, undefined, 'with its PostgreSQL');
    t.teardown(() => {
      if (isAlive(nodePid)) process.kill(nodePid, 'SIGKILL');
    });
    t.equal(
      logRecords(npm.stdout()).find((r) => r.msg === 'migrations applied')?.via,
      'the embedded PostgreSQL',
      'the migrations line says which database it migrated',
    );

    npm.child.kill(signal);
    await npm.exitWithin(20_000);
    // A bound against a hang, not a timing assertion: the server gives itself 10 s to stop.
    for (let i = 0; i < 200 && (isAlive(nodePid) || runningPostmaster(dataDir) !== undefined); i++) await sleep(100);
    t.notOk(isAlive(nodePid), 'the node process has exited');
    t.equal(runningPostmaster(dataDir), undefined, 'and so has its PostgreSQL');
    t.notOk(existsSync(join(dataDir, 'postgres', 'postmaster.pid')), 'shut down cleanly (no postmaster.pid left)');
    t.ok(
      logRecords(npm.stdout()).some((r) => r.msg === 'shutting down'),
      'the server logged its shutdown',
    );
  });
}

t.test('a PostgreSQL left running by a killed server is stopped, and that is logged at info or above', async (t) => {
  const first = await firstServer(t, 'todo-api-hygiene-orphan-');
  first.server.child.kill('SIGKILL');
  await first.server.exited;
  const orphan = runningPostmaster(first.dataDir);
  t.not(orphan, undefined, 'SIGKILL leaves the PostgreSQL running');
  t.equal(Number(readFileSync(join(first.dataDir, 'server.pid'), 'utf8')), first.server.child.pid, 'and the dead server still named as its owner');

  const port = await freePort();
  const next = startServer(t, env(first.dataDir, port));
  await waitForHealth(next, port, 60_000);
  const line = logRecords(next.stdout()).find((r) => typeof r.msg === 'string' && r.msg.includes(`PostgreSQL (pid ${orphan})`));
  t.ok(line, `the next start logs what it does to that PostgreSQL: ${line?.msg}`);
  t.ok(Number(line?.level) >= INFO, `at info or above (level ${line?.level})`);
  t.not(runningPostmaster(first.dataDir), orphan, 'it runs a PostgreSQL of its own');
  await stillServes(t, port, 'after taking over');
});
