import pino from 'pino';

/** How long a line may wait before it is written, when fewer than LOG_BATCH_BYTES wait. */
const LOG_BATCH_MS = 25;

/** sonic-boom writes as soon as this many bytes wait. */
export const LOG_BATCH_BYTES = 8 * 1024;

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
 * A file descriptor (standard output) through pino's own destination, sonic-boom: lines
 * gather until LOG_BATCH_BYTES or LOG_BATCH_MS and go out in one asynchronous write, and
 * pino writes what is pending synchronously when the process exits. It replaced a
 * hand-written batching destination that cost the same CPU per request (bench/PROFILE.md).
 */
export function logDestination(fd = 1): LogDestination {
  const out = pino.destination({ dest: fd, sync: false, minLength: LOG_BATCH_BYTES, maxWrite: 64 * 1024, periodicFlush: LOG_BATCH_MS });
  // A descriptor that fails (closed, its reader gone) stops the log, never the server.
  out.on('error', () => {});
  return {
    write: (line: string) => out.write(line),
    flush: (cb) => out.flush(cb),
    drained: () =>
      new Promise<void>((resolve) => {
        const timeout = setTimeout(resolve, DRAIN_WAIT_MS).unref();
        const done = () => {
          clearTimeout(timeout);
          resolve();
        };
        try {
          out.flush(done);
        } catch {
          done(); // destroyed: nothing left to wait for
        }
      }),
  };
}
