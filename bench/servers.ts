import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, openSync, closeSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../src/dev/embedded.ts';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../', import.meta.url));

/** The API; the same-work comparator (headers and a log line per request, as the API); the bare floor. */
export type Target = 'api' | 'minimal' | 'floor';

export interface ServerOptions {
  target: Target;
  databaseUrl: string;
  secretKey: string;
  /** Where the process's stdout and stderr go (the API's JSON log lines). */
  logFile: string;
  /** `--cpu-prof` into this directory (the minimal server writes two: tsx's loader runs in a thread of its own). */
  cpuProfDir?: string | undefined;
  /** WEB_CONCURRENCY for the API (goal 5; the API reads it once clustering exists). */
  workers?: number | undefined;
  /** Variables over the defaults below (an A/B of one setting). */
  env?: Record<string, string>;
}

export interface RunningServer {
  target: Target;
  url: string;
  pid: number;
  /** RSS in bytes of the process and its children (cluster workers), from /proc; undefined elsewhere. */
  rss(): number | undefined;
  /** CPU seconds (user + system) used so far by the process and its children, from /proc. */
  cpu(): number | undefined;
  /** Node.js processes serving (1, or 1 + the cluster's workers). */
  processes(): number;
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();
// If the bench dies, its servers must not outlive it.
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** The API's entry, once buildApi has built it. */
let apiEntry: string | undefined;

/**
 * `npm run build`: the API runs from its build, as an operator runs it (README, production).
 * Run once per bench, before the first API server starts. Each bench builds into a folder of
 * its own beside dist/ (the same depth, so the build finds openapi.yaml and sql/ as dist/
 * would): benches side by side (test/bench.test.ts) never read a file another is writing,
 * and a bench leaves the developer's dist/ alone. Removed when the bench exits.
 */
export function buildApi(): void {
  const dir = join(ROOT, `dist-bench-${process.pid}`);
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  execFileSync('npm', ['run', '-s', 'build', '--', '--outDir', dir], { cwd: ROOT, stdio: 'inherit' });
  apiEntry = join(dir, 'server.js');
}

function builtApi(): string {
  if (apiEntry === undefined) throw new Error('buildApi() first: the API runs from its build');
  return apiEntry;
}

/**
 * The API as an operator runs it: the build of the real entry (server.js, see
 * buildApi) in production mode, logging at info into a file; or the minimal comparator
 * (bench/minimal-server.ts, through tsx).
 */
export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const port = await freePort();
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    DATABASE_URL: options.databaseUrl,
    SECRET_KEY: options.secretKey,
    PORT: String(port),
    HOST: '127.0.0.1',
    ENVIRONMENT: 'production',
    LOG_LEVEL: 'info',
    // A load test is a few users at full speed: the per-user limits would answer it with 429s.
    RATE_LIMIT_PER_MINUTE: '0',
    AUTH_FAILURE_LIMIT_PER_MINUTE: '0',
    ...(options.workers !== undefined && { WEB_CONCURRENCY: String(options.workers) }),
    COMPARATOR: options.target === 'floor' ? 'floor' : 'same-work',
    ...options.env,
  };
  const args = [
    ...(options.cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', options.cpuProfDir] : []),
    ...(options.target === 'api' ? [builtApi()] : ['--import', 'tsx', 'bench/minimal-server.ts']),
  ];
  const log = openSync(options.logFile, 'a');
  const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', log, log] });
  closeSync(log);
  running.add(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.once('exit', () => running.delete(child));

  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM'); // a graceful stop, so that --cpu-prof writes its profile
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(timer);
  };
  try {
    await waitUntilHealthy(url, child, options.logFile);
  } catch (err) {
    await stop();
    throw err;
  }
  const pid = child.pid ?? 0;
  return { target: options.target, url, pid, rss: () => treeRss(pid), cpu: () => treeCpu(pid), processes: () => tree(pid).length, stop };
}

async function waitUntilHealthy(url: string, child: ChildProcess, logFile: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`the server exited while starting (see ${logFile}):\n${tail(logFile)}`);
    }
    try {
      const res = await fetch(`${url}/health`);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the server did not become healthy within 60 s (see ${logFile}):\n${tail(logFile)}`);
}

function tail(file: string): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-10).join('\n');
  } catch {
    return '';
  }
}

/** A process and its Node.js descendants (cluster workers, not helpers such as esbuild), from /proc (Linux). */
function tree(pid: number): number[] {
  const found: number[] = [];
  const isNode = (p: number) => {
    try {
      return readFileSync(`/proc/${p}/comm`, 'utf8').trim() === 'node';
    } catch {
      return false;
    }
  };
  const visit = (p: number) => {
    found.push(p);
    try {
      for (const task of readdirSync(`/proc/${p}/task`)) {
        const children = readFileSync(join(`/proc/${p}/task`, task, 'children'), 'utf8').trim();
        for (const c of children ? children.split(/\s+/) : []) if (isNode(Number(c))) visit(Number(c));
      }
    } catch {
      // the process ended while we looked
    }
  };
  visit(pid);
  return found;
}

function sumOver(pid: number, read: (p: number) => number): number | undefined {
  if (!existsSync(`/proc/${pid}/stat`)) return undefined;
  let total = 0;
  for (const p of tree(pid)) {
    try {
      total += read(p);
    } catch {
      // the process ended while we looked
    }
  }
  return total;
}

/** VmRSS in bytes. */
export function treeRss(pid: number): number | undefined {
  return sumOver(pid, (p) => Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${p}/status`, 'utf8'))?.[1] ?? 0) * 1024);
}

let ticksPerSecond: number | undefined;

/** utime + stime in seconds. */
export function treeCpu(pid: number): number | undefined {
  ticksPerSecond ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  const hz = ticksPerSecond;
  return sumOver(pid, (p) => {
    // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / hz;
  });
}
