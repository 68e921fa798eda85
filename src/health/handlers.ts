import type { Handlers } from '../contract/handlers.ts';
import type { Sql } from '../db/client.ts';
import { serviceUnavailable } from '../errors.ts';

/** How long /health waits for the database before calling it unavailable. */
const PROBE_TIMEOUT_MS = 2000;

export function createHealthHandlers(sql: Sql): Pick<Handlers, 'getHealth'> {
  return {
    async getHealth({ log }) {
      try {
        await withTimeout(sql`SELECT 1`.execute(), PROBE_TIMEOUT_MS);
        return { status: 200, body: { status: 'ok', database: 'ok' } };
      } catch (err) {
        log.error({ err }, 'health check: the database is unavailable');
        return {
          status: 503,
          headers: { 'retry-after': '5' },
          body: {
            status: 'unavailable',
            database: 'unavailable',
            error: serviceUnavailable().toBody().error,
          },
        };
      }
    },
  };
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
