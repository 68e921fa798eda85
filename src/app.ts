import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import openapiGlue from 'fastify-openapi-glue';
import { bindOperations } from './contract/binding.ts';
import type { Handlers } from './contract/handlers.ts';
import { loadSpec } from './contract/spec.ts';
import type { Sql } from './db/client.ts';
import { createHealthHandlers } from './health/handlers.ts';
import { createServiceHandlers } from './service/handlers.ts';
import htmlIndex from './service/html-index.ts';
import auth, { type AuthOptions } from './plugins/auth.ts';
import { clientErrorHandler, frameworkErrors } from './plugins/client-errors.ts';
import jsonBody from './plugins/json-body.ts';
import metrics from './plugins/metrics.ts';
import rateLimit, { RATE_LIMIT_DEFAULTS } from './plugins/rate-limit.ts';
import requestId, { requestIdFor } from './plugins/request-id.ts';
import securityHeaders from './plugins/security-headers.ts';
import { appLogger, childLoggerFactory, RequestLogController } from './plugins/request-log.ts';
import cors from './plugins/cors.ts';
import db from './plugins/db.ts';
import docs from './plugins/docs.ts';
import errors from './plugins/errors.ts';
import housekeeping from './plugins/housekeeping.ts';
import shutdown from './plugins/shutdown.ts';
import validation from './plugins/validation.ts';
import changeStream from './sync/stream.ts';
import { SYNC_RETENTION_DAYS } from './sync/feed.ts';
import { createSyncHandlers } from './sync/handlers.ts';
import { createTaskHandlers } from './tasks/handlers.ts';

export interface AppOptions extends Omit<AuthOptions, 'secretKey'> {
  sql: Sql;
  /** HS256 shared secret; SECRET_KEY and/or jwksUrl must be given. */
  secretKey?: string | undefined;
  corsOrigins: string[];
  /** Also allow any loopback origin, whatever its port (outside production). */
  corsAllowLoopback?: boolean | undefined;
  /** How long an operation may wait on the database before answering 503 (default 10 s). */
  operationDeadlineMs?: number | undefined;
  /** How long deletions stay in the change feed (default 30 days). */
  syncRetentionDays?: number | undefined;
  /** How often expired idempotency keys and tombstones are swept (default 10 min; 0: never). */
  housekeepingIntervalMs?: number | undefined;
  /** The connection change streams LISTEN on (default: `sql`; the direct URL behind a pooler). */
  listenSql?: Sql | undefined;
  /** How often an idle change stream sends a keep-alive comment (default 20 s). */
  streamHeartbeatMs?: number | undefined;
  /** Where the log lines go (pino); none when absent. */
  loggerInstance?: FastifyBaseLogger | undefined;
  /** Requests a minute per user (default 1200) and failed authentications a minute per IP (default 300); 0 is off. */
  rateLimitPerMinute?: number | undefined;
  authFailureLimitPerMinute?: number | undefined;
  /** Fastify's trustProxy: whether (and from which proxies) X-Forwarded-For gives the client IP. */
  trustProxy?: boolean | number | string[] | undefined;
  /** Serve Prometheus metrics on this port (0: any free one); undefined: off. */
  metricsPort?: number | undefined;
  metricsHost?: string | undefined;
}

/** Bodies are small JSON objects (a title is at most 500 characters). */
export const BODY_LIMIT = 64 * 1024;

/** The Authorization header never reaches the logs. */
export const LOG_REDACT = ['req.headers.authorization', 'req.headers.cookie'];

/** TRUST_PROXY=<n>: the n proxies nearest to us are trusted, whoever they are. */
const trustHops = (hops: number) => (_address: string, hop: number) => hop < hops;

/**
 * The whole API as a Fastify instance, ready to `inject` or `listen`. It never
 * listens itself and owns no process-level concerns (see server.ts).
 */
export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    ...(options.loggerInstance ? { loggerInstance: appLogger(options.loggerInstance) } : { logger: false }),
    bodyLimit: BODY_LIMIT,
    // A slow client cannot hold a socket forever when the server faces the internet.
    requestTimeout: 30_000,
    routerOptions: { ignoreTrailingSlash: true },
    // Shutdown answers with the contract's 503 (src/plugins/shutdown.ts), not Fastify's.
    return503OnClosing: false,
    // Errors Fastify and Node's HTTP parser meet before routing use the contract's body too.
    frameworkErrors,
    clientErrorHandler,
    // X-Request-Id: the client's when usable, else a fresh one; every log line of the request carries it.
    requestIdHeader: false,
    genReqId: requestIdFor,
    // One line per request (request-log.ts).
    logController: new RequestLogController(),
    childLoggerFactory,
    trustProxy: typeof options.trustProxy === 'number' ? trustHops(options.trustProxy) : (options.trustProxy ?? false),
  });

  // First, so that even the shutdown 503 below carries X-Request-Id.
  await app.register(requestId);
  // Then, so that its onRequest gate runs before any other hook once closing.
  await app.register(shutdown);

  const spec = loadSpec();
  await app.register(jsonBody, { spec });
  await app.register(validation);
  await app.register(errors, { spec });
  await app.register(securityHeaders);
  await app.register(cors, { origins: options.corsOrigins, allowLoopback: options.corsAllowLoopback });
  await app.register(db, { sql: options.sql });
  const syncRetentionDays = options.syncRetentionDays ?? SYNC_RETENTION_DAYS;
  await app.register(housekeeping, {
    syncRetentionDays,
    ...(options.housekeepingIntervalMs !== undefined && { intervalMs: options.housekeepingIntervalMs }),
  });
  await app.register(metrics, { sql: options.sql, port: options.metricsPort, host: options.metricsHost });
  await app.register(rateLimit, {
    perUserPerMinute: options.rateLimitPerMinute ?? RATE_LIMIT_DEFAULTS.perUserPerMinute,
    authFailuresPerMinute: options.authFailureLimitPerMinute ?? RATE_LIMIT_DEFAULTS.authFailuresPerMinute,
    onRejected: (limit) => app.metrics.rateLimited(limit),
  });
  await app.register(auth, {
    secretKey: options.secretKey,
    jwksUrl: options.jwksUrl,
    issuer: options.issuer,
    audience: options.audience,
    clockToleranceS: options.clockToleranceS,
    jwksMinRefetchIntervalMs: options.jwksMinRefetchIntervalMs,
    onJwksFetch: (outcome) => app.metrics.jwksFetched(outcome),
  });
  await app.register(docs);
  await app.register(htmlIndex);

  await app.register(changeStream, {
    sql: options.sql,
    listenSql: options.listenSql,
    retentionDays: syncRetentionDays,
    heartbeatMs: options.streamHeartbeatMs,
    deadlineMs: options.operationDeadlineMs,
  });

  const handlers: Handlers = {
    ...createServiceHandlers(spec.info.version),
    ...createHealthHandlers(options.sql),
    ...createTaskHandlers(options.sql),
    ...createSyncHandlers(options.sql, { retentionDays: syncRetentionDays }),
  };

  const perUserLimit = (options.rateLimitPerMinute ?? RATE_LIMIT_DEFAULTS.perUserPerMinute) > 0;
  await app.register(openapiGlue, {
    specification: spec,
    operationResolver: bindOperations(spec, {
      handlers,
      streams: { streamChanges: app.changeStream },
      authenticate: perUserLimit ? [app.authenticate, app.limitPerUser] : [app.authenticate],
      deadlineMs: options.operationDeadlineMs,
    }),
  });

  return app;
}
