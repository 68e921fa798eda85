/**
 * patches/postgres+3.4.9.patch (patch-package, npm's postinstall, `--error-on-fail`) bounds
 * postgres.js's Queue and keeps a failed cancel from becoming an unhandled rejection
 * (docs/upstream/postgres-js.md says why, for upstream). This checks that the installed
 * driver is the version the patch is for and carries both fixes, and that the patched queue
 * still behaves as a queue: the same answers as a plain array under a long random mix of the
 * pool's operations (push, shift, remove).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';

const PATCH = fileURLToPath(new URL('../../patches/postgres+3.4.9.patch', import.meta.url));
// The patch marks what it adds; both markers must be in it, and in every build of the driver.
const MARKER = '/* todo-api: bounded queue (patches/postgres+3.4.9.patch) */';
const CANCEL_MARKER = '/* todo-api: a failed cancel is no unhandled rejection (patches/postgres+3.4.9.patch) */';
// The package exports no package.json: where its ESM entry (src/index.js) is, two levels up.
const driverDir = join(fileURLToPath(import.meta.resolve('postgres')), '../..');

interface Queue<T> {
  readonly length: number;
  push(x: T): T;
  shift(): T | undefined;
  remove(x: T): T | null;
}

t.test('the driver is pinned to the version its patch is for', async (t) => {
  const pkg = JSON.parse(readFileSync(fileURLToPath(new URL('../../package.json', import.meta.url)), 'utf8')) as { dependencies: Record<string, string> };
  t.equal(pkg.dependencies.postgres, '3.4.9', 'an exact pin: a new release is taken on purpose, with its patch redone');
  const installed = JSON.parse(readFileSync(join(driverDir, 'package.json'), 'utf8')) as { version: string };
  t.equal(installed.version, '3.4.9');
  const patch = readFileSync(PATCH, 'utf8');
  t.ok(patch.includes(MARKER) && patch.includes(CANCEL_MARKER), 'the patch carries both markers');
});

t.test('every build of the driver (ESM, CommonJS, workerd) carries both fixes (npm install runs the postinstall)', async (t) => {
  // The bounded queue; and a failed cancel's rejection dropped (test/db/deadline.test.ts shows why).
  const fixes = [
    ['queue.js', MARKER],
    ['query.js', CANCEL_MARKER],
  ] as const;
  for (const dir of ['src', 'cjs/src', 'cf/src']) {
    for (const [file, marker] of fixes) {
      t.ok(readFileSync(join(driverDir, dir, file), 'utf8').includes(marker), `${dir}/${file} is patched`);
    }
  }
});

t.test('the patched queue answers as an array would, through compaction and resets', async (t) => {
  const { default: Queue } = (await import(join(driverDir, 'src/queue.js'))) as { default: () => Queue<number> };
  const queue = Queue();
  const model: number[] = [];
  let next = 0;
  let seed = 42;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  let mismatches = 0;
  // Like the pool's busy connections: a few entries, never emptied by shift (so it compacts),
  // removals from anywhere; now and then drained by removals (so it resets).
  for (let step = 0; step < 200_000; step++) {
    const r = step % 50_000 > 49_980 ? 0.99 : random();
    const floor = step % 50_000 > 49_980 ? 0 : 1;
    if ((r < 0.4 && model.length < 10) || model.length <= floor) {
      queue.push(next);
      model.push(next++);
    } else if (r < 0.75) {
      if (queue.shift() !== model.shift()) mismatches++;
    } else {
      const victim = random() < 0.1 ? -1 : (model[Math.floor(random() * model.length)] ?? -1);
      const at = model.indexOf(victim);
      const expected = at === -1 ? null : (model.splice(at, 1), victim);
      if (queue.remove(victim) !== expected) mismatches++;
    }
    if (queue.length !== model.length) mismatches++;
  }
  t.equal(mismatches, 0, '200,000 operations, no answer differs');
  while (model.length > 0) t.equal(queue.shift(), model.shift());
  t.equal(queue.length, 0, 'drained');
});
