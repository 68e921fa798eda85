import Fastify, { type FastifyInstance, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import { ApiError } from './errors.ts';
import openapiGlue from 'fastify-openapi-glue';
import { PUBLIC_OPERATIONS, toRouteHandler, type Handlers, type OperationId } from './contract/handlers.ts';
import { loadSpec, operationAt, requiresBearer } from './contract/spec.ts';
import type { Sql } from './db/client.ts';
import { createHealthHandlers } from './health/handlers.ts';
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
  loggerInstance?: FastifyServerOptions['loggerInstance'];
}

/** Bodies are small JSON objects (a title is at most 500 characters). */
export const BODY_LIMIT = 64 * 1024;

/** The Authorization header never reaches the logs. */
export const LOG_REDACT = ['req.headers.authorization', 'req.headers.cookie'];

async function rejectMissingBody(request: FastifyRequest): Promise<void> {
  if (request.body === undefined || request.body === null) {
    throw new ApiError(400, 'VALIDATION_ERROR', 'The request is invalid.', [
      { in: 'body', field: '', message: 'a JSON object body is required' },
    ]);
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
    return503OnClosing: true,
  });

  // JSON only: a text/plain body is a 415, not a string handed to validation.
  app.removeContentTypeParser('text/plain');
  // Some clients send Content-Type: application/json on every request, DELETE included:
  // an empty body is "no body" (rejected where one is required), not malformed JSON.
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if (body === '') return done(null, undefined);
    return parseJson(request, body.toString(), done);
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

  const handlers: Handlers = { ...createHealthHandlers(options.sql), ...createTaskHandlers(options.sql) };

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
        handler: toRouteHandler(id, handlers),
        // Fastify skips body validation when there is no body at all.
        ...(bodyRequired && { preValidation: rejectMissingBody }),
        // onRequest: a request without valid credentials is refused before its body is read.
        ...(isPublic ? {} : { onRequest: app.authenticate }),
      } as never;
    },
  });

  return app;
}
