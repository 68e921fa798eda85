import closeWithGrace from 'close-with-grace';
import type { FastifyInstance } from 'fastify';
import cluster, { type Worker } from 'node:cluster';
import { createServer } from 'node:net';
import { userInfo } from 'node:os';
import { setFlagsFromString } from 'node:v8';
import pino, { type Logger } from 'pino';
import { buildApp, LOG_REDACT } from './app.ts';
import { ConfigError, loadConfig, type Config } from './config.ts';
import { createSql, type Sql } from './db/client.ts';
import { migrate } from './db/migrate.ts';
import { logDestination, type LogDestination } from './log-destination.ts';
// Types only: src/dev/ is loaded with import() when DATABASE_URL is absent (never in production).
import type { EmbeddedDatabase } from './dev/embedded.ts';

/**
 * V8 lets a small heap grow to up to four times what was live at its last full
 * collection before it collects again. The API keeps ~25 MB live, and its old space
 * swung between 25 and 90 MB under load (RSS up to 190 MB). Twice is plenty: RSS stays
 * under 150 MB, at no CPU cost the bench can see (bench/PROFILE.md, second round). The flag
 * is read at each collection, so setting it at start takes effect.
 */
function boundHeapGrowth(): void {
  setFlagsFromString('--heap-growing-percent=100');
}

/** close-with-grace exits 1 when shutting down takes longer than this. */
const SHUTDOWN_GRACE_MS = 10_000;

/**
 * The process entry: config, database, migrations, then either serving here or
 * (WEB_CONCURRENCY > 1) forking that many workers that share the port; graceful
 * shutdown of all of it on SIGTERM/SIGINT.
 */
