/**
 * A smoke test of `npm run bench` (issue 11): it runs end to end, briefly, and prints its
 * tables with every scenario. It asserts no speed: figures from a test run mean nothing.
 * Each run also proves that every scenario's requests succeed on both servers (the bench
 * exits 1 when any request fails).
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { medianRatio, SCENARIOS, SIZE_SCENARIOS } from '../bench/load.ts';
import { databaseUrl } from './helper.ts';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../', import.meta.url));

// Three short runs of the bench (one round each), each starting its servers.
t.setTimeout(600_000);
// The three runs are independent (each its own servers and databases): run them side by side.
t.jobs = 3;

function bench(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/run.ts', ...args], {
    cwd: ROOT,
    env: { ...process.env, DATABASE_URL: databaseUrl() },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, out, err })));
}

const cells = (out: string, label: string) =>
  out
    .split('\n')
    .find((line) => line.startsWith(`| ${label} `))
    ?.split('|')
    .slice(2, -1)
    .map((c) => c.trim());

const FIGURE = /^\d[\d,.]*$/;

t.test('ratios are the median over rounds of each round against the one beside it', async (t) => {
  const cpu = (us: number) => ({ cpu: us });
  const cheaper = (x: { cpu: number }, y: { cpu: number }) => y.cpu / x.cpu;
  // One round where the machine slowed the API alone: a ratio of totals would say 0.60.
  const api = [100, 100, 500, 100, 100].map(cpu);
  const other = [110, 90, 100, 100, 120].map(cpu);
  t.equal(medianRatio(api, other, cheaper), 1, 'the middle one of 1.1, 0.9, 0.2, 1.0, 1.2');
  t.equal(medianRatio(api.slice(0, 4), other.slice(0, 4), cheaper), (0.9 + 1) / 2, 'an even count: the mean of the middle two');
  t.equal(medianRatio(api, other.slice(0, 3), cheaper), undefined, 'a round without its pair: no figure');
  t.equal(medianRatio(api, other, () => undefined), undefined, 'no measurement: no figure');
});

t.test('the comparison prints one row per scenario with both servers and their ratios', async (t) => {
  // One short round per scenario: this proves that the bench runs, not how fast anything is.
  const { code, out, err } = await bench(['--requests', '200', '--rounds', '1', '--warmup', '0', '--connections', '4']);
  t.equal(code, 0, `the bench succeeds${code === 0 ? '' : `:\n${out}\n${err}`}`);
  t.match(
    out,
    /\| scenario +\| API req\/s \| p50 ms \| p99 ms \| minimal req\/s \| p50 ms \| p99 ms \| ratio req\/s \| ratio p99 \| API CPU µs\/req \| minimal \| ratio CPU \| floor req\/s \| ratio req\/s \(floor\) \| ratio CPU \(floor\) \|/,
  );
  for (const scenario of SCENARIOS) {
    const row = cells(out, scenario.label);
    t.equal(row?.length, 14, `a row for ${scenario.name}`);
    t.ok(row?.every((c) => FIGURE.test(c)), `${scenario.name}: fourteen figures (both comparators), no failed requests (${row?.join(' | ')})`);
  }
  // The API logs as an operator runs it: at info, into a file, not onto the terminal.
  t.match(out, /API log \(info\): [1-9][\d,]* lines/, 'the API wrote its request log to a file');
  t.notMatch(out, /"level":\d+/, 'no log line reached the terminal');
  t.match(out, /the same-work comparator's \(info\): [1-9][\d,]* lines/, 'the same-work comparator wrote its request lines too');
});

t.test('--rows and --soak print the size table and the RSS', async (t) => {
  const { code, out, err } = await bench(
    ['--rows', '--users', '20', '--heavy', '3000', '--soak', '1', '--requests', '100', '--rounds', '1', '--warmup', '0', '--connections', '4'],
  );
  t.equal(code, 0, `the bench succeeds${code === 0 ? '' : `:\n${out}\n${err}`}`);
  t.match(out, /## The API at 1,000 tasks vs 5,000/);
  for (const scenario of SIZE_SCENARIOS) {
    const row = cells(out, scenario.label);
    t.ok(row?.length === 5 && row.every((c) => FIGURE.test(c)), `${scenario.label}: five figures (${row?.join(' | ')})`);
  }
  t.match(out, /The deep page is page 60 in the large set and page 4 \(the last full one\) in the small one/, 'the deep page was walked to');
  t.notMatch(out, /## This API vs a minimal server/, 'no comparison unless --compare');
  t.match(out, /RSS start \d+ MB, end \d+ MB, max \d+ MB/, 'the soak reports RSS from /proc');
});

t.test('--pgbouncer, --api-env and --cpu-prof reach the servers', async (t) => {
  const hasPgBouncer = ['/usr/sbin', '/usr/local/sbin', ...(process.env.PATH ?? '').split(':')].some((d) => existsSync(join(d, 'pgbouncer')));
  const profiles = t.testdir({});
  const { code, out, err } = await bench([
    '--scenarios', 'get', '--requests', '500', '--rounds', '1', '--warmup', '0', '--connections', '4',
    '--api-env', 'LOG_LEVEL=warn', '--cpu-prof', profiles,
    ...(hasPgBouncer ? ['--pgbouncer'] : []),
  ]);
  t.equal(code, 0, `the bench succeeds${code === 0 ? '' : `:\n${out}\n${err}`}`);
  t.match(out, /API with LOG_LEVEL=warn/, 'the header names the A/B setting');
  t.match(out, /API log \(warn\): 0 lines/, 'the API ran with it: no request lines at warn');
  if (hasPgBouncer) t.match(out, /through PgBouncer \(transaction mode, prepare=false\)/, 'both servers went through PgBouncer');
  else t.comment('pgbouncer is not installed: --pgbouncer not exercised');
  t.ok(cells(out, 'GET /api/tasks/{id}')?.every((c) => FIGURE.test(c)), 'the get row is complete: every request succeeded');

  for (const server of ['api', 'minimal']) {
    const dir = join(profiles, server);
    const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')) : [];
    t.ok(files.length > 0, `${server} wrote a CPU profile`);
    const largest = files.map((f) => join(dir, f)).sort((a, b) => statSync(b).size - statSync(a).size)[0];
    if (!largest) continue;
    const summary = execFileSync(process.execPath, ['--import', 'tsx', 'bench/profile-summary.ts', largest, '--requests', '100'], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    t.match(summary, /self time by function\n\s+\d+ ms\s+[\d.]+ µs\/req/, `the ${server} profile summarises per request`);
  }
});
