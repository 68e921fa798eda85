import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { ApiError, methodNotAllowed, noRoute, serviceUnavailable, TEXT_MESSAGE, unsupportedMediaType, type FieldError } from '../errors.ts';
import { isDataException, isDatabaseUnavailable } from '../db/client.ts';
import { DeadlineExpiredError } from '../db/deadline.ts';
import { routeTable, type OpenApiDocument } from '../contract/spec.ts';
import { boundedUrl } from './request-log.ts';

type ValidationIssue = NonNullable<FastifyError['validation']>[number];

const LOCATIONS: Record<string, FieldError['in']> = { body: 'body', querystring: 'query', params: 'path', headers: 'header' };
const PARTS: Record<FieldError['in'], 'body' | 'query' | 'params' | 'headers'> = {
  body: 'body',
  query: 'query',
  path: 'params',
  header: 'headers',
};

/** Header names arrive lower-cased; name them as the contract does (if-match -> If-Match). */
const headerName = (lower: string) => lower.replace(/(^|-)([a-z])/g, (_, dash: string, c: string) => dash + c.toUpperCase());

/** An error response stays small whatever was sent: at most this many `details`... */
export const MAX_DETAILS = 20;
/** ...and field names (which a client chooses) cut to this many characters. */
const MAX_FIELD_NAME = 100;

const boundedName = (name: string) => (name.length <= MAX_FIELD_NAME ? name : `${name.slice(0, MAX_FIELD_NAME)}…`);

// Fields whose pattern stands for a rule the message should name.
const UUID_FIELDS = new Set(['id', 'before', 'after']);
const TEXT_FIELDS = new Set(['title', 'notes', 'q']);
const DATE_FIELDS = new Set(['due_date', 'due_before', 'due_after', 'today']);
const DATE_MESSAGE = 'must be a calendar date YYYY-MM-DD that exists';

/** The value at an ajv instancePath ("/title") in the part of the request that failed. */
function valueAt(data: unknown, instancePath: string): unknown {
  let value = data;
  for (const segment of instancePath.split('/').slice(1)) {
    if (typeof value !== 'object' || value === null) return undefined;
    value = (value as Record<string, unknown>)[segment.replace(/~1/g, '/').replace(/~0/g, '~')];
  }
  return value;
}

const jsonType = (value: unknown) =>
  value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value === 'object' ? 'an object' : `a ${typeof value}`;

/** One entry per failing field (the first problem found), named as the client sent it, in our words. */
function fieldErrors(err: FastifyError, request: FastifyRequest): FieldError[] {
  const where = LOCATIONS[err.validationContext ?? 'body'] ?? 'body';
  const data = request[PARTS[where]];
  const byField = new Map<string, FieldError>();
  const part = (request.routeOptions.schema as Record<string, unknown> | undefined)?.[PARTS[where] === 'query' ? 'querystring' : PARTS[where]];
  // Glue gives a body's schema by media type, as the contract does.
  const schema = schemaAt(part, '#/content/application~1json/schema') ?? part;
  for (const issue of collapseOneOf(err.validation ?? [], schema)) {
    const entry = describe(where, issue, data, schema);
    if (!byField.has(entry.field)) byField.set(entry.field, entry);
  }
  return [...byField.values()];
}

