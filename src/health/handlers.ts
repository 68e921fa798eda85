import type { Handlers } from '../contract/handlers.ts';
import type { Sql } from '../db/client.ts';
import { withDeadline } from '../db/deadline.ts';
import { serviceUnavailable } from '../errors.ts';

/** How long /health waits for the database before calling it unavailable. */
const PROBE_TIMEOUT_MS = 2000;
/** One database check serves every /health caller for this long, so a flood costs one query a second. */
export const HEALTH_SHARE_MS = 1000;

/**
 * The database check, shared: callers that arrive while one runs, or within
 * HEALTH_SHARE_MS after it settled, get its verdict.
 */
function sharedProbe(sql: Sql, log: (err: unknown) => void): () => Promise<boolean> {
  let current: Promise<boolean> | undefined;
  let settledAt = Infinity;
  return () => {
    if (current !== undefined && Date.now() - settledAt < HEALTH_SHARE_MS) return current;
    if (current !== undefined && settledAt === Infinity) return current; // still running
    settledAt = Infinity;
    current = withDeadline((probe) => probe.run(sql`SELECT 1`), PROBE_TIMEOUT_MS).then(
      () => true,
      (err: unknown) => {
        log(err); // once per check, not once per caller
        return false;
      },
    );
    void current.then(() => (settledAt = Date.now()));
    return current;
  };
}

export function createHealthHandlers(sql: Sql): Pick<Handlers, 'getHealth' | 'getLiveness'> {
  let lastLog: ((err: unknown) => void) | undefined;
  const probe = sharedProbe(sql, (err) => lastLog?.(err));
  return {
    async getLiveness() {
      // The process answers: nothing else is asked (an orchestrator restarts on failure).
      return { status: 200, body: { status: 'ok' } };
    },
    async getHealth({ log }) {
      lastLog = (err) => log.error({ err }, 'health check: the database is unavailable');
      if (await probe()) return { status: 200, body: { status: 'ok', database: 'ok' } };
      const unavailable = serviceUnavailable();
      return {
        status: 503,
        headers: unavailable.headers,
        body: { status: 'unavailable', database: 'unavailable', ...unavailable.toBody() },
      };
    },
  };
}
