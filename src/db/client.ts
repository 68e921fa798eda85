import postgres from 'postgres';

export type Sql = postgres.Sql;

const TIMESTAMPTZ = 1184;

/**
 * PostgreSQL's text for a timestamptz in a UTC session ("2026-12-02 04:27:37.12+00",
 * trailing zeros of the fraction dropped) as RFC 3339 with milliseconds, as the
 * contract shows it. Anything else (another zone, infinity, BC) takes the slow way.
 */
export function isoTimestamp(text: string): string {
  const match = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})(?:\.(\d{1,3}))?\+00$/.exec(text);
  if (!match) return new Date(text).toISOString();
  return `${match[1]}T${match[2]}.${`${match[3] ?? ''}000`.slice(0, 3)}Z`;
}

const serializeTimestamp = (value: unknown): string => (value instanceof Date ? value.toISOString() : String(value));

export interface PoolOptions {
  max?: number | undefined;
  /**
   * The operation deadline: statements and lock waits are bounded by the server just
   * below it, a second line behind the app's own cancel (see deadline.ts).
   */
  deadlineMs?: number;
}

/**
 * One pool for the process. Driver settings written in the URL (`?max=50`,
 * `connect_timeout`, `idle_timeout`, `prepare=false` for PgBouncer in transaction
 * mode, `application_name`) win over our defaults; an explicit `max` wins over the URL's.
 */
export function createSql(url: string, options: PoolOptions = {}): Sql {
  let query: URLSearchParams;
  try {
    query = new URL(url).searchParams;
  } catch {
    query = new URLSearchParams();
  }
  const urlMax = Number(query.get('max'));
  // Transaction-mode poolers (the ones that need prepare=false) refuse startup
  // parameters they do not track, so there the app's own cancel is the only bound.
  const pooled = query.get('prepare') === 'false';
  const serverTimeoutMs = options.deadlineMs === undefined ? undefined : Math.max(options.deadlineMs - 100, 1);
  return postgres(url, {
    // The driver takes the URL's "max" as a string (one connection): give it the number.
    max: options.max ?? (Number.isInteger(urlMax) && urlMax > 0 ? urlMax : 10),
    // Fail fast while the database is down: the request gets a 503, not a hang.
    ...(!query.has('connect_timeout') && { connect_timeout: 5 }),
    ...(!query.has('idle_timeout') && { idle_timeout: 60 }),
    // The server's NOTICEs (e.g. "relation already exists, skipping") are not ours to print.
    onnotice: () => {},
    // timestamptz arrives as the ISO text the API shows, with no Date made and printed again.
    types: { date: { to: TIMESTAMPTZ, from: [TIMESTAMPTZ], serialize: serializeTimestamp, parse: isoTimestamp } },
    connection: {
      application_name: 'todo-api',
      TimeZone: 'UTC',
      ...(serverTimeoutMs !== undefined &&
        !pooled && { statement_timeout: serverTimeoutMs, lock_timeout: serverTimeoutMs }),
    },
  });
}

const UNAVAILABLE_NODE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
  // postgres.js's own codes for a lost or unobtainable connection
  'CONNECT_TIMEOUT',
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
]);

/**
 * True when an error means "the database cannot serve us right now" (down,
 * restarting, unreachable, out of connections) rather than a bug.
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code !== 'string') return false;
  if (UNAVAILABLE_NODE_CODES.has(code)) return true;
  // SQLSTATE classes 08 (connection exception), 53 (insufficient resources),
  // 57P0x (the server is shutting down or starting up), and a statement cancelled
  // or a lock not granted in time (57014, 55P03): rolled back, so safe to retry.
  return (
    /^08[0-9A-Z]{3}$/.test(code) ||
    /^53[0-9A-Z]{3}$/.test(code) ||
    /^57P0[1-3]$/.test(code) ||
    code === '57014' ||
    code === '55P03'
  );
}

/** SQLSTATE class 22 (data exception) or a CHECK violation: a bad value, not a bug in us. */
export function isDataException(err: unknown): boolean {
  if (typeof err !== 'object' || err === null || (err as { name?: unknown }).name !== 'PostgresError') return false;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && (code.startsWith('22') || code === '23514');
}

/**
 * Sends `query` as an unnamed statement, which PostgreSQL plans with the actual
 * parameters on every call (as it plans every statement behind a `prepare=false`
 * pooler). For statements whose best plan depends on the values: after five runs of a
 * named one, PostgreSQL may keep a generic plan made from ANALYZE's sample, and for
 * a search (`q`) that plan took 42 ms to 1.1 s where the planned-per-call one takes 1–2 ms
 * (bench/PROFILE.md). postgres.js reads `options.prepare` when it sends the query, as
 * `sql.unsafe(…, { prepare: false })` sets it; its typings do not show the field.
 */
export function plannedPerCall<T extends readonly postgres.MaybeRow[]>(query: postgres.PendingQuery<T>): postgres.PendingQuery<T> {
  (query as unknown as { options: { prepare?: boolean } }).options.prepare = false;
  return query;
}
