import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chown, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { userInfo } from 'node:os';
import { freePort } from '../src/dev/embedded.ts';

/**
 * PgBouncer in transaction mode in front of the bench's PostgreSQL (goal 5), as Neon's and
 * Supabase's pooled endpoints run it. Debian's `pgbouncer` package; as root it runs as the
 * OS user "postgres", as the embedded PostgreSQL does.
 */
export interface PgBouncer {
  /** The same database through the pooler, with `prepare=false` (PgBouncer < 1.21). */
  route(url: string): string;
  stop(): Promise<void>;
}

function binary(): string {
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/usr/local/sbin'])) {
    if (dir && existsSync(join(dir, 'pgbouncer'))) return join(dir, 'pgbouncer');
  }
  throw new Error('--pgbouncer needs the pgbouncer program (Debian: apt-get install pgbouncer)');
}

export async function startPgBouncer(serverUrl: string, dir: string): Promise<PgBouncer> {
  const file = binary();
  const server = new URL(serverUrl);
  const port = await freePort();
  const runAs =
    userInfo().uid === 0
      ? { uid: Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim()), gid: Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim()) }
      : undefined;
  const user = decodeURIComponent(server.username || 'postgres');
  const password = decodeURIComponent(server.password);
  const quote = (s: string) => `"${s.replace(/"/g, '""')}"`;
  const files = {
    ini: join(dir, 'pgbouncer.ini'),
    users: join(dir, 'userlist.txt'),
    log: join(dir, 'pgbouncer.log'),
  };
  // Clients on loopback are trusted; the user list gives PgBouncer the password for the server.
  await writeFile(files.users, `${quote(user)} ${quote(password)}\n`, { mode: 0o600 });
  await writeFile(
    files.ini,
    [
      '[databases]',
      `* = host=${server.hostname} port=${server.port || 5432}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'auth_type = trust',
      `auth_file = ${files.users}`,
      'pool_mode = transaction',
      'max_client_conn = 500',
      'default_pool_size = 20',
      `logfile = ${files.log}`,
      'ignore_startup_parameters = extra_float_digits,options',
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  if (runAs) for (const f of [dir, files.ini, files.users]) await chown(f, runAs.uid, runAs.gid);

  const child: ChildProcess = spawn(file, [files.ini], { stdio: 'ignore', ...(runAs ?? {}) });
  const guard = () => child.kill('SIGKILL');
  process.on('exit', guard);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    process.removeListener('exit', guard);
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGINT');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  };

  const deadline = Date.now() + 10_000;
  while (!(await accepts(port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`PgBouncer did not start (see ${files.log})`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }

  return {
    route: (url) => {
      const routed = new URL(url);
      routed.hostname = '127.0.0.1';
      routed.port = String(port);
      routed.searchParams.set('prepare', 'false');
      return routed.toString();
    },
    stop,
  };
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
