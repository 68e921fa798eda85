import type { Deadline } from '../db/deadline.ts';
import { syncExpired } from '../errors.ts';
import type { components } from '../generated/openapi.ts';
import { decodePosition, encodePosition, notIssued, START, type Position } from './position.ts';
import type { SyncQueries } from './queries.ts';

export type ChangePage = components['schemas']['ChangePage'];

const LAST_ID = 'ffffffff-ffff-ffff-ffff-ffffffffffff';

export interface FeedOptions {
  /** For the SYNC_EXPIRED message. */
  retentionDays: number;
}

/** How long deletions stay in the change feed unless SYNC_RETENTION_DAYS says otherwise. */
export const SYNC_RETENTION_DAYS = 30;

/** A `since` that asks for a full sync, as leaving it out does (a value every tool can send). */
export const FULL_SYNC = '*';

/**
 * One page of the change feed after `since` (a full sync without it). Used by the
 * GET and by the stream, so that both answer exactly the same pages.
 */
export async function readChanges(
  queries: SyncQueries,
  deadline: Deadline,
  userId: string,
  since: string | Position | undefined,
  limit: number,
  options: FeedOptions,
): Promise<{ page: ChangePage; next: Position }> {
  if (since === FULL_SYNC) since = undefined;
  const full = since === undefined;
  const after = since === undefined ? START : typeof since === 'string' ? decodePosition(userId, since) : since;
  const batch = await queries.changesAfter(deadline, userId, after, limit, full);
  if (after.seq > batch.head) throw notIssued();
  if (!full && after.seq < batch.floor) throw syncExpired(options.retentionDays);
  // Caught up: everything up to the head is in this snapshot (the counter orders a user's
  // commits), so continue after it rather than re-reading old tombstones next time.
  const next = batch.more ? (batch.changes.at(-1)?.position ?? after) : { seq: batch.head, id: LAST_ID };
  return {
    page: { changes: batch.changes.map((c) => c.change), next_since: encodePosition(userId, next), has_more: batch.more },
    next,
  };
}
