import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Sql } from '../db/client.ts';

declare module 'fastify' {
  interface FastifyInstance {
    metrics: AppMetrics;
  }
}

export interface AppMetrics {
  jwksFetched(outcome: 'ok' | 'error'): void;
  rateLimited(limit: 'user' | 'auth_failure'): void;
  /** Where /metrics is served, once the app is ready (undefined when off). */
  address(): AddressInfo | undefined;
}

export interface MetricsOptions {
  sql: Sql;
  /** Serve /metrics on this port (0: any free one); undefined: off (requests are not counted). */
  port?: number | undefined;
  host?: string | undefined;
}

/**
 * Prometheus metrics (prom-client) on a port of their own, so they are never
 * public by accident: requests by operation and status, their latency, the
 * database connections, JWKS fetches, rate-limit rejections, and the process's
 * default metrics (heap, GC, event-loop lag).
 */
async function metrics(app: FastifyInstance, options: MetricsOptions): Promise<void> {
  // A registry per app, not prom-client's global one: tests build many apps in one process.
  const registry = new Registry();
  const labelNames = ['operation', 'method', 'status'] as const;
  const requests = new Counter({ name: 'todo_api_http_requests_total', help: 'Requests answered, by operation and status.', labelNames, registers: [registry] });
  const duration = new Histogram({
    name: 'todo_api_http_request_duration_seconds',
    help: 'Time to answer a request, by operation and status.',
    labelNames,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const jwks = new Counter({ name: 'todo_api_jwks_fetches_total', help: "Fetches of the token issuer's keys, by outcome.", labelNames: ['outcome'], registers: [registry] });
  const limited = new Counter({ name: 'todo_api_rate_limited_total', help: 'Requests refused with 429, by limit.', labelNames: ['limit'], registers: [registry] });
  const poolMax = new Gauge({ name: 'todo_api_db_pool_max', help: 'The most connections this process opens to PostgreSQL.', registers: [registry] });
  poolMax.set(Number((options.sql.options as { max?: unknown }).max ?? 10));
  // postgres.js does not expose its pool's state; PostgreSQL knows our connections by application_name.
  new Gauge({
    name: 'todo_api_db_connections',
    help: "Connections of this application (application_name, all instances) by state, from pg_stat_activity at scrape time.",
    labelNames: ['state'],
    registers: [registry],
    async collect() {
      this.reset();
      try {
        const rows = await options.sql<Array<{ state: string; n: number }>>`
          SELECT coalesce(state, 'unknown') AS state, count(*)::int AS n FROM pg_stat_activity
          WHERE application_name = current_setting('application_name') GROUP BY 1`;
        for (const row of rows) this.set({ state: row.state }, row.n);
      } catch {
        // The database is down: no samples rather than a failed scrape.
      }
    },
  });

  // Counted only when served: the hook is on every request's path.
  if (options.port !== undefined) {
    // The process's own health under prom-client's usual names (dashboards expect them):
    // CPU, memory, heap by space, GC pauses, event-loop lag, open handles.
    collectDefaultMetrics({ register: registry });
    app.addHook('onResponse', (request, reply, done) => {
      // Unknown routes share one label, so a scan of random URLs cannot grow the series.
      const { url, schema } = request.routeOptions; // one read: each builds a new object
      const operation = (schema as { operationId?: string } | undefined)?.operationId ?? (url ? 'other' : 'unknown_route');
      const labels = { operation, method: request.method, status: String(reply.statusCode) };
      requests.inc(labels);
      duration.observe(labels, reply.elapsedTime / 1000);
      done();
    });
  }

  let server: Server | undefined;
  app.decorate('metrics', {
    jwksFetched: (outcome) => jwks.inc({ outcome }),
    rateLimited: (limit) => limited.inc({ limit }),
    address: () => (server?.address() ?? undefined) as AddressInfo | undefined,
  } satisfies AppMetrics);

  if (options.port === undefined) return;
  const port = options.port;
  server = createServer((req, res) => {
    if (req.method !== 'GET' || req.url?.split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('GET /metrics\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (err: unknown) => {
        app.log.error({ err }, 'metrics could not be collected');
        res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics could not be collected\n');
      },
    );
  });
  app.addHook('onReady', async () => {
    await new Promise<void>((resolve, reject) => {
      server?.once('error', reject).listen(port, options.host ?? '127.0.0.1', () => resolve());
    });
    app.log.info({ address: server?.address() }, 'metrics served at /metrics');
  });
  app.addHook('onClose', async () => {
    await new Promise<void>((resolve) => (server?.listening ? server.close(() => resolve()) : resolve()));
  });
}

export default fp(metrics, { name: 'metrics', fastify: '5.x' });
