import { writeSync } from 'node:fs';
import pino from 'pino';

/** How long log lines gather before they are written together. */
const LOG_BATCH_MS = 25;

/** Room for one batch: a batch that fills up is written at once. */
export const LOG_BATCH_BYTES = 64 * 1024;

/** The longest `drained()` waits: a reader that has stopped reading must not hold up an exit. */
const DRAIN_WAIT_MS = 2_000;

export type LogDestination = pino.DestinationStream & {
  flush(cb?: (err?: Error) => void): void;
  /**
   * Resolves once every line so far is written (or after DRAIN_WAIT_MS). Call it before a
   * planned exit: at exit a write still in flight is cut short, and the lines after it with it.
   */
  drained(): Promise<void>;
};

/**
 * A file descriptor (standard output) that gets the lines of each LOG_BATCH_MS in one
 * write: a write per line cost about 100 µs of the event loop per create under load, the
 * log file contending with PostgreSQL's WAL for the disk. The lines wait in a Buffer,
 * outside V8's heap: pino builds a line as a tree of string pieces, and a string holding
 * a batch of them outlived young-generation collections and was promoted to old space
 * (about 100 KB at each collection under load; bench/PROFILE.md). What is pending is
 * written on exit.
 */
export function logDestination(fd = 1): LogDestination {
  // Strings in: sonic-boom's buffer mode miscounts a batch it puts back after a failed write.
  const out = pino.destination({ dest: fd });
  const batch = Buffer.allocUnsafeSlow(LOG_BATCH_BYTES);
  let used = 0;
  let timer: NodeJS.Timeout | undefined;
  // Bytes handed to sonic-boom and not yet written (its 'write' events count them down).
  let queued = 0;
  let failed = false;
  const waiting: Array<() => void> = [];
  const settle = () => {
    queued = 0;
    for (const resolve of waiting.splice(0)) resolve();
  };
  out.on('write', (n: number) => {
    queued -= n;
    if (queued <= 0) settle();
  });
  // A failed descriptor will not drain (pino stops writing to a closed pipe): nobody waits on it.
  out.on('error', () => {
    failed = true;
    settle();
  });
  const send = (text: string, bytes: number) => {
    queued += bytes;
    out.write(text);
  };
  const flush = () => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    if (used === 0) return;
    // One flat string (not a tree of pieces) that sonic-boom keeps until written, so the batch
    // is free again at once; written now, or right after a write still in flight.
    send(batch.toString('utf8', 0, used), used);
    used = 0;
  };
  // At exit there is no event loop left for an asynchronous write: what is pending goes synchronously.
  process.once('exit', () => {
    if (timer !== undefined) clearTimeout(timer);
    try {
      out.flushSync();
      writeAllSync(fd, batch.subarray(0, used));
    } catch {
      // the descriptor is gone: nothing left to tell
    }
    used = 0;
  });
  return {
    write(line: string) {
      // UTF-8 needs at most three bytes for each UTF-16 unit of the line.
      if (used + line.length * 3 > batch.length) {
        flush();
        if (line.length * 3 > batch.length) {
          send(line, Buffer.byteLength(line));
          return;
        }
      }
      used += batch.write(line, used);
      timer ??= setTimeout(flush, LOG_BATCH_MS).unref();
    },
    flush(cb) {
      flush();
      out.flush(cb);
    },
    drained() {
      flush();
      if (queued === 0 || failed) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const timeout = setTimeout(resolve, DRAIN_WAIT_MS).unref();
        waiting.push(() => {
          clearTimeout(timeout);
          resolve();
        });
      });
    },
  };
}

/** Writes all of `bytes`, waiting out a full pipe (EAGAIN) for up to a second. */
function writeAllSync(fd: number, bytes: Buffer): void {
  let rest = bytes;
  for (let waits = 0; rest.length > 0; ) {
    try {
      rest = rest.subarray(writeSync(fd, rest));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN' || ++waits > 100) throw err;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
    }
  }
}
