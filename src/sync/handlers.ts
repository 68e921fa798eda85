import type { Handlers } from '../contract/handlers.ts';
import type { Sql } from '../db/client.ts';
import { readChanges, type FeedOptions } from './feed.ts';
import { createSyncQueries } from './queries.ts';

/** The default change-feed page size; the contract states the same default. */
export const DEFAULT_CHANGES_LIMIT = 100;

export function createSyncHandlers(sql: Sql, options: FeedOptions): Pick<Handlers, 'listChanges'> {
  const queries = createSyncQueries(sql);
  return {
    async listChanges({ caller, query, deadline }) {
      const { page } = await readChanges(queries, deadline, caller.id, query.since, query.limit ?? DEFAULT_CHANGES_LIMIT, options);
      return { status: 200, body: page };
    },
  };
}
