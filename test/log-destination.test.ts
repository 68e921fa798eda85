/**
 * src/log-destination.ts: the server's log lines through pino's buffered destination. Every
 * line must reach the descriptor whole and in order, whatever its size or characters (lines
 * larger than the buffer, and than one write), and none may be lost when the process exits
 * with lines still pending, or be cut short under a slow reader.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { LOG_BATCH_BYTES, logDestination } from '../src/log-destination.ts';
import { fileURLToPath } from 'node:url';

/** A destination writing to a file of a fresh temporary directory, removed after the test. */
function fileDestination(t: Test) {
  const dir = mkdtempSync(join(tmpdir(), 'log-destination-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'out.log');
  const fd = openSync(file, 'a');
  return { file, fd, dest: logDestination(fd) };
}

/** Waits (at most 10 s) for the asynchronous writes to make `done` true. */
async function until(done: () => boolean): Promise<void> {
  for (const deadline = Date.now() + 10_000; !done() && Date.now() < deadline; ) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** An ES module that makes `dest`, a destination on standard output, then runs `body`. */
const childModule = (body: string) => `
  import { logDestination } from ${JSON.stringify(fileURLToPath(new URL('../src/log-destination.ts', import.meta.url)))};
  const dest = logDestination(1);
  ${body}`;

t.test('lines of any size and script arrive whole and in order', async (t) => {
  const { file, fd, dest } = fileDestination(t);
  const lines: string[] = [];
  const add = (line: string) => {
    lines.push(line);
    dest.write(line);
  };
  // Enough small lines to fill several batches, multi-byte ones among them (3 and 4 bytes in UTF-8).
  for (let i = 0; i < 3000; i++) add(`{"n":${i},"title":"${i % 7 === 0 ? 'café €😀' : 'plain'}"}\n`);
  // Three-byte characters only: lines that just fit a batch and lines that cross its edge.
  for (let i = 0; i < 40; i++) add(`{"euro":"${'€'.repeat(997 + i * 13)}"}\n`);
  add(`{"wide":"${'€'.repeat(Math.floor(LOG_BATCH_BYTES / 3) - 12)}"}\n`);
  // Between a third and a half of a batch in UTF-16 units, but more bytes than a batch holds.
  add(`{"wider":"${'€'.repeat(Math.floor(LOG_BATCH_BYTES * 0.45))}"}\n`);
  // A line larger than a whole batch, written between others, and one larger than a single write (64 KB).
  add(`{"big":"${'€'.repeat(LOG_BATCH_BYTES)}"}\n`);
  add(`{"bigger":"${'€'.repeat(30_000)}"}\n`);
  add('{"after":"big"}\n');
  dest.flush();
  const expected = lines.join('');
  const bytes = Buffer.byteLength(expected);
  await until(() => statSync(file).size >= bytes);
  closeSync(fd);
  const written = readFileSync(file, 'utf8');
  t.equal(written.length, expected.length, 'as many characters as were logged');
  t.ok(written === expected, 'the same lines, in the same order');
});

t.test('lines go out within the batch interval without a flush', async (t) => {
  const { file, fd, dest } = fileDestination(t);
  dest.write('{"first":1}\n');
  dest.write('{"second":2}\n');
  t.equal(statSync(file).size, 0, 'nothing is written at once');
  await until(() => statSync(file).size > 0);
  await new Promise((resolve) => setTimeout(resolve, 50));
  closeSync(fd);
  t.equal(readFileSync(file, 'utf8'), '{"first":1}\n{"second":2}\n', 'both lines, in one batch, by the timer');
});

t.test('lines still pending when the process exits are written', async (t) => {
  // A child logs, then exits at once: no timer, no event loop turn, for the batch to go out.
  const code = childModule(`
    for (let i = 0; i < 5; i++) dest.write(JSON.stringify({ n: i, msg: 'before exit' }) + '\\n');
    process.exit(0);`);
  const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { encoding: 'utf8', timeout: 30_000 });
  t.equal(child.status, 0, child.stderr);
  const got = child.stdout.split('\n').filter(Boolean).map((line) => (JSON.parse(line) as { n: number }).n);
  t.same(got, [0, 1, 2, 3, 4], 'all five lines, in order');
});

t.test('drained() waits for a slow reader, so that an exit right after it loses no line', async (t) => {
  // The pipe is full and its reader starts a second late: the batch write in flight keeps
  // retrying, and an exit in the meantime would cut it short (with every line after it).
  const code = childModule(`
    const { writeSync } = await import('node:fs');
    writeSync(1, 'x'.repeat(59_999) + '\\n');
    const line = (n) => JSON.stringify({ n, pad: 'p'.repeat(40) }) + '\\n';
    for (let n = 0; n < 1000; n++) dest.write(line(n));
    await new Promise((resolve) => setTimeout(resolve, 60));
    for (let n = 1000; n < 4000; n++) dest.write(line(n));
    await dest.drained();
    process.exit(0);`);
  const child = spawnSync('sh', ['-c', `"${process.execPath}" --import tsx --input-type=module -e "$CODE" | (sleep 1; cat)`], {
    encoding: 'utf8',
    timeout: 30_000,
    env: { ...process.env, CODE: code },
    maxBuffer: 16 * 1024 * 1024,
  });
  t.equal(child.status, 0, child.stderr);
  const got = child.stdout
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => {
      try {
        return (JSON.parse(line) as { n: number }).n;
      } catch {
        return -1; // a line cut short
      }
    });
  t.equal(got.length, 4000, 'every line');
  t.ok(
    got.every((n, i) => n === i),
    'in order',
  );
});
