import type { FastifyBaseLogger, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import { Deadline, OPERATION_DEADLINE_MS } from '../db/deadline.ts';
import type { operations } from '../generated/openapi.ts';
import type { LogFields } from '../plugins/request-log.ts';

/**
 * The handler map, typed over the operations generated from openapi.yaml: a
 * missing operation, a wrong status or a wrong body shape is a compile error.
 * Handlers see only parsed input and return a status and body; they never touch
 * Fastify, so they can be called directly in a test.
 */
export type OperationId = keyof operations;

/** Operations reachable without a token (checked against the spec when the app is built). */
export const PUBLIC_OPERATIONS = ['getIndex', 'getHealth', 'getLiveness'] as const satisfies readonly OperationId[];
type PublicOperation = (typeof PUBLIC_OPERATIONS)[number];

/** The authenticated user, from the token. */
export interface Caller {
  id: string;
  email: string | null;
}

type Op<K extends OperationId> = operations[K];
type Responses<K extends OperationId> = Op<K>['responses'];
type OrEmpty<T> = [T] extends [never] ? Record<string, never> : NonNullable<T>;

type PathOf<K extends OperationId> = OrEmpty<Op<K>['parameters']['path']>;
type QueryOf<K extends OperationId> = OrEmpty<Op<K>['parameters']['query']>;
type HeaderOf<K extends OperationId> = OrEmpty<Op<K>['parameters']['header']>;
type BodyOf<K extends OperationId> = Op<K> extends { requestBody: { content: { 'application/json': infer B } } } ? B : undefined;

export interface HandlerInput<K extends OperationId> {
  params: PathOf<K>;
  query: QueryOf<K>;
  body: BodyOf<K>;
  /** The header parameters the contract declares, under the contract's names. */
  headers: HeaderOf<K>;
  caller: K extends PublicOperation ? null : Caller;
  /** Every statement runs through it, one at a time, so that none outlives the request (see deadline.ts). */
  deadline: Deadline;
  log: FastifyBaseLogger;
}

/** One of the responses the contract lists for the operation. */
export type HandlerResult<K extends OperationId> = {
  [S in keyof Responses<K> & number]: Responses<K>[S] extends { content: { 'application/json': infer B } }
    ? { status: S; body: B; headers?: Record<string, string>; logFields?: LogFields }
    : { status: S; body?: undefined; headers?: Record<string, string>; logFields?: LogFields };
}[keyof Responses<K> & number];

/** Operations that answer with a stream, not one body: each has a Fastify handler of its own (src/sync/stream.ts). */
export const STREAMING_OPERATIONS = ['streamChanges'] as const satisfies readonly OperationId[];
export type StreamingOperation = (typeof STREAMING_OPERATIONS)[number];

export type Handlers = {
  [K in Exclude<OperationId, StreamingOperation>]: (input: HandlerInput<K>) => Promise<HandlerResult<K>>;
};

/** The Fastify route handler for one operation of the map. */
export function toRouteHandler<K extends keyof Handlers>(
  id: K,
  handlers: Handlers,
  options: { deadlineMs?: number | undefined; headerNames?: readonly string[] } = {},
): RouteOptions['handler'] {
  const deadlineMs = options.deadlineMs ?? OPERATION_DEADLINE_MS;
  const headerNames = (options.headerNames ?? []).map((name) => [name, name.toLowerCase()] as const);
  const handle = handlers[id] as unknown as (input: HandlerInput<OperationId>) => Promise<{
    status: number;
    body?: unknown;
    headers?: Record<string, string>;
    logFields?: LogFields;
  }>;
  return async function operationHandler(request: FastifyRequest, reply: FastifyReply) {
    const headers: Record<string, string | undefined> = {};
    for (const [name, lower] of headerNames) {
      const value = request.headers[lower];
      if (typeof value === 'string') headers[name] = value;
    }
    // The deadline's work inlined (see withDeadline): no wrapper promise on the hottest path,
    // which kept each in-flight request's objects alive into old space (bench/PROFILE.md).
    const deadline = new Deadline(deadlineMs);
    let result: Awaited<ReturnType<typeof handle>>;
    try {
      result = await handle({
        params: request.params as never,
        query: request.query as never,
        body: request.body as never,
        headers: headers as never,
        caller: (request.caller ?? null) as never,
        deadline,
        log: request.log,
      });
    } catch (err) {
      throw deadline.failure(err);
    } finally {
      deadline.end();
    }
    reply.code(result.status);
    if (result.headers) reply.headers(result.headers);
    if (result.logFields) request.logFields = result.logFields;
    return result.body === undefined ? reply.send() : result.body;
  };
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the bearer authentication hook on protected routes. */
    caller?: Caller;
  }
}
