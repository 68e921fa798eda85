/**
 * `npm test`: the whole tap suite against a real PostgreSQL. Uses DATABASE_URL
 * when set; otherwise starts an embedded PostgreSQL in a fresh temporary
 * directory on a free port, and removes it afterwards. Each test file then works
 * in a schema of its own (test/helper.ts). Arguments go to tap, e.g.
 * `npm test -- test/tasks/crud.test.ts`. Prints a concise summary (failures in
 * full); `npm test -- --tap` prints the whole TAP stream, `npm run test:coverage` the
 * coverage summary as well.
 */
import { spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { makeTemporaryDataDir, startEmbeddedPostgres, type EmbeddedDatabase } from '../src/dev/embedded.ts';

let embedded: EmbeddedDatabase | undefined;
let tempDir: string | undefined;
let url = process.env.DATABASE_URL;

async function cleanup(): Promise<void> {
  await embedded?.stop().catch(() => {});
  embedded = undefined;
  if (tempDir) await rm(tempDir, { recursive: true, force: true }).catch(() => {});
  tempDir = undefined;
}

if (!url) {
  // A temporary folder, not the project's: as root the cluster runs as "postgres", which must reach it.
  tempDir = await makeTemporaryDataDir('todo-api-test-');
  const started = Date.now();
  embedded = await startEmbeddedPostgres({ dataDir: tempDir });
  url = embedded.url;
  console.log(`# embedded PostgreSQL ready on port ${embedded.port} in ${Date.now() - started} ms`);
}

/**
 * Concise by default: tap's terse reporter (a summary, failures in full). `--tap` gives the
 * full TAP stream (what CI parses); a --reporter of your own wins over both. `--coverage`
 * (`npm run test:coverage`) adds the coverage summary.
 */
function tapArguments(args: string[]): string[] {
  const own = new Set(['--tap', '--coverage']);
  const rest = [...jobs(args), ...coverage(args), ...args.filter((a) => !own.has(a))];
  if (rest.some((a) => a === '-R' || a.startsWith('--reporter'))) return rest;
  if (args.includes('--tap')) return ['--reporter=tap', ...rest];
  const summary = wantsCoverage(args) && !args.some((a) => a.startsWith('--coverage-report')) ? ['--coverage-report=text-summary'] : [];
  return ['--reporter=terse', ...summary, ...rest];
}

const wantsCoverage = (args: string[]) => args.some((a) => a === '--coverage' || a.startsWith('--coverage-report'));

/**
 * Coverage on request only: V8 coverage of every process the tests start (the servers, and
 * npm, newman, Prism and the generators with them) and tap's merge of it took a third of
 * the suite's time (Node 24, 2 cores, 2026-12-07: 4 min 55 s without, 7 min 24 s with).
 * The tests are the same either way.
 */
function coverage(args: string[]): string[] {
  return wantsCoverage(args) ? [] : ['--disable-coverage'];
}

/**
 * The test files wait on PostgreSQL, servers and tools they start more than they compute:
 * two files per core keep the cores busy (the whole suite on 2 cores, 2026-12-07: 10.1 min
 * with tap's default of one per core, 7.1 min with two). A --jobs of your own wins.
 */
function jobs(args: string[]): string[] {
  return args.some((a) => a.startsWith('--jobs') || /^-j\d*$/.test(a)) ? [] : [`--jobs=${availableParallelism() * 2}`];
}

const tap = spawn(process.execPath, [join('node_modules', 'tap', 'dist', 'esm', 'run.mjs'), ...tapArguments(process.argv.slice(2))], {
  stdio: 'inherit',
  env: {
    ...process.env,
    TEST_DATABASE_URL: url,
    // Piped (not a terminal), the terse reporter would print every progress frame; as in CI, print the last.
    ...(!process.stdout.isTTY && process.env.CI === undefined && { CI: 'true' }),
  },
});

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => tap.kill(signal));
}

const code = await new Promise<number>((resolve) => tap.on('close', (c) => resolve(c ?? 1)));
await cleanup();
process.exit(code);
