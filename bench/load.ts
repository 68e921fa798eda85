import autocannon from 'autocannon';
import { randomUUID } from 'node:crypto';
import { createSigner } from 'fast-jwt';
import { SEARCH_TERM } from './database.ts';

/** Users with real tokens and some of their task ids, read from the database under test. */
export interface Fixture {
  users: Array<{ id: string; token: string; tasks: string[] }>;
  /** A cursor deep into one user's list (the --rows data sets). */
  deep?: { token: string; cursor: string; depth: number };
  /** The same user's deep cursor for each of LISTINGS (keyed by its query), as the API issued it. */
  deeps?: Record<string, { cursor: string; depth: number }>;
  /** The first page of that user. */
  heavy?: { token: string };
}

interface Request {
  method: 'GET' | 'POST' | 'PATCH';
  path: string;
  headers: Record<string, string>;
  body?: string;
}

export interface Scenario {
  name: string;
  label: string;
  request(fixture: Fixture): Request;
}

const pick = <T>(list: readonly T[]): T => list[Math.floor(Math.random() * list.length)] as T;
const json = { 'content-type': 'application/json' };
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

function anyTask(fixture: Fixture): { token: string; id: string } {
  const user = pick(fixture.users);
  return { token: user.token, id: pick(user.tasks) };
}

/** The comparison's scenarios: each request picks a random seeded user (and one of their tasks). */
export const SCENARIOS: Scenario[] = [
  {
    name: 'list',
    label: 'GET /api/tasks?limit=50',
    request: (f) => ({ method: 'GET', path: '/api/tasks?limit=50', headers: bearer(pick(f.users).token) }),
  },
  {
    name: 'get',
    label: 'GET /api/tasks/{id}',
    request: (f) => {
      const { token, id } = anyTask(f);
      return { method: 'GET', path: `/api/tasks/${id}`, headers: bearer(token) };
    },
  },
  {
    name: 'create',
    label: 'POST /api/tasks',
    request: (f) => ({ method: 'POST', path: '/api/tasks', headers: { ...bearer(pick(f.users).token), ...json }, body: '{"title":"benchmark task"}' }),
  },
  {
    name: 'patch',
    label: 'PATCH /api/tasks/{id} status',
    request: (f) => {
      const { token, id } = anyTask(f);
      const status = Math.random() < 0.5 ? 'completed' : 'pending';
      return { method: 'PATCH', path: `/api/tasks/${id}`, headers: { ...bearer(token), ...json }, body: `{"status":"${status}"}` };
    },
  },
  {
    name: 'create-idem',
    label: 'POST /api/tasks + Idempotency-Key',
    request: (f) => ({
      method: 'POST',
      path: '/api/tasks',
      // A new key per request: every one is a first attempt, none a replay.
      headers: { ...bearer(pick(f.users).token), ...json, 'idempotency-key': randomUUID() },
      body: '{"title":"benchmark task"}',
    }),
  },
  {
    name: 'list-position',
    label: 'GET /api/tasks?sort=position',
    request: (f) => ({ method: 'GET', path: '/api/tasks?limit=50&sort=position', headers: bearer(pick(f.users).token) }),
  },
  {
    name: 'search',
    label: `GET /api/tasks?q=${SEARCH_TERM}`,
    request: (f) => ({ method: 'GET', path: `/api/tasks?limit=50&q=${SEARCH_TERM}`, headers: bearer(pick(f.users).token) }),
  },
  {
    // Drag and drop among a user's first few tasks (their keys grow, and now and then the
    // user's 50 keys are renumbered, as in real use), or to the top.
    name: 'move',
    label: 'POST /api/tasks/{id}/move',
    request: (f) => {
      const user = pick(f.users);
      const few = user.tasks.slice(0, 4);
      const id = pick(few);
      const others = few.filter((t) => t !== id);
      const body = Math.random() < 0.5 || others.length === 0 ? '{"to":"top"}' : `{"before":"${pick(others)}"}`;
      return { method: 'POST', path: `/api/tasks/${id}/move`, headers: { ...bearer(user.token), ...json }, body };
    },
  },
];

/** The list queries of the --rows sets, each read first page and deep: every sort, with and without a status filter. */
export const LISTINGS: string[] = ['created', 'position', 'due', 'updated'].flatMap((sort) => [`sort=${sort}`, `sort=${sort}&status=pending`]);

/** The heavy user's first page and deep page of each of LISTINGS. */
const LISTING_SCENARIOS: Scenario[] = LISTINGS.flatMap((listing) => [
  {
    name: `list-heavy?${listing}`,
    label: `?${listing}, first page (the heavy user)`,
    request: (f: Fixture): Request => ({ method: 'GET', path: `/api/tasks?limit=50&${listing}`, headers: bearer(required(f.heavy, 'heavy').token) }),
  },
  {
    name: `list-deep?${listing}`,
    label: `?${listing}, page 500 deep (the heavy user)`,
    request: (f: Fixture): Request => {
      const deep = required(f.deeps?.[listing], `deep ${listing}`);
      return { method: 'GET', path: `/api/tasks?limit=50&${listing}&cursor=${deep.cursor}`, headers: bearer(required(f.heavy, 'heavy').token) };
    },
  },
]);

