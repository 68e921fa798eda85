/**
 * The real server as a child process, for tests of what only a process shows:
 * signals, exit codes, ports, data directories, a production build.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { makeTemporaryDataDir, runningPostmaster, stopRunningPostmaster } from '../../src/dev/embedded.ts';
import type { Test } from '../helper.ts';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const SECRET_KEY = 'server-test-secret-that-is-at-least-32-characters';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ServerProcess {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves when the process has exited and its output is read. */
  exited: Promise<Exit>;
  /** The exit, or undefined when it has not exited within `ms`. */
  exitWithin(ms: number): Promise<Exit | undefined>;
}

export interface StartOptions {
  /** The command after the Node binary; default: the TypeScript entry through tsx. */
  args?: string[];
  cwd?: string;
  /** Another program than Node (e.g. npm). */
  command?: string;
}

/** A temporary DATA_DIR the OS user "postgres" can traverse; its cluster stopped and the folder removed at teardown. */
export async function tempDataDir(t: Test, prefix: string): Promise<string> {
  const dir = await makeTemporaryDataDir(prefix);
  t.teardown(async () => {
    await stopRunningPostmaster(dir);
    const stuck = runningPostmaster(dir);
    if (stuck !== undefined) process.kill(stuck, 'SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });
  return dir;
}

/** Starts the server with exactly `env` (plus PATH); it is stopped at teardown if still running. */
export function startServer(t: Test, env: Record<string, string>, options: StartOptions = {}): ServerProcess {
  const child = spawn(options.command ?? process.execPath, options.args ?? ['--import', 'tsx', 'src/server.ts'], {
    cwd: options.cwd ?? ROOT,
    env: { PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  const exited = new Promise<Exit>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  const exitWithin = async (ms: number): Promise<Exit | undefined> => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)));
    try {
      return await Promise.race([exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  };
  t.teardown(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    // SIGTERM first, so that an embedded PostgreSQL is stopped by the server itself.
    child.kill('SIGTERM');
    if ((await exitWithin(15_000)) === undefined) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  return { child, stdout: () => out, stderr: () => err, exited, exitWithin };
}

/** Polls GET /health until it answers 200; throws (with the server's output) on exit or timeout. */
export async function waitForHealth(server: ServerProcess, port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (server.child.exitCode !== null || server.child.signalCode !== null) {
      throw new Error(`the server exited (${server.child.exitCode ?? server.child.signalCode}): ${server.stderr()}${server.stdout()}`);
    }
    try {
      const res = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(3000) });
      last = `${res.status} ${await res.text()}`;
      if (res.status === 200) return;
    } catch (err) {
      last = String(err);
    }
    await sleep(100);
  }
  throw new Error(`GET /health did not answer 200 within ${timeoutMs} ms (last: ${last}); stderr: ${server.stderr()}`);
}

/** One request over real HTTP with a bearer token. */
export async function call(port: number, method: string, path: string, bearer: string, body?: unknown) {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    method,
    headers: { authorization: `Bearer ${bearer}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, json: () => JSON.parse(text) };
}

/** Every non-empty stdout line that is JSON, parsed. */
export function logRecords(stdout: string): Array<Record<string, unknown>> {
  return stdout
    .split('\n')
    .filter((l) => l.trim().startsWith('{'))
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
}