/** The schema at an ajv schemaPath ("#/oneOf"), if it is there. */
function schemaAt(schema: unknown, schemaPath: string): unknown {
  let node = schema;
  for (const segment of schemaPath.replace(/^#\/?/, '').split('/').filter(Boolean)) {
    if (typeof node !== 'object' || node === null) return undefined;
    node = (node as Record<string, unknown>)[segment.replace(/~1/g, '/').replace(/~0/g, '~')];
  }
  return node;
}

/**
 * A value that matches none of a oneOf's shapes (a move's before/after/to) fails every
 * shape, and ajv lists all their errors. Keep those of the one shape whose fields fit (a bad
 * value of `to`, say), or else one error naming the fields of which exactly one is expected.
 */
function collapseOneOf(issues: ValidationIssue[], schema: unknown): ValidationIssue[] {
  const oneOf = issues.find((i) => i.keyword === 'oneOf');
  if (!oneOf) return issues;
  const prefix = `${oneOf.schemaPath}/`;
  const branches = new Map<string, ValidationIssue[]>();
  const rest: ValidationIssue[] = [];
  for (const issue of issues) {
    if (issue === oneOf) continue;
    if (!issue.schemaPath.startsWith(prefix)) rest.push(issue);
    else {
      const branch = issue.schemaPath.slice(prefix.length).split('/')[0] ?? '';
      branches.set(branch, [...(branches.get(branch) ?? []), issue]);
    }
  }
  const misfit = (list: ValidationIssue[]) =>
    list.some((i) => i.instancePath === oneOf.instancePath && (i.keyword === 'required' || i.keyword === 'additionalProperties'));
  const fitting = [...branches.values()].filter((list) => !misfit(list));
  if (fitting.length === 1 && fitting[0]) return [...rest, ...fitting[0]];
  const shapes = schemaAt(schema, oneOf.schemaPath);
  const names = Array.isArray(shapes) ? shapes.flatMap((s: { required?: string[] }) => s.required ?? []) : [];
  // A field no shape knows is the problem to name ("position is not an allowed field").
  const unknown = new Map<unknown, ValidationIssue>();
  for (const list of branches.values()) {
    for (const i of list) {
      const field = (i.params as { additionalProperty?: unknown }).additionalProperty;
      if (i.keyword === 'additionalProperties' && i.instancePath === oneOf.instancePath && !names.includes(String(field))) unknown.set(field, i);
    }
  }
  if (unknown.size > 0) return [...rest, ...unknown.values()];
  return [...rest, { ...oneOf, params: { ...oneOf.params, names } }];
}

/** "; known: status, limit, cursor": a misspelled parameter's message names the right ones. */
function knownNames(schema: unknown): string {
  const names = Object.keys((schema as { properties?: Record<string, unknown> } | undefined)?.properties ?? {});
  return names.length > 0 && names.length <= 12 ? `; known: ${names.join(', ')}` : '';
}

function describe(where: FieldError['in'], issue: ValidationIssue, data: unknown, schema?: unknown): FieldError {
  const params = issue.params as Record<string, unknown>;
  const path = boundedName(issue.instancePath.replace(/^\//, ''));
  const base = where === 'header' ? headerName(path) : path;
  const child = (name: unknown) => boundedName(base ? `${base}/${String(name)}` : String(name));
  const value = () => valueAt(data, issue.instancePath);
  switch (issue.keyword) {
    case 'required':
      return { in: where, field: child(params.missingProperty), message: 'is required' };
    case 'additionalProperties':
      return {
        in: where,
        field: child(params.additionalProperty),
        message: where === 'query' ? `is not a known query parameter${knownNames(schema)}` : 'is not an allowed field',
      };
    case 'oneOf': {
      const names = (params.names as string[] | undefined) ?? [];
      return { in: where, field: base, message: names.length > 0 ? `must have exactly one of: ${names.join(', ')}` : 'must match exactly one of the allowed shapes' };
    }
    case 'minProperties':
      return { in: where, field: base, message: 'must contain at least one field to change' };
    case 'maxProperties':
      return { in: where, field: base, message: `must contain at most ${String(params.limit)} field${params.limit === 1 ? '' : 's'}` };
    case 'enum':
      return { in: where, field: base, message: `must be one of: ${(params.allowedValues as unknown[]).join(', ')}` };
    case 'format':
      if (params.format === 'date') return { in: where, field: base, message: DATE_MESSAGE };
      return { in: where, field: base, message: params.format === 'uuid' ? 'must be a UUID' : `must be a valid ${String(params.format)}` };
    case 'type':
      return { in: where, field: base, message: `must be ${/^[aeiou]/.test(String(params.type)) ? 'an' : 'a'} ${String(params.type)}; got ${jsonType(value())}` };
    case 'pattern':
      if (UUID_FIELDS.has(base)) return { in: where, field: base, message: 'must be a UUID' };
      // A title's pattern also asks for one character that is not white space.
      if (base === 'title' && !String(value()).includes('\u0000')) return { in: where, field: base, message: 'must not be empty or only white space' };
      if (TEXT_FIELDS.has(base)) return { in: where, field: base, message: TEXT_MESSAGE };
      if (DATE_FIELDS.has(base)) return { in: where, field: base, message: DATE_MESSAGE };
      if (base === 'Idempotency-Key') return { in: where, field: base, message: 'must be 1 to 255 visible ASCII characters (no spaces)' };
      break;
    case 'minLength':
      if (base === 'title') return { in: where, field: base, message: 'must not be empty or only white space' };
      return { in: where, field: base, message: `must be at least ${String(params.limit)} characters; got ${[...String(value())].length}` };
    case 'maxLength':
      // Code points, as the contract (and ajv) count them: 500 emoji are 500 characters.
      return { in: where, field: base, message: `must be at most ${String(params.limit)} characters; got ${[...String(value())].length}` };
    case 'minimum':
      return { in: where, field: base, message: `must be at least ${String(params.limit)}; got ${String(value())}` };
    case 'maximum':
      return { in: where, field: base, message: `must be at most ${String(params.limit)}; got ${String(value())}` };
  }
  return { in: where, field: base, message: issue.message ?? 'is invalid' };
}

/**
 * A VALIDATION_ERROR whose message names the first problem in words and whose
 * details list at most MAX_DETAILS of them, saying how many more there were.
 */
export function validationError(all: FieldError[]): ApiError {
  const listed = all.slice(0, MAX_DETAILS);
  const first = all[0];
  let message = first ? `${first.field === '' ? 'The body' : first.field} ${first.message}.` : 'The request is invalid.';
  if (all.length > MAX_DETAILS) {
    message += ` The request has ${all.length} problems: details lists the first ${MAX_DETAILS}; ${all.length - MAX_DETAILS} more were not listed.`;
  } else if (all.length > 1) {
    message += ` ${all.length - 1} more ${all.length === 2 ? 'problem is' : 'problems are'} listed in details.`;
  }
  return new ApiError(400, 'VALIDATION_ERROR', message, listed);
}

/** Fastify's own 4xx errors, by code, in the contract's terms. */
function fromFastifyError(err: FastifyError, request: FastifyRequest, bodyLimit: number): ApiError | undefined {
  if (err.validation) return validationError(fieldErrors(err, request));
  const status = err.statusCode ?? 500;
  if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE' || status === 413) {
    return new ApiError(413, 'PAYLOAD_TOO_LARGE', `The request body is larger than the limit of ${bodyLimit} bytes (${bodyLimit / 1024} KiB).`);
  }
  if (err instanceof SyntaxError || err.code === 'FST_ERR_CTP_INVALID_JSON_BODY') {
    return new ApiError(400, 'MALFORMED_REQUEST', 'The request body is not valid JSON.');
  }
  if (status === 415) return unsupportedMediaType(request.headers['content-type']);
  if (status === 404) return new ApiError(404, 'NOT_FOUND', 'Not found.');
  if (status >= 400 && status < 500) return new ApiError(400, 'MALFORMED_REQUEST', 'The request is malformed.');
  return undefined;
}

const boundedReason = (err: Error) => (err.message.length <= 200 ? err.message : `${err.message.slice(0, 200)}…`);

/**
 * One error body for every failure. Client errors say what is wrong; server
 * errors say nothing about why (the log has it, with the request id).
 */
async function errors(app: FastifyInstance, options: { spec: OpenApiDocument }): Promise<void> {
  const routes = routeTable(options.spec);
  const bodyLimit = app.initialConfig.bodyLimit ?? 1024 * 1024;

  app.setErrorHandler((err: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    let apiError = err instanceof ApiError ? err : fromFastifyError(err, request, bodyLimit);
    if (!apiError) {
      if (err instanceof DeadlineExpiredError) {
        apiError = serviceUnavailable(`${err.message} Try again shortly.`);
      } else if (isDataException(err)) {
        // Input the contract let through but PostgreSQL refused: still the client's error.
        request.log.warn({ err }, 'the database refused a value that passed validation');
        apiError = new ApiError(400, 'VALIDATION_ERROR', 'A value is malformed or out of range.', []);
      } else if (isDatabaseUnavailable(err)) {
        request.log.error({ err }, 'database unavailable');
        apiError = serviceUnavailable();
      } else {
        request.log.error({ err }, 'unhandled error');
        // The id lets a user report it and an operator find the log line with the cause.
        apiError = new ApiError(500, 'INTERNAL_ERROR', `An unexpected error occurred; quote request id ${request.id} when reporting it.`);
      }
    }
    // The request's one line says why (request-log.ts): the code, and for a refusal by the
    // framework the counts or the reason, never the validator's whole output.
    if (apiError.statusCode >= 400 && apiError.statusCode < 500 && !(err instanceof ApiError)) {
      request.logFields = err.validation
        ? { code: apiError.code, problems: err.validation.length, listed: apiError.details?.length ?? 0 }
        : { code: apiError.code, reason: boundedReason(err) };
    } else {
      request.logFields = { code: apiError.code };
    }
    return reply.code(apiError.statusCode).headers(apiError.headers).type('application/json').send(apiError.toBody());
  });

  const routeOf = (request: FastifyRequest) => routes.find((r) => r.pattern.test(request.url.split('?')[0] ?? ''));
  const notAllowed = (request: FastifyRequest, reply: FastifyReply, methods: string[]) => {
    const error = methodNotAllowed(request.method, methods);
    request.logFields = { code: error.code };
    return reply.code(405).headers(error.headers).type('application/json').send(error.toBody());
  };

  // Before the body is read: a method the path does not have is a 405 whatever the request
  // carries (a QUERY without a Content-Type would otherwise fail body parsing first).
  app.addHook('onRequest', (request, reply, done) => {
    if (!request.is404 || request.method === 'OPTIONS') return done();
    const route = routeOf(request);
    if (route && !route.methods.includes(request.method)) return notAllowed(request, reply, route.methods);
    done();
  });

  app.setNotFoundHandler((request: FastifyRequest, reply: FastifyReply) => {
    const route = routeOf(request);
    if (route && request.method === 'OPTIONS') {
      // A preflight from an origin CORS did not accept, or a plain OPTIONS: say what is allowed.
      return reply.code(204).header('allow', route.methods.join(', ')).send();
    }
    if (route && !route.methods.includes(request.method)) return notAllowed(request, reply, route.methods);
    const error = noRoute(request.method, boundedUrl(request.url.split('?')[0] ?? ''));
    request.logFields = { code: error.code };
    return reply.code(404).type('application/json').send(error.toBody());
  });
}

export default fp(errors, { name: 'errors', fastify: '5.x' });
