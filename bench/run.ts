/**
 * `npm run bench`: this API against a minimal server on the same stack (bench/minimal-server.ts),
 * side by side in one run, over real HTTP on loopback, each on a fresh database with the
 * same seed. Only ratios from one run count: absolute figures move with the machine's load.
 *
 *   npm run bench                                   the comparison table (issue 11, goals 1 and 2)
 *   npm run bench -- --scenarios get,create --duration 5
 *   npm run bench -- --rows                         p50 on 1,000 tasks vs 1,100,000 (goal 3)
 *   npm run bench -- --soak 300                     the API's RSS across a 5-minute soak (goal 4)
 *   npm run bench -- --cpu-prof bench/profiles      each server writes a .cpuprofile on exit
 *   npm run bench -- --workers 2                    WEB_CONCURRENCY for the API (goal 5, once the API reads it)
 *   npm run bench -- --pgbouncer                    both servers through PgBouncer, transaction mode (goal 5)
 *   npm run bench -- --api-env LOG_LEVEL=warn       an A/B of one setting (the table's header says so)
 *
 * --rows and --soak run instead of the comparison; give --compare to run it as well.
 * Uses DATABASE_URL's server when set (its role needs CREATEDB), else an embedded PostgreSQL.
 */
import { mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { analyze, bulkLoad, Cluster, sampleTasks, seedUsers } from './database.ts';
import { LISTINGS, load, medianRatio, mixed, SCENARIOS, signer, SIZE_SCENARIOS, type Fixture, type LoadOptions, type Measurement, type Scenario } from './load.ts';
import { buildApi, startServer, type RunningServer, type ServerOptions, type Target } from './servers.ts';
import type { Sql } from '../src/db/client.ts';
import { makeTemporaryDataDir } from '../src/dev/embedded.ts';
import { startPgBouncer, type PgBouncer } from './pgbouncer.ts';

const USAGE = `usage: npm run bench -- [--duration S | --requests N] [--rounds N] [--warmup S] [--connections N] [--scenarios ${SCENARIOS.map((s) => s.name).join(',')}]
                       [--rows [--users N] [--per-user N] [--heavy N]] [--soak S] [--compare]
                       [--cpu-prof DIR] [--workers N] [--pgbouncer] [--api-env NAME=VALUE ...]`;

const SECRET = 'bench-secret-that-is-at-least-32-characters-long';
/** The comparison's seed (issue 11): 200 users x 50 tasks. */
const SEED = { users: 200, perUser: 50 };

const { values } = (() => {
  try {
    return parseArgs({
      options: {
        duration: { type: 'string', default: '10' },
        rounds: { type: 'string', default: '10' },
        requests: { type: 'string' },
        warmup: { type: 'string', default: '2' },
        connections: { type: 'string', default: '32' },
        scenarios: { type: 'string' },
        compare: { type: 'boolean', default: false },
        rows: { type: 'boolean', default: false },
        users: { type: 'string', default: '10000' },
        'per-user': { type: 'string', default: '100' },
        heavy: { type: 'string', default: '100000' },
        soak: { type: 'string' },
        'cpu-prof': { type: 'string' },
        workers: { type: 'string' },
        pgbouncer: { type: 'boolean', default: false },
        'api-env': { type: 'string', multiple: true },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (err) {
    console.error(`${err instanceof Error ? err.message : String(err)}\n${USAGE}`);
    process.exit(2);
  }
})();

if (values.help) {
  console.log(USAGE);
  process.exit(0);
}

function count(name: string, value: string | undefined, min: number): number {
  const n = Number(value);
  if (value === undefined || !Number.isFinite(n) || n < min) {
    console.error(`--${name} must be a number of at least ${min} (got "${value}")\n${USAGE}`);
    process.exit(2);
  }
  return n;
}

const options = {
  duration: count('duration', values.duration, 0.5),
  rounds: count('rounds', values.rounds, 1),
  // A smoke test's mode: each measurement is this many requests, not --duration seconds.
  requests: values.requests === undefined ? undefined : count('requests', values.requests, 1),
  warmup: count('warmup', values.warmup, 0),
  connections: count('connections', values.connections, 1),
  scenarios: selectScenarios(values.scenarios),
  rows: values.rows ? { users: count('users', values.users, 1), perUser: count('per-user', values['per-user'], 1), heavy: count('heavy', values.heavy, 1) } : undefined,
  soak: values.soak === undefined ? undefined : count('soak', values.soak, 1),
  cpuProfDir: values['cpu-prof'] === undefined ? undefined : resolve(values['cpu-prof']),
  workers: values.workers === undefined ? undefined : count('workers', values.workers, 1),
  apiEnv: Object.fromEntries(
    (values['api-env'] ?? []).map((pair) => {
      const at = pair.indexOf('=');
      if (at < 1) {
        console.error(`--api-env takes NAME=VALUE (got "${pair}")`);
        process.exit(2);
      }
      return [pair.slice(0, at), pair.slice(at + 1)];
    }),
  ),
};
const compare = values.compare || (options.rows === undefined && options.soak === undefined);

function selectScenarios(list: string | undefined): Scenario[] {
  if (list === undefined) return SCENARIOS;
  return list.split(',').map((name) => {
    const found = SCENARIOS.find((s) => s.name === name.trim());
    if (!found) {
      console.error(`unknown scenario "${name}"; known: ${SCENARIOS.map((s) => s.name).join(', ')}`);
      process.exit(2);
    }
    return found;
  });
}

// Output piped into `head` must not kill the run before it stops its servers and database.
process.stdout.on('error', () => {});

// Every mode runs the API from its build, as an operator does.
buildApi();
const sign = signer(SECRET);
const workDir = await mkdtemp(join(tmpdir(), 'todo-api-bench-run-'));
if (options.cpuProfDir) await mkdir(options.cpuProfDir, { recursive: true });
const cluster = await Cluster.start(process.env.DATABASE_URL);
// Goal 5: both servers reach their databases through PgBouncer in transaction mode.
const bouncerDir = values.pgbouncer ? await makeTemporaryDataDir('todo-api-bench-pgbouncer-') : undefined;
let bouncer: PgBouncer | undefined;
try {
  if (bouncerDir) bouncer = await startPgBouncer(cluster.url, bouncerDir);
} catch (err) {
  console.error(`bench failed: ${err instanceof Error ? err.message : String(err)}`);
  await cluster.stop();
  if (bouncerDir) await rm(bouncerDir, { recursive: true, force: true });
  process.exit(1);
}
const servers: RunningServer[] = [];
const sqls: Sql[] = [];
const urls = new Map<Sql, string>();
const urlOf = (sql: Sql) => urls.get(sql) as string;
/** Requests each server answered, warm-ups included: a profile's CPU time divided by it is the cost of one. */
const served = new Map<RunningServer, number>();

async function cleanup(): Promise<void> {
  if (options.cpuProfDir && served.size > 0) {
    console.log(`\nRequests answered while profiled: ${[...served].map(([s, n]) => `${s.target} ${num(n)}`).join(', ')}`);
    served.clear();
  }
  await Promise.all(servers.splice(0).map((s) => s.stop()));
  await Promise.all(sqls.splice(0).map((s) => s.end({ timeout: 5 })));
  await bouncer?.stop();
  bouncer = undefined;
  if (bouncerDir) await rm(bouncerDir, { recursive: true, force: true });
  await cluster.stop();
  await rm(workDir, { recursive: true, force: true });
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.error(`\n${signal}: stopping the servers and the database`);
    void cleanup().finally(() => process.exit(130));
  });
}

async function server(target: Target, databaseUrl: string, label: string = target): Promise<RunningServer> {
  const serverOptions: ServerOptions = {
    target,
    databaseUrl: bouncer ? bouncer.route(databaseUrl) : databaseUrl,
    secretKey: SECRET,
    logFile: join(workDir, `${label}.log`),
    cpuProfDir: options.cpuProfDir && join(options.cpuProfDir, label),
    workers: target === 'api' ? options.workers : undefined,
    env: target === 'api' ? options.apiEnv : {},
  };
  const started = await startServer(serverOptions);
  servers.push(started);
  return started;
}

async function stopServer(s: RunningServer): Promise<void> {
  servers.splice(servers.indexOf(s), 1);
  await s.stop();
}

async function database(label: string): Promise<Sql> {
  const { url, sql } = await cluster.freshDatabase(label);
  sqls.push(sql);
  urls.set(sql, url);
  return sql;
}

async function fixture(sql: Sql, users: number): Promise<Fixture> {
  const tasks = await sampleTasks(sql, users);
  return { users: [...tasks].map(([id, ids]) => ({ id, token: sign(id), tasks: ids })) };
}

/** A measurement plus the server's CPU time per request (µs), which the machine's other load disturbs less than req/s. */
type Measured = Measurement & { cpu: number | undefined };

/** A warm-up (discarded, unless `warmup` is false), then the measured run. */
async function measure(s: RunningServer, scenario: Scenario, fx: Fixture, loadOptions: LoadOptions = options, warmup = true): Promise<Measured> {
  const count = (m: Measurement) => served.set(s, (served.get(s) ?? 0) + m.requests);
  if (warmup && options.warmup > 0) count(await load(s.url, scenario, fx, { ...loadOptions, duration: options.warmup }));
  const before = s.cpu();
  const m = await load(s.url, scenario, fx, loadOptions);
  const after = s.cpu();
  count(m);
  const cpu = before !== undefined && after !== undefined && m.requests > 0 ? ((after - before) * 1e6) / m.requests : undefined;
  return { ...m, cpu };
}

/**
 * Rounds of one scenario, combined: req/s and CPU over all of them, p50 and p99 the
 * median round's. Short alternating rounds let both servers meet the machine's
 * changing load alike, where one long run each can land in a quiet or a busy spell.
 */
function combine(rounds: Measured[], seconds: number): Measured {
  const requests = rounds.reduce((sum, m) => sum + m.requests, 0);
  const median = (pick: (m: Measured) => number) => {
    const sorted = rounds.map(pick).sort((a, b) => a - b);
    return sorted[Math.floor(sorted.length / 2)] ?? 0;
  };
  const known = rounds.every((m) => m.cpu !== undefined) && requests > 0;
  return {
    rps: requests / seconds,
    p50: median((m) => m.p50),
    p99: median((m) => m.p99),
    requests,
    failures: rounds.reduce((sum, m) => sum + m.failures, 0),
    cpu: known ? rounds.reduce((sum, m) => sum + (m.cpu ?? 0) * m.requests, 0) / requests : undefined,
  };
}

const throughputRatio = (x: Measured, y: Measured) => (y.rps > 0 ? x.rps / y.rps : undefined);
const cpuRatio = (x: Measured, y: Measured) => (x.cpu !== undefined && y.cpu !== undefined && x.cpu > 0 ? y.cpu / x.cpu : undefined);
const fixed = (r: number | undefined) => (r === undefined ? 'n/a' : r.toFixed(2));

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`;
  return [line(head), rule, ...rows.map(line)].join('\n');
}

const num = (n: number) => Math.round(n).toLocaleString('en-US');
const ms = (n: number) => (n < 10 ? n.toFixed(1) : String(Math.round(n)));
const ratio = (a: number, b: number) => (b > 0 ? (a / b).toFixed(2) : 'n/a');
/** Latencies in ratios: autocannon's are whole milliseconds, so under 1 ms counts as 1 ms. */
const latencyRatio = (a: number, b: number) => ratio(Math.max(a, 1), Math.max(b, 1));
const us = (n: number | undefined) => (n === undefined ? 'n/a' : String(Math.round(n)));
const mb = (bytes: number | undefined) => (bytes === undefined ? 'n/a' : `${Math.round(bytes / 1048576)} MB`);

/** Polls a server's RSS once a second while `work` runs. */
async function withRss<T>(s: RunningServer, work: () => Promise<T>): Promise<{ result: T; samples: number[] }> {
  const samples: number[] = [];
  const sample = () => {
    const rss = s.rss();
    if (rss !== undefined) samples.push(rss);
  };
  sample();
  const timer = setInterval(sample, 1000);
  try {
    const result = await work();
    sample();
    return { result, samples };
  } finally {
    clearInterval(timer);
  }
}

async function logLines(file: string): Promise<string> {
  try {
    const size = (await stat(file)).size;
    const lines = (await readFile(file, 'utf8')).split('\n').length - 1;
    return `${num(lines)} lines, ${mb(size)}`;
  } catch {
    return 'none';
  }
}

function header(): void {
  console.log(
    `# ${new Date().toISOString()} · node ${process.version} · ${options.connections} connections · ` +
      `${options.requests === undefined ? `${options.duration} s` : `${options.requests} requests`} per scenario after ${options.warmup} s warm-up · ` +
      `${cluster.isEmbedded ? 'embedded PostgreSQL' : 'DATABASE_URL'}${bouncer ? ' through PgBouncer (transaction mode, prepare=false)' : ''}${options.workers ? ` · WEB_CONCURRENCY=${options.workers}` : ''}` +
      Object.entries(options.apiEnv)
        .map(([k, v]) => ` · API with ${k}=${v}`)
        .join(''),
  );
}

/** Goal 1: both servers, same seed, one table. */
async function comparison(): Promise<boolean> {
  // The same-work comparator is the reference; the floor (no log line, no headers) a second one.
  const targets: Target[] = ['api', 'minimal', 'floor'];
  const running = new Map<Target, { server: RunningServer; fixture: Fixture; rss: number[] }>();
  for (const target of targets) {
    const sql = await database(target);
    await seedUsers(sql, SEED.users, SEED.perUser);
    await analyze(sql);
    const fx = await fixture(sql, SEED.users);
    running.set(target, { server: await server(target, urlOf(sql)), fixture: fx, rss: [] });
  }
  console.log(`\n## This API vs a minimal server on the same stack, doing the same work and bare (seed: ${SEED.users} users x ${SEED.perUser} tasks)\n`);
  // Rounds of at least a second; --duration is each server's total per scenario.
  const rounds = Math.max(1, Math.min(options.rounds, Math.floor(options.duration)));
  const roundSeconds = options.duration / rounds;
  const roundLoad = { connections: options.connections, duration: roundSeconds, requests: options.requests };
  if (rounds > 1) console.log(`Each scenario: ${rounds} rounds of ${roundSeconds.toFixed(1)} s per server, alternating.\n`);
  if (options.workers !== undefined) {
    // Until the API reads WEB_CONCURRENCY, say so rather than print a table that claims it.
    console.log(`The API runs as ${running.get('api')?.server.processes()} Node.js process(es) with WEB_CONCURRENCY=${options.workers}.\n`);
  }
  const rows: string[][] = [];
  let failures = 0;
  for (const [i, scenario] of options.scenarios.entries()) {
    const measured = new Map<Target, Measured[]>(targets.map((target) => [target, []]));
    for (let round = 0; round < rounds; round++) {
      // Alternate who goes first, so neither always meets the machine in the same state.
      for (const target of (i + round) % 2 === 0 ? targets : [...targets].reverse()) {
        const r = running.get(target);
        if (!r) continue;
        const { result, samples } = await withRss(r.server, () => measure(r.server, scenario, r.fixture, roundLoad, round === 0));
        r.rss.push(...samples);
        measured.get(target)?.push(result);
        failures += result.failures;
      }
    }
    const apiRounds = measured.get('api') ?? [];
    const minRounds = measured.get('minimal') ?? [];
    const floorRounds = measured.get('floor') ?? [];
    const api = combine(apiRounds, options.duration);
    const min = combine(minRounds, options.duration);
    const floor = combine(floorRounds, options.duration);
    const flag = (m: Measurement) => (m.failures > 0 ? ` (${num(m.failures)} failed)` : '');
    rows.push([
      scenario.label,
      num(api.rps) + flag(api),
      ms(api.p50),
      ms(api.p99),
      num(min.rps) + flag(min),
      ms(min.p50),
      ms(min.p99),
      fixed(medianRatio(apiRounds, minRounds, throughputRatio)),
      latencyRatio(api.p99, min.p99),
      us(api.cpu),
      us(min.cpu),
      fixed(medianRatio(apiRounds, minRounds, cpuRatio)),
      num(floor.rps) + flag(floor),
      fixed(medianRatio(apiRounds, floorRounds, throughputRatio)),
      fixed(medianRatio(apiRounds, floorRounds, cpuRatio)),
    ]);
  }
  console.log(
    table(
      ['scenario', 'API req/s', 'p50 ms', 'p99 ms', 'minimal req/s', 'p50 ms', 'p99 ms', 'ratio req/s', 'ratio p99', 'API CPU µs/req', 'minimal', 'ratio CPU', 'floor req/s', 'ratio req/s (floor)', 'ratio CPU (floor)'],
      rows,
    ),
  );
  console.log(
    '\nminimal: the same-work comparator (the same headers and one pino line per request, as the API); floor: the bare one (neither). ' +
      'ratio req/s and ratio CPU: API / minimal throughput and minimal / API CPU per request (1.00 = as cheap as minimal; ' +
      'CPU time is read from /proc and is steadier than req/s on a busy machine), each the median over rounds of one round ' +
      "against the other server's round beside it. ratio p99: API / minimal.",
  );
  const api = running.get('api');
  const min = running.get('minimal');
  console.log(
    `\nRSS max: API ${mb(Math.max(...(api?.rss ?? [0])))}, minimal ${mb(Math.max(...(min?.rss ?? [0])))}. ` +
      `API log (${options.apiEnv.LOG_LEVEL ?? 'info'}): ${await logLines(join(workDir, 'api.log'))}; ` +
      `the same-work comparator's (info): ${await logLines(join(workDir, 'minimal.log'))}.`,
  );
  if (failures > 0) console.log(`\n${num(failures)} requests failed (non-2xx, errors or timeouts): the figures above are suspect.`);
  return failures === 0;
}

/** Goal 3: the API on 1,000 tasks and on the large set, p50 side by side. */
async function sizes(rows: { users: number; perUser: number; heavy: number }): Promise<boolean> {
  const sets = [
    // 1,000 tasks; the heavy user's 200 make every listing's deep page a full page reached by a cursor.
    { name: 'small', users: 8, perUser: 100, heavy: 200 },
    { name: 'large', ...rows },
  ];
  const running = new Map<string, { server: RunningServer; fixture: Fixture; depth: number; depths: string[] }>();
  for (const set of sets) {
    const sql = await database(set.name);
    const started = Date.now();
    await bulkLoad(sql, async (tx) => {
      await seedUsers(tx, set.users, set.perUser);
      await seedUsers(tx, 1, set.heavy, 'heavy-');
    });
    await analyze(sql);
    const total = set.users * set.perUser + set.heavy;
    console.log(`# ${set.name}: ${num(total)} tasks (${num(set.users)} users x ${set.perUser}, one with ${num(set.heavy)}) built in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    const fx = await fixture(sql, Math.min(set.users, 500));
    const s = await server('api', urlOf(sql), `api-${set.name}`);
    const heavy = sign('heavy-1');
    // Cursors the API issued: followed from the first page, each listing at once.
    const [deep, ...deeps] = await Promise.all([walk(s.url, heavy, 500), ...LISTINGS.map((listing) => walk(s.url, heavy, 500, listing))]);
    if (!deep) throw new Error('no deep cursor');
    fx.heavy = { token: heavy };
    fx.deep = { token: heavy, ...deep };
    fx.deeps = Object.fromEntries(LISTINGS.map((listing, i) => [listing, deeps[i] as { cursor: string; depth: number }]));
    running.set(set.name, { server: s, fixture: fx, depth: deep.depth, depths: LISTINGS.map((listing, i) => `${deeps[i]?.depth} (${listing})`) });
  }
  const results = new Map<string, Measured>();
  let failures = 0;
  for (const [i, scenario] of SIZE_SCENARIOS.entries()) {
    // Both servers stay up; who goes first alternates, as in the comparison.
    for (const set of i % 2 === 0 ? sets : [...sets].reverse()) {
      const r = running.get(set.name);
      if (!r) continue;
      const m = await measure(r.server, scenario, r.fixture);
      failures += m.failures;
      results.set(`${set.name} ${scenario.name}`, m);
    }
  }
  const totals = sets.map((s) => num(s.users * s.perUser + s.heavy));
  console.log(`\n## The API at ${totals[0]} tasks vs ${totals[1]} (p50 ratio: goal at most 1.3)\n`);
  console.log(
    table(
      ['scenario', `p50 ms (${totals[0]})`, `p50 ms (${totals[1]})`, 'ratio p50', `req/s (${totals[0]})`, `req/s (${totals[1]})`],
      SIZE_SCENARIOS.map((scenario) => {
        const a = results.get(`small ${scenario.name}`) as Measurement;
        const b = results.get(`large ${scenario.name}`) as Measurement;
        return [scenario.label, ms(a.p50), ms(b.p50), latencyRatio(b.p50, a.p50), num(a.rps), num(b.rps)];
      }),
    ),
  );
  console.log(
    `\nThe deep page is page ${running.get('large')?.depth} in the large set and page ${running.get('small')?.depth} (the last full one) in the small one.`,
  );
  console.log(`Deep pages of the sorted lists, large set: ${running.get('large')?.depths.join(', ')}; small set: ${running.get('small')?.depths.join(', ')}.`);
  for (const r of running.values()) await stopServer(r.server);
  if (failures > 0) console.log(`\n${num(failures)} requests failed: the figures above are suspect.`);
  return failures === 0;
}

/**
 * Follows next_cursor up to `pages` pages of a listing (`sort=due&status=pending`, say); the
 * cursor of the deepest page reached that is full (a shorter last page would be less work
 * than the large set's deep page), and that page's number.
 */
async function walk(url: string, token: string, pages: number, listing = ''): Promise<{ cursor: string; depth: number }> {
  const cursors: string[] = []; // cursors[i]: the cursor of page i + 2
  for (let depth = 1; depth < pages; depth++) {
    const cursor = cursors.at(-1);
    const res = await fetch(`${url}/api/tasks?limit=50${listing ? `&${listing}` : ''}${cursor ? `&cursor=${cursor}` : ''}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    if (!res.ok) throw new Error(`walking the pages: ${res.status} ${await res.text()}`);
    const page = (await res.json()) as { items: unknown[]; next_cursor: string | null };
    if (page.next_cursor === null) {
      // The last page: itself if it is full, else the one before it.
      if (page.items.length < 50 && depth > 2) cursors.pop();
      break;
    }
    cursors.push(page.next_cursor);
  }
  const cursor = cursors.at(-1);
  if (cursor === undefined) throw new Error('the heavy user has a single page: no cursor to follow');
  return { cursor, depth: cursors.length + 1 };
}

/** Goal 4: a mixed load for `seconds`, the API's RSS sampled from /proc. */
async function soak(seconds: number): Promise<boolean> {
  const sql = await database('soak');
  await seedUsers(sql, SEED.users, SEED.perUser);
  await analyze(sql);
  const fx = await fixture(sql, SEED.users);
  const s = await server('api', urlOf(sql), 'api-soak');
  const scenario = mixed(options.scenarios);
  console.log(`\n## Soak: the API under ${scenario.label} for ${seconds} s\n`);
  const { result, samples } = await withRss(s, () => load(s.url, scenario, fx, { connections: options.connections, duration: seconds }));
  const at = (t: number) => samples[Math.min(samples.length - 1, t)];
  const every = Math.max(1, Math.floor(seconds / 10));
  const points: string[][] = [];
  for (let t = 0; t < samples.length; t += every) points.push([`${t} s`, mb(at(t))]);
  console.log(table(['time', 'RSS'], points));
  console.log(
    `\nRSS start ${mb(samples[0])}, end ${mb(samples.at(-1))}, max ${mb(Math.max(...samples))} (goal: under 150 MB, flat) · ` +
      `${num(result.rps)} req/s, p50 ${ms(result.p50)} ms, p99 ${ms(result.p99)} ms` +
      (result.failures > 0 ? `, ${num(result.failures)} failed` : ''),
  );
  await stopServer(s);
  return result.failures === 0;
}

let ok = true;
try {
  header();
  if (compare) ok = (await comparison()) && ok;
  if (options.rows) ok = (await sizes(options.rows)) && ok;
  if (options.soak !== undefined) ok = (await soak(options.soak)) && ok;
} catch (err) {
  ok = false;
  console.error(`bench failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
} finally {
  await cleanup();
}
if (options.cpuProfDir) {
  console.log(`\nCPU profiles in ${options.cpuProfDir}/<server>/, the main thread's is the largest file; summarise it with:`);
  console.log('  node --import tsx bench/profile-summary.ts FILE.cpuprofile');
}
process.exit(ok ? 0 : 1);
