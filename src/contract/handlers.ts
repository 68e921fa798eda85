import type { FastifyBaseLogger, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import { serviceUnavailable } from '../errors.ts';
import type { operations } from '../generated/openapi.ts';

/**
 * The handler map, typed over the operations generated from openapi.yaml: a
 * missing operation, a wrong status or a wrong body shape is a compile error.
 * Handlers see only parsed input and return a status and body; they never touch
 * Fastify, so they can be called directly in a test.
 */
export type OperationId = keyof operations;

/** Operations reachable without a token (checked against the spec when the app is built). */
export const PUBLIC_OPERATIONS = ['getHealth', 'getIndex'] as const satisfies readonly OperationId[];
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
type BodyOf<K extends OperationId> = Op<K> extends { requestBody: { content: { 'application/json': infer B } } } ? B : undefined;

export interface HandlerInput<K extends OperationId> {
  params: PathOf<K>;
  query: QueryOf<K>;
  body: BodyOf<K>;
  caller: K extends PublicOperation ? null : Caller;
  log: FastifyBaseLogger;
}

/** One of the responses the contract lists for the operation. */
export type HandlerResult<K extends OperationId> = {
  [S in keyof Responses<K> & number]: Responses<K>[S] extends { content: { 'application/json': infer B } }
    ? { status: S; body: B; headers?: Record<string, string> }
    : { status: S; body?: undefined; headers?: Record<string, string> };
}[keyof Responses<K> & number];

export type Handlers = { [K in OperationId]: (input: HandlerInput<K>) => Promise<HandlerResult<K>> };

/** The longest an operation may wait on the database before the client gets a 503. */
export const OPERATION_DEADLINE_MS = 10_000;

/** A database that stops answering (rather than refusing) must not hang the request. */
export function withDeadline<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(serviceUnavailable(`The database did not answer within ${ms / 1000} s; try again shortly.`)),
      ms,
    );
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}

/** The Fastify route handler for one operation of the map. */
export function toRouteHandler<K extends OperationId>(
  id: K,
  handlers: Handlers,
  deadlineMs = OPERATION_DEADLINE_MS,
): RouteOptions['handler'] {
  const handle = handlers[id] as unknown as (input: HandlerInput<OperationId>) => Promise<{
    status: number;
    body?: unknown;
    headers?: Record<string, string>;
  }>;
  return async function operationHandler(request: FastifyRequest, reply: FastifyReply) {
    const result = await withDeadline(
      handle({
        params: request.params as never,
        query: request.query as never,
        body: request.body as never,
        caller: (request.caller ?? null) as never,
        log: request.log,
      }),
      deadlineMs,
    );
    reply.code(result.status);
    if (result.headers) reply.headers(result.headers);
    return result.body === undefined ? reply.send() : result.body;
  };
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the bearer authentication hook on protected routes. */
    caller?: Caller;
  }
}
