import closeWithGrace from 'close-with-grace';
import { buildApp, LOG_REDACT } from './app.ts';
import { ConfigError, loadConfig, type Config } from './config.ts';
import { createSql, type Sql } from './db/client.ts';
import type { FastifyInstance } from 'fastify';
import { migrate } from './db/migrate.ts';
// Types only: src/dev/ is loaded with import() when DATABASE_URL is absent (never in production).
import type { EmbeddedDatabase } from './dev/embedded.ts';
import { userInfo } from 'node:os';
import pino from 'pino';

/** The process entry: config, database, migrations, listen, graceful shutdown. */
async function main(): Promise<void> {
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

  const log = pino({ level: config.logLevel, redact: LOG_REDACT });

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
  // From here on a signal shuts down whatever has started so far, in order.
  closeWithGrace({ delay: 10_000 }, async ({ signal, err }) => {
    if (err) log.error({ err }, 'shutting down after an error');
    else log.info({ signal }, 'shutting down');
    if (app) await app.close();
    else await sql?.end({ timeout: 5 });
    await embedded?.stop();
  });

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
    embedded = await startEmbeddedPostgres({ dataDir, log: (line) => log.debug({ postgres: line }) });
    databaseUrl = embedded.url;
  }

  sql = createSql(databaseUrl);
  const applied = await migrate(sql);
  if (applied.length > 0) log.info({ applied }, 'migrations applied');

  app = await buildApp({
    sql,
    secretKey,
    jwksUrl: config.jwksUrl,
    issuer: config.issuer,
    audience: config.audience,
    clockToleranceS: config.clockToleranceS,
    corsOrigins: config.corsOrigins,
    loggerInstance: log,
  });

  await app.listen({ port: config.port, host: config.host });
}

main().catch((err: unknown) => {
  process.stderr.write(`todo-api: failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
