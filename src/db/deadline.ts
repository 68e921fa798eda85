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
 * for a pool connection never starts: a 503 then means nothing was written. The clock
 * starts when it is made; `end()` stops it once the operation is over.
 *
 * The rule for operations: every wait goes through `run`, one statement at a time, and
 * a rejection of `run` is passed on. The grace after a cancel rejects the statement's
 * `run`; a wait outside it would outlast the deadline.
 */
export class Deadline {
  #current: Cancellable<unknown> | undefined;
  /** Rejects the promise `run` returned, for a statement that not even a cancel ends. */
  #abandon: ((err: Error) => void) | undefined;
  #expired = false;
  #timer: NodeJS.Timeout | undefined;
  #grace: NodeJS.Timeout | undefined;

  /** `ms` from now the statement in flight is cancelled; without `ms`, only `expire()` does that. */
  constructor(ms?: number) {
    if (ms !== undefined) this.#timer = setTimeout(() => this.expire(), ms);
  }

  get expired(): boolean {
    return this.#expired;
  }

  run<T>(statement: Cancellable<T>): Promise<T> {
    // A postgres.js statement runs only once awaited: one refused here never starts. (Cancelling
    // it would reject a promise nobody awaits, an unhandled rejection that stops the process.)
    if (this.#expired) return Promise.reject(expiredError());
    this.#current = statement;
    return new Promise<T>((resolve, reject) => {
      this.#abandon = reject;
      statement.then(
        (value) => {
          this.#settled(statement);
          resolve(value);
        },
        (err: unknown) => {
          this.#settled(statement);
          reject(err);
        },
      );
    });
  }

  // Cleared before any timer can fire, so a finished statement is never cancelled; and
  // only for the statement in flight, should an operation break the one-at-a-time rule.
  #settled(statement: Cancellable<unknown>): void {
    if (this.#current !== statement) return;
    this.#current = undefined;
    this.#abandon = undefined;
    clearTimeout(this.#grace);
  }

  expire(): void {
    if (this.#expired) return;
    this.#expired = true;
    clearTimeout(this.#timer);
    const current = this.#current;
    this.#current = undefined;
    if (current === undefined) return;
    current.cancel();
    // A database that cannot even take the cancel (frozen, partitioned) still gets an answer.
    this.#grace = setTimeout(() => this.#abandon?.(expiredError()), CANCEL_GRACE_MS);
  }

  /** Stops the clock: the operation is over, whatever its outcome. */
  end(): void {
    clearTimeout(this.#timer);
    clearTimeout(this.#grace);
  }

  /**
   * What an operation that failed with `err` failed with: a statement cancelled at the
   * deadline is a DeadlineExpiredError (nothing was written); anything
   * else is itself. A statement that committed before its cancel landed keeps its outcome.
   */
  failure(err: unknown): unknown {
    return this.#expired && isStatementCancelled(err) ? expiredError() : err;
  }
}

/** A statement cancelled at its operation's deadline: nothing was written (the HTTP layer makes it a 503). */
export class DeadlineExpiredError extends Error {
  constructor() {
    super('The database did not answer in time; nothing was changed.');
    this.name = 'DeadlineExpiredError';
  }
}

const expiredError = () => new DeadlineExpiredError();

/** SQLSTATE 57014 (cancelled, statement_timeout) or 55P03 (lock_timeout). */
export function isStatementCancelled(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === '57014' || code === '55P03';
}

/**
 * Runs `work` with a deadline: on time, whatever the work produced; past it, its statement
 * is cancelled and the client gets 503, unless the statement had already committed, in
 * which case the real outcome is returned. (The task operations inline this, see
 * contract/handlers.ts: one async frame fewer on every request.)
 */
export async function withDeadline<T>(work: (deadline: Deadline) => Promise<T>, ms: number): Promise<T> {
  const deadline = new Deadline(ms);
  try {
    return await work(deadline);
  } catch (err) {
    throw deadline.failure(err);
  } finally {
    deadline.end();
  }
}
