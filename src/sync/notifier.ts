import type { Sql } from '../db/client.ts';
import { CHANGES_CHANNEL } from '../tasks/queries.ts';

type Listener = () => void;

/**
 * Which users' tasks changed, on any instance: every write notifies CHANGES_CHANNEL
 * with the user id in the same transaction (delivered on commit), and one LISTEN
 * connection per instance fans that out to the streams of that user. LISTEN needs a
 * session of its own, so behind a transaction-mode pooler give it the direct URL.
 */
export class ChangeNotifier {
  readonly #byUser = new Map<string, Set<Listener>>();
  #listening: Promise<unknown> | undefined;

  private readonly sql: Sql;

  constructor(sql: Sql) {
    this.sql = sql;
  }

  /** Resolves once notifications for `userId` reach `listener`; returns the unsubscribe. */
  async subscribe(userId: string, listener: Listener): Promise<() => void> {
    let listeners = this.#byUser.get(userId);
    if (!listeners) this.#byUser.set(userId, (listeners = new Set()));
    listeners.add(listener);
    const unsubscribe = () => {
      listeners.delete(listener);
      if (listeners.size === 0 && this.#byUser.get(userId) === listeners) this.#byUser.delete(userId);
    };
    try {
      // Started on first use; on every (re)connect everyone looks again, in case a
      // notification was lost while the connection was down.
      this.#listening ??= this.sql.listen(CHANGES_CHANNEL, (user) => this.#notify(user), () => this.#notifyAll());
      await this.#listening;
    } catch (err) {
      this.#listening = undefined;
      unsubscribe();
      throw err;
    }
    return unsubscribe;
  }

  #notify(userId: string): void {
    for (const listener of this.#byUser.get(userId) ?? []) listener();
  }

  #notifyAll(): void {
    for (const listeners of this.#byUser.values()) for (const listener of listeners) listener();
  }
}