/** The --rows scenarios: the same reads and writes on a small and a large data set. */
export const SIZE_SCENARIOS: Scenario[] = [
  {
    name: 'list',
    label: 'list, first page (users with 100)',
    request: (f) => ({ method: 'GET', path: '/api/tasks?limit=50', headers: bearer(pick(f.users).token) }),
  },
  {
    name: 'list-heavy',
    label: 'list, first page (the heavy user)',
    request: (f) => ({ method: 'GET', path: '/api/tasks?limit=50', headers: bearer(required(f.heavy, 'heavy').token) }),
  },
  {
    name: 'list-deep',
    label: 'list, page 500 deep (the heavy user)',
    request: (f) => {
      const deep = required(f.deep, 'deep');
      return { method: 'GET', path: `/api/tasks?limit=50&cursor=${deep.cursor}`, headers: bearer(deep.token) };
    },
  },
  { ...(SCENARIOS[1] as Scenario), label: 'get' },
  { ...(SCENARIOS[3] as Scenario), label: 'patch status' },
  // A full sync's first page: seeded rows are at change position 0, so it reads the feed's index from its start.
  {
    name: 'feed',
    label: 'change feed, first page (users with 100)',
    request: (f) => ({ method: 'GET', path: '/api/tasks/changes?limit=50', headers: bearer(pick(f.users).token) }),
  },
  {
    name: 'feed-heavy',
    label: 'change feed, first page (the heavy user)',
    request: (f) => ({ method: 'GET', path: '/api/tasks/changes?limit=50', headers: bearer(required(f.heavy, 'heavy').token) }),
  },
  ...LISTING_SCENARIOS,
  {
    name: 'search',
    label: `?q=${SEARCH_TERM}, first page (users with 100)`,
    request: (f) => ({ method: 'GET', path: `/api/tasks?limit=50&q=${SEARCH_TERM}`, headers: bearer(pick(f.users).token) }),
  },
  {
    name: 'search-heavy',
    label: `?q=${SEARCH_TERM}, first page (the heavy user)`,
    request: (f) => ({ method: 'GET', path: `/api/tasks?limit=50&q=${SEARCH_TERM}`, headers: bearer(required(f.heavy, 'heavy').token) }),
  },
];

function required<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`the fixture has no ${what} user`);
  return value;
}

/** All scenarios at once, one picked at random per request (the soak). */
export function mixed(scenarios: Scenario[]): Scenario {
  return { name: 'mixed', label: `mixed (${scenarios.map((s) => s.name).join(', ')})`, request: (f) => pick(scenarios).request(f) };
}

export function signer(secret: string): (userId: string) => string {
  const sign = createSigner({ key: secret, algorithm: 'HS256', expiresIn: 4 * 3_600_000 });
  return (userId) => sign({ sub: userId, email: `${userId}@example.com` });
}

export interface Measurement {
  rps: number;
  p50: number;
  p99: number;
  requests: number;
  /** non-2xx answers, socket errors and timeouts: any makes the row suspect. */
  failures: number;
}

/**
 * The median over rounds of `of(a[i], b[i])`: each round of one server against the other's
 * round beside it in time (issue 21: median ratios), so that a round the machine slowed
 * for one server alone moves the figure less than a ratio of totals would.
 */
export function medianRatio<T>(a: readonly T[], b: readonly T[], of: (x: T, y: T) => number | undefined): number | undefined {
  const ratios = a.flatMap((x, i) => {
    const y = b[i];
    const r = y === undefined ? undefined : of(x, y);
    return r === undefined || !Number.isFinite(r) ? [] : [r];
  });
  if (ratios.length === 0 || ratios.length !== a.length) return undefined;
  ratios.sort((p, q) => p - q);
  const mid = ratios.length >> 1;
  return ratios.length % 2 === 1 ? ratios[mid] : ((ratios[mid - 1] ?? 0) + (ratios[mid] ?? 0)) / 2;
}
export interface LoadOptions {
  connections: number;
  /** Seconds. */
  duration: number;
  /** Instead of a duration: exactly this many requests (a smoke test's short run). */
  requests?: number | undefined;
}

/** Load over real HTTP; the load generator shares the machine, equally for every server. */
export async function load(url: string, scenario: Scenario, fixture: Fixture, options: LoadOptions): Promise<Measurement> {
  const result = await autocannon({
    url,
    connections: options.connections,
    // A count of requests ends when they are answered: sampled every 50 ms, not once a second.
    ...(options.requests === undefined ? { duration: options.duration } : { amount: options.requests, sampleInt: 50 }),
    requests: [{ setupRequest: (req) => ({ ...req, ...scenario.request(fixture) }) }],
  });
  return {
    // autocannon averages per-sample counts: per second with a duration; a count of requests
    // is sampled every 50 ms, so its rate is the total over the elapsed time.
    rps:
      options.requests === undefined
        ? result.requests.average
        : result.requests.total / Math.max((result.finish.getTime() - result.start.getTime()) / 1000, 0.001),
    p50: result.latency.p50,
    p99: result.latency.p99,
    requests: result.requests.total,
    failures: result.non2xx + result.errors + result.timeouts,
  };
}
