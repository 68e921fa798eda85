import { Ajv, type Options } from 'ajv';
import addFormats from 'ajv-formats';
import type { FastifyInstance } from 'fastify';
import type { FastifySchema } from 'fastify/types/schema.js';
import fp from 'fastify-plugin';

const common: Options = {
  allErrors: true,
  useDefaults: true,
  // Extra fields are an error, never silently dropped (e.g. a client sending user_id).
  removeAdditional: false,
  // OpenAPI annotations (description, examples, ...) are not validation keywords.
  strict: false,
};

function makeAjv(options: Options): Ajv {
  const ajv = new Ajv({ ...common, ...options });
  addFormats.default(ajv);
  return ajv;
}

interface HeadersSchema {
  properties?: Record<string, unknown>;
  required?: string[];
  [keyword: string]: unknown;
}

/**
 * Node lower-cases the names of received headers. Fastify adapts header schemas to
 * that only for its own compiler, so with ours the contract's `Idempotency-Key` would
 * never be seen, and never validated.
 */
function lowerCaseHeaders(schema: HeadersSchema): HeadersSchema {
  return {
    ...schema,
    ...(schema.properties && {
      properties: Object.fromEntries(Object.entries(schema.properties).map(([name, s]) => [name.toLowerCase(), s])),
    }),
    ...(schema.required && { required: schema.required.map((name) => name.toLowerCase()) }),
  };
}

/**
 * Bodies are JSON and are validated as sent: no coercion (`123` is not a title).
 * Query, path and header values are strings on the wire, so those are coerced
 * to the contract's types ("20" -> 20), but never from arrays.
 */
async function validation(app: FastifyInstance): Promise<void> {
  const bodyAjv = makeAjv({ coerceTypes: false });
  const paramsAjv = makeAjv({ coerceTypes: true });
  app.setValidatorCompiler(({ schema, httpPart }: { schema: FastifySchema; httpPart?: string }) =>
    (httpPart === 'body' ? bodyAjv : paramsAjv).compile(httpPart === 'headers' ? lowerCaseHeaders(schema as HeadersSchema) : (schema as object)),
  );
  // Unknown query parameters are refused like unknown body fields: a typo such as
  // ?completed=true must not silently return everything. Only the contract's /api operations
  // (openapi-glue puts the operationId in the schema): probes may add cache-busters to
  // /health, and /docs has parameters of its own.
  app.addHook('onRoute', (route) => {
    const schema = route.schema as (FastifySchema & { operationId?: string; querystring?: Record<string, unknown> }) | undefined;
    if (schema?.operationId === undefined || !route.url.startsWith('/api/')) return;
    schema.querystring = { type: 'object', properties: {}, ...schema.querystring, additionalProperties: false };
  });
}

export default fp(validation, { name: 'validation', fastify: '5.x' });
