import { invalidField } from '../errors.ts';

/** Where a page ended: the last task's creation time and id (the sort key). */
export interface CursorPosition {
  createdAt: string;
  id: string;
}

const ISO_MILLIS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Opaque to clients: base64url of a small JSON array, so its format can change freely. */
export function encodeCursor(position: CursorPosition): string {
  return Buffer.from(JSON.stringify([position.createdAt, position.id])).toString('base64url');
}

/** The position a cursor names; a cursor we did not make is a 400 on `cursor`. */
export function decodeCursor(cursor: string): CursorPosition {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    value = undefined;
  }
  if (
    Array.isArray(value) &&
    value.length === 2 &&
    typeof value[0] === 'string' &&
    typeof value[1] === 'string' &&
    ISO_MILLIS.test(value[0]) &&
    value[0] >= '0001' &&
    !Number.isNaN(Date.parse(value[0])) &&
    UUID.test(value[1]) &&
    encodeCursor({ createdAt: value[0], id: value[1] }) === cursor
  ) {
    return { createdAt: value[0], id: value[1] };
  }
  throw invalidField('query', 'cursor', 'is not a cursor this API issued; pass next_cursor back unchanged');
}
