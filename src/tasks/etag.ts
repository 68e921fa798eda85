import { createHash } from 'node:crypto';

/**
 * A task's strong ETag is its `updated_at`, which moves forward on every change of
 * that task (at least 1 ms) and never otherwise: opaque to clients, exact to us.
 */
export function taskEtag(updatedAt: string): string {
  return `"${Date.parse(updatedAt).toString(36)}"`;
}

/** A page's weak ETag: its tasks' versions and where it ends. */
export function pageEtag(items: ReadonlyArray<{ id: string; updated_at: string }>, nextCursor: string | null): string {
  const hash = createHash('sha1');
  for (const task of items) hash.update(`${task.id}@${task.updated_at};`);
  hash.update(nextCursor ?? '');
  return `W/"${hash.digest('base64url').slice(0, 22)}"`;
}

/** One entry of an If-Match / If-None-Match list: `*` or an entity tag, weak or strong. */
const ENTITY_TAG = /\s*(\*|(W\/)?"[\x21\x23-\x7e\x80-\xff]*")\s*(?:,|$)/y;

function entries(header: string): Array<{ weak: boolean; tag: string }> {
  const found: Array<{ weak: boolean; tag: string }> = [];
  ENTITY_TAG.lastIndex = 0;
  while (ENTITY_TAG.lastIndex < header.length) {
    const match = ENTITY_TAG.exec(header);
    if (!match?.[1]) break; // malformed from here on: nothing after it can match
    found.push(match[1] === '*' ? { weak: false, tag: '*' } : { weak: match[2] !== undefined, tag: match[1].replace(/^W\//, '') });
  }
  return found;
}

/**
 * If-Match (RFC 9110 §13.1.1), for one SQL comparison: `any` for `*`, otherwise the
 * `updated_at` values that match. Strong comparison: weak tags never match.
 */
export interface Precondition {
  any: boolean;
  updatedAt: string[];
}

export function parseIfMatch(header: string | undefined): Precondition | undefined {
  if (header === undefined) return undefined;
  const precondition: Precondition = { any: false, updatedAt: [] };
  for (const { weak, tag } of entries(header)) {
    if (tag === '*') precondition.any = true;
    else if (!weak) {
      const ms = parseInt(tag.slice(1, -1), 36);
      if (/^"[0-9a-z]{1,11}"$/.test(tag) && Number.isSafeInteger(ms) && ms < 8.64e15) {
        precondition.updatedAt.push(new Date(ms).toISOString());
      }
    }
  }
  return precondition;
}

/** If-None-Match (RFC 9110 §13.1.2), weak comparison: whether `etag` is listed (or `*` is). */
export function listedIn(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  const opaque = etag.replace(/^W\//, '');
  return entries(header).some(({ tag }) => tag === '*' || tag === opaque);
}
