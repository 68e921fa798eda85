/**
 * `npm run bench`: throughput and latency of the main operations over real HTTP on
 * loopback, against a real PostgreSQL (DATABASE_URL, or an embedded one in a temp
 * directory). Run on demand, never in CI's test suite. Each run is bounded:
 * BENCH_SECONDS per scenario (default 5), BENCH_CONNECTIONS (default 20).
 *
 * Goals (on the 2-core reference machine): every scenario p99 under 50 ms with
 * no non-2xx answers. The script exits 1 when a goal is missed.
 */
import autocannon from 'autocannon';
import { rm } from 'node:fs/promises';
import { createSigner } from 'fast-jwt';
import postgres from 'postgres';
import { buildApp } from '../src/app.ts';
import { createSql } from '../src/db/client.ts';
import { makeTemporaryDataDir, startEmbeddedPostgres, type EmbeddedDatabase } from '../src/dev/embedded.ts';
import { migrate } from '../src/db/migrate.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 20);
const P99_GOAL_MS = 50;
const SECRET = 'bench-secret-bench-secret-bench-secret!!';

let embedded: EmbeddedDatabase | undefined;
let dir: string | undefined;
let url = process.env.DATABASE_URL;
if (!url) {
  dir = await makeTemporaryDataDir('todo-api-bench-');
  embedded = await startEmbeddedPostgres({ dataDir: dir });
  url = embedded.url;
}

const schema = `bench_${Date.now()}`;
const admin = postgres(url, { max: 1, onnotice: () => {} });
await admin.unsafe(`CREATE SCHEMA ${schema}`);
const scoped = new URL(url);
scoped.searchParams.set('search_path', schema);
const sql = createSql(scoped.toString(), { max: 10 });
await migrate(sql);

// Rate limits off: the benchmark is one user sending as fast as it can.
const app = await buildApp({ sql, secretKey: SECRET, corsOrigins: [], rateLimitPerMinute: 0, authFailureLimitPerMinute: 0 });
const address = await app.listen({ port: 0, host: '127.0.0.1' });
const sign = createSigner({ key: SECRET, algorithm: 'HS256', expiresIn: 3_600_000 });
const auth = { authorization: `Bearer ${sign({ sub: 'bench-user', email: 'bench@example.com' })}`, 'content-type': 'application/json' };

// A user with a realistic backlog, and some other users around them.
await sql`INSERT INTO users (id) SELECT 'user-' || g FROM generate_series(1, 100) g UNION ALL SELECT 'bench-user'`;
await sql`
  INSERT INTO tasks (user_id, title, status, created_at)
  SELECT CASE WHEN g % 10 = 0 THEN 'bench-user' ELSE 'user-' || (g % 100 + 1) END,
         'task ' || g, CASE WHEN g % 3 = 0 THEN 'completed' ELSE 'pending' END,
         now() - g * interval '1 second'
  FROM generate_series(1, 20000) g`;
await sql`ANALYZE tasks`;
const [one] = await sql<{ id: string }[]>`SELECT id FROM tasks WHERE user_id = 'bench-user' LIMIT 1`;

const scenarios: Array<{ name: string; method: 'GET' | 'POST'; path: string; body?: string }> = [
  { name: 'GET /health', method: 'GET', path: '/health' },
  { name: 'GET /api/tasks (50 of 2000)', method: 'GET', path: '/api/tasks' },
  { name: 'GET /api/tasks?status=completed', method: 'GET', path: '/api/tasks?status=completed&limit=20' },
  { name: 'GET /api/tasks/{id}', method: 'GET', path: `/api/tasks/${one?.id}` },
  { name: 'POST /api/tasks', method: 'POST', path: '/api/tasks', body: JSON.stringify({ title: 'benchmark task' }) },
];

let missed = 0;
console.log(`${SECONDS}s per scenario, ${CONNECTIONS} connections\n`);
console.log('scenario'.padEnd(36), 'req/s'.padStart(8), 'p50 ms'.padStart(8), 'p99 ms'.padStart(8), 'non-2xx'.padStart(8), ' goal');
for (const s of scenarios) {
  const result = await autocannon({
    url: `${address}${s.path}`,
    method: s.method,
    headers: auth,
    ...(s.body !== undefined && { body: s.body }),
    connections: CONNECTIONS,
    duration: SECONDS,
    // The load generator gets its own thread, so it does not eat the server's event loop.
    workers: 1,
  });
  const ok = result.latency.p99 < P99_GOAL_MS && result.non2xx === 0 && result.errors === 0;
  if (!ok) missed++;
  console.log(
    s.name.padEnd(36),
    String(Math.round(result.requests.average)).padStart(8),
    String(result.latency.p50).padStart(8),
    String(result.latency.p99).padStart(8),
    String(result.non2xx + result.errors).padStart(8),
    ok ? ' met' : ' MISSED',
  );
}

await app.close();
await admin.unsafe(`DROP SCHEMA ${schema} CASCADE`);
await admin.end();
await embedded?.stop();
if (dir) await rm(dir, { recursive: true, force: true });
process.exit(missed > 0 ? 1 : 0);
