import { createHash } from 'node:crypto';
import { invalidField } from '../errors.ts';

/**
 * A place in one user's change feed: the change counter and task id of the last
 * change delivered (changes are ordered by both, so a bulk write, whose changes share
 * one counter value, can span pages).
 */
export interface Position {
  seq: number;
  id: string;
}

export const START: Position = { seq: 0, id: '00000000-0000-0000-0000-000000000000' };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Ties a position to its user, so that one user's `since` is refused for another. */
const userTag = (userId: string) => createHash('sha256').update(userId).digest('base64url').slice(0, 8);

/** Opaque to clients: base64url of a small JSON array. */
export function encodePosition(userId: string, position: Position): string {
  return Buffer.from(JSON.stringify([position.seq, position.id, userTag(userId)])).toString('base64url');
}

export const notIssued = () =>
  invalidField('query', 'since', 'is not a next_since this API issued to you; pass next_since back unchanged, or omit since for a full sync');

/** The position a `since` names; one we did not make, or made for another user, is a 400 on `since`. */
export function decodePosition(userId: string, since: string): Position {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(since, 'base64url').toString('utf8'));
  } catch {
    throw notIssued();
  }
  if (
    !Array.isArray(value) ||
    value.length !== 3 ||
    !Number.isSafeInteger(value[0]) ||
    (value[0] as number) < 0 ||
    typeof value[1] !== 'string' ||
    !UUID.test(value[1]) ||
    value[2] !== userTag(userId) ||
    encodePosition(userId, { seq: value[0] as number, id: value[1] }) !== since
  ) {
    throw notIssued();
  }
  return { seq: value[0] as number, id: value[1] };
}
