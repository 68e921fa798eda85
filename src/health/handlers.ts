import type { Handlers } from '../contract/handlers.ts';
import type { Sql } from '../db/client.ts';
import { withDeadline } from '../db/deadline.ts';
import { serviceUnavailable } from '../errors.ts';

/** How long /health waits for the database before calling it unavailable. */
const PROBE_TIMEOUT_MS = 2000;

export function createHealthHandlers(sql: Sql): Pick<Handlers, 'getHealth'> {
  return {
    async getHealth({ log }) {
      try {
        await withDeadline((probe) => probe.run(sql`SELECT 1`), PROBE_TIMEOUT_MS);
        return { status: 200, body: { status: 'ok', database: 'ok' } };
      } catch (err) {
        log.error({ err }, 'health check: the database is unavailable');
        const unavailable = serviceUnavailable();
        return {
          status: 503,
          headers: unavailable.headers,
          body: { status: 'unavailable', database: 'unavailable', ...unavailable.toBody() },
        };
      }
    },
  };
}