async function main(): Promise<void> {
  boundHeapGrowth();
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`todo-api: invalid configuration: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }

  // Readable lines for a developer at a terminal; JSON for everything else (and production).
  const destination =
    process.stdout.isTTY && config.environment !== 'production'
      ? (await import('./dev/pretty-log.ts')).prettyDestination()
      : logDestination();
  const log = pino({ level: config.logLevel, redact: LOG_REDACT }, destination);
  // A worker gets DATABASE_URL (and SECRET_KEY) from the primary, which did the rest.
  if (cluster.isWorker) return serveWorker(config, log, destination);

  // Before any database is touched: a second start on a port in use changes nothing.
  if (config.port !== 0) await assertPortFree(config.host, config.port);

  let secretKey = config.secretKey;
  if (secretKey === undefined && config.jwksUrl === undefined) {
    const { developmentSecret } = await import('./dev/secret.ts');
    const dev = developmentSecret(config.dataDir);
    secretKey = dev.secret;
    log.warn(
      `SECRET_KEY is not set: using a development secret kept in ${dev.path}. ` +
        'Get a token with: npm run token -- --sub alice   (set SECRET_KEY to your BETTER_AUTH_SECRET for real tokens)',
    );
  }

  let embedded: EmbeddedDatabase | undefined;
  let sql: Sql | undefined;
  let app: FastifyInstance | undefined;
  const workers = new Set<Worker>();
  let stopping = false;
  let workerFailed = false;
  // From here on a signal shuts down whatever has started so far, in order.
  const grace = closeWithGrace({ delay: SHUTDOWN_GRACE_MS }, async ({ signal, err }) => {
    stopping = true;
    if (err) log.error({ err }, 'shutting down after an error');
    else log.info({ signal }, 'shutting down');
    await Promise.all([...workers].map((worker) => stopWorker(worker)));
    if (app) await app.close();
    else await sql?.end({ timeout: 5 });
    await embedded?.stop();
    // close-with-grace exits as soon as this returns: the last lines must be out first.
    await destination.drained();
    // An orchestrator should see a failure, and restart us.
    if (workerFailed) process.exit(1);
  });
  stopWithParent(log);

  let databaseUrl = config.databaseUrl;
  if (databaseUrl === undefined) {
    // Development only (config refuses ENVIRONMENT=production without DATABASE_URL).
    const { fallbackDataDir, firstUntraversableParent, startEmbeddedPostgres } = await import('./dev/embedded.ts');
    let dataDir = config.dataDir;
    // As root the cluster runs as the OS user "postgres", which cannot enter e.g. /root.
    if (userInfo().uid === 0 && process.env.DATA_DIR === undefined && firstUntraversableParent(dataDir) !== undefined) {
      dataDir = fallbackDataDir(dataDir);
      log.warn(`the OS user "postgres" cannot reach ${config.dataDir}; keeping the embedded database in ${dataDir}`);
    }
    log.info({ dataDir }, 'DATABASE_URL is not set: starting the embedded PostgreSQL');
    embedded = await startEmbeddedPostgres({
      dataDir,
      log: (line) => log.debug({ postgres: line }),
      notice: (line) => log.warn(line),
    });
    databaseUrl = embedded.url;
  }

  // Schema changes go over the direct connection when the pooled one is a transaction-mode pooler.
  const migrationUrl = config.databaseUrlUnpooled ?? databaseUrl;
  const migrationSql = migrationUrl === databaseUrl ? undefined : createSql(migrationUrl, { max: 1 });
  sql = createSql(databaseUrl, { max: config.dbPoolMax, deadlineMs: config.operationDeadlineMs });
  try {
    const applied = await migrate(migrationSql ?? sql);
    const via = migrationSql ? 'DATABASE_URL_UNPOOLED' : embedded ? 'the embedded PostgreSQL' : 'DATABASE_URL';
    if (applied.length > 0) log.info({ applied, via }, 'migrations applied');
  } finally {
    if (migrationSql) await migrationSql.end({ timeout: 5 });
  }
  if (stopping) return;

  if (config.webConcurrency > 1) {
    await sql.end({ timeout: 5 }); // the workers have pools of their own
    sql = undefined;
    const env = { DATABASE_URL: databaseUrl, ...(secretKey !== undefined && { SECRET_KEY: secretKey }) };
    const listening: Array<Promise<void>> = [];
    for (let i = 0; i < config.webConcurrency; i++) {
      const worker = cluster.fork(env);
      workers.add(worker);
      listening.push(new Promise((resolve) => worker.once('listening', () => resolve())));
      worker.once('exit', (code, signal) => {
        workers.delete(worker);
        if (stopping) return;
        // No restart loop: an orchestrator restarts the whole process.
        log.error({ worker: worker.process.pid, code, signal }, 'a worker exited unexpectedly: shutting down');
        workerFailed = true;
        void grace.close();
      });
    }
    await Promise.all(listening);
    log.info({ port: config.port, host: config.host, workers: config.webConcurrency }, 'workers listening');
    return;
  }

  app = await buildApp({ ...appOptions(config, log), sql, secretKey });
  await app.listen({ port: config.port, host: config.host });
}

function appOptions(config: Config, log: Logger) {
  return {
    jwksUrl: config.jwksUrl,
    issuer: config.issuer,
    audience: config.audience,
    clockToleranceS: config.clockToleranceS,
    corsOrigins: config.corsOrigins,
    corsAllowLoopback: config.environment !== 'production',
    operationDeadlineMs: config.operationDeadlineMs,
    syncRetentionDays: config.syncRetentionDays,
    loggerInstance: log,
    rateLimitPerMinute: config.rateLimitPerMinute,
    authFailureLimitPerMinute: config.authFailureLimitPerMinute,
    trustProxy: config.trustProxy,
    metricsPort: config.metricsPort,
    metricsHost: config.host,
    // LISTEN needs a session of its own: behind a transaction-mode pooler, the direct connection.
    listenSql: config.databaseUrlUnpooled === undefined ? undefined : createSql(config.databaseUrlUnpooled, { max: 1 }),
  };
}

/** One of WEB_CONCURRENCY workers: serves on the shared port; the primary ran the migrations. */
async function serveWorker(config: Config, log: Logger, destination: LogDestination): Promise<void> {
  if (config.databaseUrl === undefined) throw new Error('a worker needs DATABASE_URL from the primary');
  const sql = createSql(config.databaseUrl, { max: config.dbPoolMax, deadlineMs: config.operationDeadlineMs });
  let app: FastifyInstance | undefined;
  let stopping = false;
  const grace = closeWithGrace({ delay: SHUTDOWN_GRACE_MS }, async ({ signal, err }) => {
    stopping = true;
    if (err) log.error({ err }, 'worker shutting down after an error');
    else log.info({ signal }, 'worker shutting down');
    if (app) await app.close();
    else await sql.end({ timeout: 5 });
    await destination.drained();
  });
  // The primary asks by message, not by signal: a Ctrl-C already signals the whole group,
  // and close-with-grace takes a second signal as "exit now".
  const stop = () => {
    if (!stopping) void grace.close();
  };
  process.on('message', (message) => message === 'shutdown' && stop());
  process.on('disconnect', stop);
  app = await buildApp({ ...appOptions(config, log), sql, secretKey: config.secretKey });
  await app.listen({ port: config.port, host: config.host });
}

function stopWorker(worker: Worker): Promise<void> {
  if (worker.isDead()) return Promise.resolve();
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  if (worker.isConnected()) worker.send('shutdown');
  else worker.process.kill('SIGTERM');
  return exited;
}

/** Refuses, in one line, a port another process listens on (checked before any database is started). */
async function assertPortFree(host: string, port: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const probe = createServer();
    probe.once('error', (err: NodeJS.ErrnoException) =>
      reject(err.code === 'EADDRINUSE' ? new Error(`port ${port} on ${host} is in use (is another server running?); set PORT to another one`) : err),
    );
    probe.listen({ port, host, exclusive: true }, () => probe.close(() => resolve()));
  });
}

/**
 * `npm start` runs us under `sh -c`: a SIGTERM to npm alone (what `timeout` or a
 * container runtime sends) ends npm and the shell but not us. When our parent goes,
 * we shut down as if signalled.
 */
function stopWithParent(log: Logger): void {
  if (process.env.npm_lifecycle_event === undefined) return;
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    log.warn({ parent }, 'the process that started us (npm) has gone: shutting down');
    process.kill(process.pid, 'SIGTERM');
  }, 500);
  timer.unref();
}

main().catch((err: unknown) => {
  process.stderr.write(`todo-api: failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
