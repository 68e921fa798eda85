import type { components } from './generated/openapi.ts';

export type ErrorBody = components['schemas']['ErrorBody'];
export type ErrorCode = ErrorBody['code'];
export type FieldError = components['schemas']['FieldError'];

/**
 * An error meant for the client: the error handler turns it into the contract's
 * error body. Anything else that is thrown becomes a masked 500.
 */
export class ApiError extends Error {
  readonly statusCode: number;
  readonly code: ErrorCode;
  readonly details: FieldError[] | null;
  readonly headers: Record<string, string>;

  constructor(statusCode: number, code: ErrorCode, message: string, details: FieldError[] | null = null, headers: Record<string, string> = {}) {
    super(message);
    this.name = 'ApiError';
    this.statusCode = statusCode;
    this.code = code;
    this.details = details;
    this.headers = headers;
  }

  toBody(): { error: ErrorBody } {
    return { error: { code: this.code, message: this.message, details: this.details } };
  }
}

export const notFound = (message = 'Task not found.'): ApiError => new ApiError(404, 'NOT_FOUND', message);

/** An unknown route (the path given bounded by the caller). */
export const noRoute = (method: string, path: string): ApiError => new ApiError(404, 'NOT_FOUND', `No route ${method} ${path}.`);

/** The realm of every 401's Bearer challenge. */
export const REALM = 'todo-api';

/** A request without credentials: 401 with the plain Bearer challenge. */
export const notAuthenticated = (message = 'Authentication is required; send Authorization: Bearer <token>.'): ApiError =>
  new ApiError(401, 'NOT_AUTHENTICATED', message, null, { 'www-authenticate': `Bearer realm="${REALM}"` });

/** A method the path does not have: 405 with Allow. */
export const methodNotAllowed = (method: string, allowed: string[]): ApiError =>
  new ApiError(405, 'METHOD_NOT_ALLOWED', `${method} is not allowed here; use ${allowed.join(', ')}.`, null, { allow: allowed.join(', ') });

export const forbidden = (): ApiError => new ApiError(403, 'FORBIDDEN', 'This task belongs to another user.');

export const preconditionFailed = (): ApiError =>
  new ApiError(412, 'PRECONDITION_FAILED', 'The task has changed since you read it (If-Match does not match); nothing was changed.');

export const idempotencyKeyReused = (): ApiError =>
  new ApiError(
    422,
    'IDEMPOTENCY_KEY_REUSED',
    'This Idempotency-Key was already used with a different request in the last 24 hours; use a new key for a new request.',
  );

export const idConflict = (): ApiError =>
  new ApiError(409, 'ID_CONFLICT', 'This id is already taken; nothing was written. Create the task with a new id.');

export const syncExpired = (retentionDays: number): ApiError =>
  new ApiError(
    410,
    'SYNC_EXPIRED',
    `This since is older than the change history kept (${retentionDays} days); start again with a full sync.`,
  );

export const tooManyStreams = (max: number): ApiError =>
  new ApiError(
    429,
    'TOO_MANY_STREAMS',
    `You already have ${max} open change streams; close one before opening another.`,
    null,
    { 'retry-after': '5' },
  );

/**
 * Unpaired surrogate code units: JSON can spell them (`"\ud800"`), UTF-8 and PostgreSQL
 * cannot hold them. The contract's patterns leave them out (not every regex engine can
 * name them); the server refuses them in title and notes (a query string cannot carry them:
 * percent-decoding is UTF-8).
 */
export const UNPAIRED_SURROGATE = /[\uD800-\uDFFF]/u;

/** A 415 that says what arrived (bounded, printable ASCII only) and what is accepted. */
export function unsupportedMediaType(received: string | undefined): ApiError {
  const sent = received === undefined || received === '' ? 'no Content-Type' : `Content-Type ${received.replace(/[^ -~]/g, '?').slice(0, 100)}`;
  return new ApiError(415, 'UNSUPPORTED_MEDIA_TYPE', `The request body came with ${sent}; send it as application/json (UTF-8).`);
}

/** What a text field (title, notes, q) must not contain. */
export const TEXT_MESSAGE = 'must not contain NUL characters or unpaired surrogates';

export const invalidField = (where: FieldError['in'], field: string, message: string): ApiError =>
  new ApiError(400, 'VALIDATION_ERROR', 'The request is invalid.', [{ in: where, field, message }]);

export const serviceUnavailable = (message = 'The database is unavailable; try again shortly.'): ApiError =>
  new ApiError(503, 'SERVICE_UNAVAILABLE', message, null, { 'retry-after': '5' });
