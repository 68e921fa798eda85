import { serviceUnavailable } from '../errors.ts';

/** The longest an operation may wait on the database before the client gets a 503. */
export const OPERATION_DEADLINE_MS = 10_000;

/** After cancelling, how long to wait for the statement to end before answering anyway. */
const CANCEL_GRACE_MS = 1_000;

/** What postgres.js hands back for a statement: awaitable and cancellable. */
interface Cancellable<T> extends PromiseLike<T> {
  cancel(): unknown;
}

/**
 * A request's hold on the database. Statements run through `run`, so that when the
 * deadline passes the one in flight is cancelled (rolled back) and one still queued
 * for a pool connection never starts: a 503 then means nothing was written.
 */
export class Deadline {
  #current: Cancellable<unknown> | undefined;
  #expired = false;

  get expired(): boolean {
    return this.#expired;
  }

  async run<T>(statement: Cancellable<T>): Promise<T> {
    if (this.#expired) {
      statement.cancel();
      throw expiredError();
    }
    this.#current = statement;
    try {
      return await statement;
    } finally {
      // Cleared before any timer can fire, so a finished statement is never "cancelled"
      // (postgres.js would cancel whatever that connection runs next).
      this.#current = undefined;
    }
  }

  expire(): void {
    this.#expired = true;
    this.#current?.cancel();
    this.#current = undefined;
  }
}

const expiredError = () => serviceUnavailable('The database did not answer in time; nothing was changed. Try again shortly.');

/** SQLSTATE 57014 (cancelled, statement_timeout) or 55P03 (lock_timeout). */
export function isStatementCancelled(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === '57014' || code === '55P03';
}

/**
 * Runs `work` with a deadline. On time the result is whatever the work produced; past
 * it, its statement is cancelled and the client gets 503, unless the statement had
 * already committed, in which case the real outcome is returned. (One promise and one
 * timer per request: this is on every request's path.)
 */
export function withDeadline<T>(work: (deadline: Deadline) => Promise<T>, ms: number): Promise<T> {
  const deadline = new Deadline();
  return new Promise<T>((resolve, reject) => {
    let grace: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => {
      deadline.expire();
      // A database that cannot even take the cancel (frozen, partitioned) still gets an answer.
      grace = setTimeout(() => reject(expiredError()), CANCEL_GRACE_MS);
    }, ms);
    const settle = () => {
      clearTimeout(timer);
      clearTimeout(grace);
    };
    work(deadline).then(
      (value) => {
        settle();
        resolve(value);
      },
      (err: unknown) => {
        settle();
        reject(deadline.expired && isStatementCancelled(err) ? expiredError() : err);
      },
    );
  });
}
