import type { IncomingMessage } from 'node:http';
import { LogController, type FastifyBaseLogger, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify';

/** No log line may grow with what a client sends: long URLs are cut to this many characters. */
export const MAX_LOGGED_URL = 1024;

/**
 * What an operation or the error handler adds to its request's line (a created task's id, a
 * count, an error code): said there, never in a second line. None of the line's own names.
 */
export type LogFields = Readonly<Record<string, string | number | boolean | null | undefined>>;

declare module 'fastify' {
  interface FastifyRequest {
    /** Merged into the request's line when it is answered. */
    logFields?: LogFields;
  }
}

export function boundedUrl(url: string): string {
  return url.length <= MAX_LOGGED_URL ? url : `${url.slice(0, MAX_LOGGED_URL)}…(${url.length} characters)`;
}

/**
 * One line per request, when it is answered, instead of Fastify's two (incoming,
 * completed): what an operator filters on, and nothing a client can inflate.
 */
export class RequestLogController extends LogController {
  override incomingRequest(): void {}

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    // One read: each read of routeOptions builds a new object.
    const { url: route, schema } = request.routeOptions;
    const line = {
      method: request.method,
      // Unknown routes have no template: the (bounded) path says what was asked for.
      route: route ?? boundedUrl(request.url.split('?')[0] ?? ''),
      operationId: (schema as { operationId?: string } | undefined)?.operationId,
      status: reply.statusCode,
      durationMs: Math.round(reply.elapsedTime * 10) / 10,
      userId: request.caller?.id,
    };
    const fields = request.logFields;
    if (fields !== undefined) Object.assign(line, fields);
    if (error) reply.log.error({ ...line, err: error }, 'request errored');
    else reply.log.info(line, 'request completed');
  }
}

/** The request serializer, for any line that logs `req`: its URL bounded. */
function serializeRequest(req: FastifyRequest | IncomingMessage): Record<string, unknown> {
  return {
    method: req.method,
    url: boundedUrl(req.url ?? ''),
    remoteAddress: 'ip' in req ? req.ip : req.socket?.remoteAddress,
  };
}

/**
 * The app's logger: the given one with the bounded request serializer, set once here
 * rather than on each request's child logger (Fastify creates one per request).
 */
export function appLogger(logger: FastifyBaseLogger): FastifyBaseLogger {
  return logger.child({}, { serializers: { req: serializeRequest } });
}

/**
 * Each request's logger (Fastify makes one per request): pino's child without an options
 * object, its cheaper path, unless a route sets its own level or serializers.
 */
export const childLoggerFactory: NonNullable<FastifyServerOptions['childLoggerFactory']> = (logger, bindings, options) =>
  options.level === undefined && options.serializers === undefined ? logger.child(bindings) : logger.child(bindings, options);
