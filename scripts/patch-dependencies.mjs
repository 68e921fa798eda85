/**
 * postinstall: fixes in dependencies that upstream has not released. Each fix names the
 * exact text it replaces; where that text is gone (another version), it says so and leaves
 * the file alone, and test/db/driver-patch.test.ts fails until the fix is looked at again.
 * Plain JavaScript: it runs in production installs too, where tsx is absent.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
export const MARKER = '/* todo-api: bounded queue (scripts/patch-dependencies.mjs) */';
export const CANCEL_MARKER = '/* todo-api: a failed cancel is no unhandled rejection (scripts/patch-dependencies.mjs) */';

/**
 * postgres.js 3.4.9: its Queue never compacts while it is not empty, and `remove` scans it
 * from the start. Under a saturated pool the queue of busy connections is never emptied by
 * `shift`, so it grows by one hole per query and every `remove` (a connection turning idle)
 * walks all of them: per-query CPU and memory grow with uptime (40k queries took 1.9 s
 * at start and 4.4 s after 200k). Here: `remove` searches from the head and resets an
 * emptied queue, and `shift` compacts once the holes are half the array.
 */
const QUEUE_BEFORE = `    remove: (x) => {
      const index = xs.indexOf(x)
      return index === -1
        ? null
        : (xs.splice(index, 1), x)
    },
    push: (x) => (xs.push(x), x),
    shift: () => {
      const out = xs[index++]

      if (index === xs.length) {
        index = 0
        xs = []
      } else {
        xs[index - 1] = undefined
      }

      return out
    }`;

const QUEUE_AFTER = `    ${MARKER}
    remove: (x) => {
      const at = xs.indexOf(x, index)
      if (at === -1)
        return null
      xs.splice(at, 1)
      if (index === xs.length) {
        index = 0
        xs = []
      }
      return x
    },
    push: (x) => (xs.push(x), x),
    shift: () => {
      const out = xs[index++]

      if (index === xs.length) {
        index = 0
        xs = []
      } else if (index >= 1024 && index * 2 >= xs.length) {
        xs = xs.slice(index)
        index = 0
      } else {
        xs[index - 1] = undefined
      }

      return out
    }`;

/**
 * postgres.js 3.4.9: `query.cancel()` sends the CancelRequest on a new connection and drops
 * the promise of that attempt (it returns null). When the new connection fails (the database
 * unreachable, restarting, a pooler refusing it), the rejection is unhandled, and the process
 * stops (close-with-grace shuts down on unhandled rejections). A cancel is best effort:
 * whoever cancels has a deadline of its own (src/db/deadline.ts), so its failure is dropped.
 */
const CANCEL_BEFORE = `  cancel() {
    return this.canceller && (this.canceller(this), this.canceller = null)
  }`;

const CANCEL_AFTER = `  ${CANCEL_MARKER}
  cancel() {
    return this.canceller && (this.canceller(this).catch(() => {}), this.canceller = null)
  }`;

export const PATCHES = ['src', 'cjs/src', 'cf/src'].flatMap((dir) => [
  { file: join('node_modules/postgres', dir, 'queue.js'), before: QUEUE_BEFORE, after: QUEUE_AFTER, marker: MARKER },
  { file: join('node_modules/postgres', dir, 'query.js'), before: CANCEL_BEFORE, after: CANCEL_AFTER, marker: CANCEL_MARKER },
]);

function apply({ file, before, after, marker }) {
  const path = join(ROOT, file);
  if (!existsSync(path)) return `${file}: not installed, nothing to patch`;
  const text = readFileSync(path, 'utf8');
  if (text.includes(marker)) return undefined; // applied by an earlier install
  if (!text.includes(before)) return `${file}: the text to patch is not there (another version?); left as it is`;
  writeFileSync(path, text.replace(before, after));
  return undefined;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const patch of PATCHES) {
    const problem = apply(patch);
    if (problem) process.stderr.write(`patch-dependencies: ${problem}\n`);
  }
}
