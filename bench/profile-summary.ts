/**
 * Where a process spent its CPU time, from a `node --cpu-prof` profile
 * (`npm run bench -- --cpu-prof DIR` writes one per server):
 *
 *   node --import tsx bench/profile-summary.ts FILE.cpuprofile [--top 25] [--match text] [--requests N]
 *
 * Prints self time and inclusive time per function (a recursive function counts once per
 * sample), and self time per package (node_modules/<name>, our src/, node's internals).
 * With --match, only the stacks that contain a frame whose name or file contains the text.
 * Samples before the first HTTP request (start-up: loading modules, compiling the contract)
 * are left out unless --all is given. Then inclusive time per concern (logging, JWT, ...).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    top: { type: 'string', default: '25' },
    match: { type: 'string' },
    all: { type: 'boolean', default: false },
    // The bench prints how many requests each server answered while profiled.
    requests: { type: 'string' },
  },
});
const file = positionals[0];
if (!file) {
  console.error('usage: node --import tsx bench/profile-summary.ts FILE.cpuprofile [--top N] [--match text]');
  process.exit(2);
}
const top = Number(values.top);
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;

const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

const IDLE = new Set(['(idle)', '(program)', '(garbage collector)', '(root)']);

const ROOT = fileURLToPath(new URL('../', import.meta.url));

function where(frame: CallFrame): string {
  const url = frame.url.replace(/^file:\/\//, '').replace(ROOT, '/');
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)\/(.*)$/.exec(url);
  if (pkg) return `${pkg[1]}/${pkg[2]}:${frame.lineNumber + 1}`;
  const ours = /\/((?:src|bench)\/.*)$/.exec(url);
  if (ours) return `${ours[1]}:${frame.lineNumber + 1}`;
  return url === '' ? '' : `${url}:${frame.lineNumber + 1}`;
}

function packageOf(frame: CallFrame): string {
  if (IDLE.has(frame.functionName)) return frame.functionName;
  const url = frame.url.replace(/^file:\/\//, '').replace(ROOT, '/');
  const pkg = /.*node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (pkg?.[1]) return pkg[1];
  if (/\/src\//.test(url)) return 'todo-api src/';
  if (/\/bench\//.test(url)) return 'bench/';
  if (url.startsWith('node:')) return 'node internals';
  return url === '' ? '(native: V8 builtins, GC, C++)' : url;
}

const key = (f: CallFrame) => `${f.functionName || '(anonymous)'}  ${where(f)}`;

const self = new Map<string, number>();
const inclusive = new Map<string, number>();
const packages = new Map<string, number>();
let total = 0;
let idle = 0;
let matched = 0;
let serving = values.all;
let skipped = 0;

/** Inclusive time of a concern: samples with at least one frame of it on the stack. */
const CONCERNS: Array<[string, (f: CallFrame) => boolean]> = [
  ['logging (pino, sonic-boom, redaction)', (f) => /node_modules\/(pino|sonic-boom|@pinojs)\//.test(f.url)],
  ['JWT (@fastify/jwt, fast-jwt, src/plugins/auth.ts)', (f) => /node_modules\/(fast-jwt|@fastify\/jwt)\/|src\/plugins\/auth\.ts/.test(f.url)],
  ['request validation (fastify/lib/validation.js)', (f) => /fastify\/lib\/validation\.js/.test(f.url)],
  ['response serialization (fast-json-stringify)', (f) => /fast-json-stringify\//.test(f.url)],
  ['postgres.js', (f) => /node_modules\/postgres\//.test(f.url)],
  ['our handlers and queries (src/tasks, src/contract)', (f) => /src\/(tasks|contract)\//.test(f.url)],
  ['the deadline (withDeadline)', (f) => f.functionName === 'withDeadline'],
  ['Date parsing and printing (toISOString, new Date)', (f) => f.functionName === 'toISOString' || /postgres\/src\/types\.js/.test(f.url)],
  ['fastify hooks (lib/hooks.js)', (f) => /fastify\/lib\/hooks\.js/.test(f.url)],
  ['socket writes (writev, writeBuffer, writeString)', (f) => f.url === '' && /^(writev|writeBuffer|writeString|writeUtf8String|writeLatin1String)$/.test(f.functionName)],
  ['garbage collector', (f) => f.functionName === '(garbage collector)'],
];
const concerns = new Map<string, number>();

const add = (m: Map<string, number>, k: string, v: number) => m.set(k, (m.get(k) ?? 0) + v);

for (let i = 0; i < profile.samples.length; i++) {
  const dt = profile.timeDeltas[i] ?? 0;
  const leaf = byId.get(profile.samples[i] ?? -1);
  if (!leaf) continue;
  total += dt;
  if (IDLE.has(leaf.callFrame.functionName) && leaf.callFrame.functionName !== '(garbage collector)') {
    idle += dt;
    continue;
  }
  const stack: CallFrame[] = [];
  for (let id: number | undefined = leaf.id; id !== undefined; id = parent.get(id)) {
    const node = byId.get(id);
    if (node) stack.push(node.callFrame);
  }
  if (!serving) {
    serving = stack.some((f) => f.functionName === 'parserOnIncoming');
    if (!serving) {
      skipped += dt;
      continue;
    }
  }
  if (values.match !== undefined) {
    const text = values.match;
    if (!stack.some((f) => f.functionName.includes(text) || f.url.includes(text))) continue;
  }
  matched += dt;
  add(self, key(leaf.callFrame), dt);
  add(packages, packageOf(leaf.callFrame), dt);
  for (const k of new Set(stack.map(key))) add(inclusive, k, dt);
  for (const [name, test] of CONCERNS) if (stack.some(test)) add(concerns, name, dt);
}

const msOf = (us: number) => (us / 1000).toFixed(0).padStart(7);
const requests = values.requests === undefined ? undefined : Number(values.requests);
const perRequest = (us: number) => (requests ? `${(us / requests).toFixed(1).padStart(6)} µs/req ` : '');
const pct = (us: number) => `${((100 * us) / Math.max(1, matched)).toFixed(1).padStart(5)} %`;

function print(title: string, m: Map<string, number>, n: number): void {
  console.log(`\n${title}`);
  for (const [k, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, n)) console.log(`${msOf(v)} ms ${perRequest(v)}${pct(v)}  ${k}`);
}

console.log(
  `${file}: ${(total / 1e6).toFixed(1)} s sampled, ${(idle / 1e6).toFixed(1)} s idle, ` +
    `${(skipped / 1e6).toFixed(1)} s of start-up left out, ${(matched / 1e6).toFixed(1)} s busy${values.match !== undefined ? ` in stacks containing "${values.match}"` : ''} (percentages of that)` +
    (requests ? `, ${perRequest(matched).trim()} over ${requests} requests` : ''),
);
print('inclusive time by concern (they overlap: logging inside a fastify hook counts for both)', concerns, CONCERNS.length);
print('self time by package', packages, top);
print('self time by function', self, top);
print('inclusive time by function', new Map([...inclusive].filter(([k]) => !k.startsWith('(root)'))), top);
