import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import { ApiError, invalidField, serviceUnavailable } from './errors.ts';
import openapiGlue from 'fastify-openapi-glue';
import { PUBLIC_OPERATIONS, toRouteHandler, type Handlers, type OperationId } from './contract/handlers.ts';
import { loadSpec, operationAt, requiresBearer } from './contract/spec.ts';
import type { Sql } from './db/client.ts';
import { createHealthHandlers } from './health/handlers.ts';
import { createServiceHandlers } from './service/handlers.ts';
import auth, { type AuthOptions } from './plugins/auth.ts';
import cors from './plugins/cors.ts';
import db from './plugins/db.ts';
import docs from './plugins/docs.ts';
import errors from './plugins/errors.ts';
import validation from './plugins/validation.ts';
import { createTaskHandlers } from './tasks/handlers.ts';

export interface AppOptions extends Omit<AuthOptions, 'secretKey'> {
  sql: Sql;
  /** HS256 shared secret; SECRET_KEY and/or jwksUrl must be given. */
  secretKey?: string | undefined;
  corsOrigins: string[];
  logger?: FastifyServerOptions['logger'];
  /** How long an operation may wait on the database before answering 503 (default 10 s). */
  operationDeadlineMs?: number;
  loggerInstance?: FastifyServerOptions['loggerInstance'];
}

/** Bodies are small JSON objects (a title is at most 500 characters). */
export const BODY_LIMIT = 64 * 1024;

/** The Authorization header never reaches the logs. */
export const LOG_REDACT = ['req.headers.authorization', 'req.headers.cookie'];

async function rejectMissingBody(request: FastifyRequest): Promise<void> {
  if (request.body === undefined || request.body === null) {
    throw invalidField('body', '', 'a JSON object body is required');
  }
}

/**
 * The whole API as a Fastify instance, ready to `inject` or `listen`. It never
 * listens itself and owns no process-level concerns (see server.ts).
 */
export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    ...(options.loggerInstance ? { loggerInstance: options.loggerInstance } : { logger: options.logger ?? false }),
    bodyLimit: BODY_LIMIT,
    // A slow client cannot hold a socket forever when the server faces the internet.
    requestTimeout: 30_000,
    routerOptions: { ignoreTrailingSlash: true },
    // Shutdown answers with the contract's 503 (see the onRequest hook below), not Fastify's.
    return503OnClosing: false,
    // Errors Fastify meets before routing (a bad percent-encoding) use the contract's body too.
    frameworkErrors: (err: FastifyError, _request: FastifyRequest, reply: FastifyReply) => {
      const error =
        err.code === 'FST_ERR_BAD_URL'
          ? new ApiError(400, 'MALFORMED_REQUEST', 'The request URL is not validly percent-encoded.')
          : new ApiError(400, 'MALFORMED_REQUEST', 'The request is malformed.');
      return reply.code(400).type('application/json').send(error.toBody());
    },
    // And so do requests Node's HTTP parser refuses (a 20 KB header, raw bytes in the path).
    clientErrorHandler: (err: NodeJS.ErrnoException, socket) => {
      if (!socket.writable) {
        socket.destroy();
        return;
      }
      const tooLarge = err.code === 'HPE_HEADER_OVERFLOW';
      const status = tooLarge ? 431 : 400;
      const body = JSON.stringify(
        new ApiError(status, 'MALFORMED_REQUEST', tooLarge ? 'The request headers are too large.' : 'The request is malformed.').toBody(),
      );
      socket.end(
        `HTTP/1.1 ${status} ${tooLarge ? 'Request Header Fields Too Large' : 'Bad Request'}\r\n` +
          `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
    },
  });

  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onRequest', async (_request, reply) => {
    if (closing) {
      reply.header('connection', 'close');
      throw serviceUnavailable('The server is shutting down; retry shortly.');
    }
  });

  // JSON only: a text/plain body is a 415, not a string handed to validation.
  app.removeContentTypeParser('text/plain');
  // Some clients send Content-Type: application/json on every request, DELETE included:
  // an empty body is "no body" (rejected where one is required), not malformed JSON.
  const parseJson = app.getDefaultJsonParser('error', 'error');
  const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    const charset = /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(request.headers['content-type'] ?? '')?.[1];
    if (charset !== undefined && !/^utf-?8$/i.test(charset)) {
      return done(new ApiError(415, 'UNSUPPORTED_MEDIA_TYPE', 'Send the request body as application/json in UTF-8.'), undefined);
    }
    if (body.length === 0) return done(null, undefined);
    let text: string;
    try {
      // Bytes that are not UTF-8 are refused, not stored as U+FFFD.
      text = utf8.decode(body as Buffer);
    } catch {
      return done(new ApiError(400, 'MALFORMED_REQUEST', 'The request body is not valid UTF-8.'), undefined);
    }
    return parseJson(request, text, (err, value) => {
      if (!err) return done(null, value);
      try {
        JSON.parse(text);
      } catch {
        return done(err, undefined); // not JSON at all: MALFORMED_REQUEST
      }
      // Valid JSON that the parser refused: a __proto__ (or constructor.prototype) key.
      const field = text.includes('"__proto__"') ? '__proto__' : 'constructor';
      return done(invalidField('body', field, 'is not an allowed field'), undefined);
    });
  });

  const spec = loadSpec();
  await app.register(validation);
  await app.register(errors, { spec });
  await app.register(cors, { origins: options.corsOrigins });
  await app.register(db, { sql: options.sql });
  await app.register(auth, {
    secretKey: options.secretKey,
    jwksUrl: options.jwksUrl,
    issuer: options.issuer,
    audience: options.audience,
    clockToleranceS: options.clockToleranceS,
    jwksMinRefetchIntervalMs: options.jwksMinRefetchIntervalMs,
  });
  await app.register(docs);

  // The contract counts a title's length after trimming, so trim before validation.
  app.addHook('preValidation', async (request) => {
    const body = request.body as Record<string, unknown> | null | undefined;
    if (body && typeof body === 'object' && !Array.isArray(body) && typeof body.title === 'string') {
      body.title = body.title.trim();
    }
  });

  const handlers: Handlers = {
    ...createServiceHandlers(spec.info.version),
    ...createHealthHandlers(options.sql),
    ...createTaskHandlers(options.sql),
  };

  await app.register(openapiGlue, {
    specification: spec,
    operationResolver: (operationId, method, path) => {
      const op = operationAt(spec, path, method);
      if (!op || !(operationId in handlers)) throw new Error(`No handler for operation ${operationId}`);
      const id = operationId as OperationId;
      const isPublic = (PUBLIC_OPERATIONS as readonly string[]).includes(id);
      if (isPublic === requiresBearer(spec, op)) {
        throw new Error(`${id}: openapi.yaml and PUBLIC_OPERATIONS disagree on whether it needs a token`);
      }
      const bodyRequired = (op.requestBody as { required?: boolean } | undefined)?.required === true;
      return {
        handler: toRouteHandler(id, handlers, options.operationDeadlineMs),
        // Fastify skips body validation when there is no body at all.
        ...(bodyRequired && { preValidation: rejectMissingBody }),
        // onRequest: a request without valid credentials is refused before its body is read.
        ...(isPublic ? {} : { onRequest: app.authenticate }),
      } as never;
    },
  });

  return app;
}
