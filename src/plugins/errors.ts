import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { ApiError, serviceUnavailable, type FieldError } from '../errors.ts';
import { isDataException, isDatabaseUnavailable } from '../db/client.ts';
import { HTTP_METHODS, type OpenApiDocument } from '../contract/spec.ts';

type ValidationIssue = NonNullable<FastifyError['validation']>[number];

const LOCATIONS: Record<string, FieldError['in']> = { body: 'body', querystring: 'query', params: 'path', headers: 'header' };

/** Header names arrive lower-cased; name them as the contract does (if-match -> If-Match). */
const headerName = (lower: string) => lower.replace(/(^|-)([a-z])/g, (_, dash: string, c: string) => dash + c.toUpperCase());

/** One entry per failing field (the first problem found), named as the client sent it. */
function fieldErrors(err: FastifyError): FieldError[] {
  const where = LOCATIONS[err.validationContext ?? 'body'] ?? 'body';
  const byField = new Map<string, FieldError>();
  for (const issue of err.validation ?? []) {
    const entry = describe(where, issue);
    if (!byField.has(entry.field)) byField.set(entry.field, entry);
  }
  return [...byField.values()];
}

function describe(where: FieldError['in'], issue: ValidationIssue): FieldError {
  const params = issue.params as Record<string, unknown>;
  const path = issue.instancePath.replace(/^\//, '');
  const base = where === 'header' ? headerName(path) : path;
  const child = (name: unknown) => (base ? `${base}/${String(name)}` : String(name));
  switch (issue.keyword) {
    case 'required':
      return { in: where, field: child(params.missingProperty), message: 'is required' };
    case 'additionalProperties':
      return { in: where, field: child(params.additionalProperty), message: 'is not an allowed field' };
    case 'minProperties':
      return { in: where, field: base, message: 'must contain at least one field to change' };
    case 'enum':
      return { in: where, field: base, message: `must be one of: ${(params.allowedValues as unknown[]).join(', ')}` };
    case 'format':
      return { in: where, field: base, message: params.format === 'uuid' ? 'must be a UUID' : `must be a valid ${String(params.format)}` };
    case 'pattern':
      if (base === 'id') return { in: where, field: base, message: 'must be a UUID' };
      if (base === 'title') return { in: where, field: base, message: 'must not contain NUL characters or unpaired surrogates' };
      if (base === 'Idempotency-Key') return { in: where, field: base, message: 'must be 1 to 255 visible ASCII characters (no spaces)' };
      break;
    case 'minLength':
      if (base === 'title') return { in: where, field: base, message: 'must not be empty or only white space' };
      break;
  }
  return { in: where, field: base, message: issue.message ?? 'is invalid' };
}

/** Fastify's own 4xx errors, by code, in the contract's terms. */
function fromFastifyError(err: FastifyError): ApiError | undefined {
  if (err.validation) {
    return new ApiError(400, 'VALIDATION_ERROR', 'The request is invalid.', fieldErrors(err));
  }
  if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    return new ApiError(413, 'PAYLOAD_TOO_LARGE', err.message.replace(/^Request body/, 'The request body'));
  }
  if (err instanceof SyntaxError || err.code === 'FST_ERR_CTP_INVALID_JSON_BODY') {
    return new ApiError(400, 'MALFORMED_REQUEST', 'The request body is not valid JSON.');
  }
  const status = err.statusCode ?? 500;
  if (status === 413) return new ApiError(413, 'PAYLOAD_TOO_LARGE', 'The request body is too large.');
  if (status === 415) return new ApiError(415, 'UNSUPPORTED_MEDIA_TYPE', 'Send the request body as application/json.');
  if (status === 404) return new ApiError(404, 'NOT_FOUND', 'Not found.');
  if (status >= 400 && status < 500) return new ApiError(400, 'MALFORMED_REQUEST', 'The request is malformed.');
  return undefined;
}

/** Path templates of the spec as regular expressions, to answer 405 with Allow. */
function routeTable(spec: OpenApiDocument): Array<{ pattern: RegExp; methods: string[] }> {
  return Object.entries(spec.paths).map(([path, item]) => ({
    pattern: new RegExp(`^${path.replace(/[.*+?^${}()|[\]\\]/g, (c) => (c === '{' || c === '}' ? c : `\\${c}`)).replace(/\{[^}]+\}/g, '[^/]+')}/?$`),
    // Fastify answers HEAD wherever there is a GET.
    methods: HTTP_METHODS.filter((m) => m in item || (m === 'head' && 'get' in item)).map((m) => m.toUpperCase()),
  }));
}

/**
 * One error body for every failure. Client errors say what is wrong; server
 * errors say nothing about why (the log has it, with the request id).
 */
async function errors(app: FastifyInstance, options: { spec: OpenApiDocument }): Promise<void> {
  const routes = routeTable(options.spec);

  app.setErrorHandler((err: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    let apiError = err instanceof ApiError ? err : fromFastifyError(err);
    if (!apiError) {
      if (isDataException(err)) {
        // Input the contract let through but PostgreSQL refused: still the client's error.
        request.log.warn({ err }, 'the database refused a value that passed validation');
        apiError = new ApiError(400, 'VALIDATION_ERROR', 'A value is malformed or out of range.', []);
      } else if (isDatabaseUnavailable(err)) {
        request.log.error({ err }, 'database unavailable');
        apiError = serviceUnavailable();
      } else {
        request.log.error({ err }, 'unhandled error');
        apiError = new ApiError(500, 'INTERNAL_ERROR', 'An unexpected error occurred.');
      }
    } else if (apiError.statusCode >= 400 && apiError.statusCode < 500 && !(err instanceof ApiError)) {
      request.log.info({ code: apiError.code, reason: err.message }, 'request rejected');
    }
    return reply.code(apiError.statusCode).headers(apiError.headers).type('application/json').send(apiError.toBody());
  });

  app.setNotFoundHandler((request: FastifyRequest, reply: FastifyReply) => {
    const path = request.url.split('?')[0] ?? '';
    const route = routes.find((r) => r.pattern.test(path));
    if (route && request.method === 'OPTIONS') {
      // A preflight from an origin CORS did not accept, or a plain OPTIONS: say what is allowed.
      return reply.code(204).header('allow', route.methods.join(', ')).send();
    }
    if (route && !route.methods.includes(request.method)) {
      const error = new ApiError(405, 'METHOD_NOT_ALLOWED', `${request.method} is not allowed here; use ${route.methods.join(', ')}.`);
      return reply.code(405).header('allow', route.methods.join(', ')).type('application/json').send(error.toBody());
    }
    const error = new ApiError(404, 'NOT_FOUND', `No route ${request.method} ${path}.`);
    return reply.code(404).type('application/json').send(error.toBody());
  });
}

export default fp(errors, { name: 'errors', fastify: '5.x' });
