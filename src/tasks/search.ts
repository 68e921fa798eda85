import { createHash } from 'node:crypto';
import { invalidField } from '../errors.ts';
import type { operations } from '../generated/openapi.ts';
import type { Task } from './queries.ts';

export type ListQuery = NonNullable<operations['listTasks']['parameters']['query']>;
export type Sort = NonNullable<ListQuery['sort']>;

/**
 * sort=due as one descending key: the days before 1970-01-01 of the due date, the lowest
 * value for none (last). The migration's indexes are on exactly this expression.
 */
export const DUE_RANK = 'COALESCE(DATE \'1970-01-01\' - due_date, -2147483648)';
export const NO_DUE_RANK = -2147483648;
const EPOCH_DAY = Date.UTC(1970, 0, 1);

/** The due rank of a date (YYYY-MM-DD) or of none, as the SQL expression computes it. */
export function dueRank(date: string | null): number {
  return date === null ? NO_DUE_RANK : Math.round((EPOCH_DAY - Date.parse(`${date}T00:00:00Z`)) / 86_400_000);
}

/** Where a page ended, in the sort's own key: enough to start the next page after it. */
export type SortKey = (string | null)[];

/** The last task's key under each sort (the cursor's payload). */
export const KEY_OF: Record<Sort, (task: Task) => SortKey> = {
  created: (t) => [t.created_at, t.id],
  position: (t) => [t.position],
  due: (t) => [t.due_date, t.created_at, t.id],
  updated: (t) => [t.updated_at, t.id],
};

const ISO_MILLIS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const DATE = /^\d{4}-\d{2}-\d{2}$/;
const POSITION = /^[0-9A-Za-z]{1,64}$/;
const timestamp = (v: unknown) => typeof v === 'string' && ISO_MILLIS.test(v) && v >= '0001' && !Number.isNaN(Date.parse(v));
const uuid = (v: unknown) => typeof v === 'string' && UUID.test(v);

/** What a well-formed key of each sort looks like (a cursor is checked before its values reach SQL). */
const KEY_SHAPE: Record<Sort, (key: unknown[]) => boolean> = {
  created: (k) => k.length === 2 && timestamp(k[0]) && uuid(k[1]),
  position: (k) => k.length === 1 && typeof k[0] === 'string' && POSITION.test(k[0]),
  due: (k) => k.length === 3 && (k[0] === null || (typeof k[0] === 'string' && DATE.test(k[0]) && !Number.isNaN(Date.parse(k[0])))) && timestamp(k[1]) && uuid(k[2]),
  updated: (k) => k.length === 2 && timestamp(k[0]) && uuid(k[1]),
};

/** The query a cursor belongs to: its sort, filters and search (not the page size). */
function fingerprint(query: ListQuery): string {
  const parts = [query.sort ?? 'created', query.status, query.due_before, query.due_after, query.has_due, query.q];
  return createHash('sha256').update(JSON.stringify(parts)).digest('base64url').slice(0, 10);
}

/** Opaque to clients: base64url of a small JSON array (the query's fingerprint, then the key). */
export function encodeCursor(query: ListQuery, key: SortKey): string {
  return Buffer.from(JSON.stringify([fingerprint(query), ...key])).toString('base64url');
}

const notOurs = () => invalidField('query', 'cursor', 'is not a cursor this API issued; pass next_cursor back unchanged');

/**
 * The key a cursor names, for this very query. A cursor we did not make is a 400 on
 * `cursor`, and so is one made for another sort, filter or search. (A cursor of 1.1,
 * `[created_at, id]`, still works for the default order, which is all 1.1 had.)
 */
export function decodeCursor(query: ListQuery, cursor: string): SortKey {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw notOurs();
  }
  if (!Array.isArray(value) || Buffer.from(JSON.stringify(value)).toString('base64url') !== cursor) throw notOurs();
  const sort = query.sort ?? 'created';
  const legacy = value.length === 2 && sort === 'created' && KEY_SHAPE.created(value);
  if (legacy && query.due_before === undefined && query.due_after === undefined && query.has_due === undefined && query.q === undefined) {
    return value as SortKey;
  }
  const [mark, ...key] = value as unknown[];
  if (mark !== fingerprint(query)) {
    if (typeof mark === 'string' && key.length > 0) {
      throw invalidField('query', 'cursor', 'belongs to another query (sort, filters or q); keep them the same while paging');
    }
    throw notOurs();
  }
  if (!KEY_SHAPE[sort](key)) throw notOurs();
  return key as SortKey;
}

/** q as an ILIKE pattern: every character literal (`%`, `_` and `\` escaped), anywhere in the text. */
export function containsPattern(q: string): string {
  return `%${q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}
