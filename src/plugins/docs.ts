import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { loadSpec, specText } from '../contract/spec.ts';

/**
 * The contract as written (/openapi.yaml, /openapi.json) and an interactive
 * reference at /docs where a user can paste a token and try every call.
 */
async function docs(app: FastifyInstance): Promise<void> {
  const document = loadSpec();
  // Serialised before @fastify/swagger gets (and may annotate) the same object.
  const json = JSON.stringify(document);
  app.get('/openapi.yaml', { schema: { hide: true } }, async (_request, reply) =>
    reply.type('application/yaml; charset=utf-8').send(specText),
  );
  app.get('/openapi.json', { schema: { hide: true } }, async (_request, reply) =>
    reply.type('application/json; charset=utf-8').send(json),
  );

  const reference = forReaders(loadSpec());
  // The page calls the server that serves it (its CSP allows no other): the relative
  // entry first, before the local one that Postman and generated clients start from.
  reference.servers = [...(reference.servers ?? [])].sort((a, b) => Number(/^https?:/.test(a.url)) - Number(/^https?:/.test(b.url)));
  await app.register(fastifySwagger, { mode: 'static', specification: { document: reference as never } });
  await app.register(fastifySwaggerUi, {
    routePrefix: '/docs',
    uiConfig: { persistAuthorization: true, displayRequestDuration: true, tryItOutEnabled: true },
    // The reference page needs its own scripts, styles and calls to this API (the API's
    // responses get default-src 'none' from security-headers.ts).
    staticCSP:
      "default-src 'self'; base-uri 'self'; connect-src 'self'; font-src 'self' data:; frame-ancestors 'self'; " +
      "img-src 'self' data:; object-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; form-action 'self'",
  });
}

/**
 * The reference page's copy of the contract: Swagger UI shows a string schema's
 * `pattern` as its format, and a regular expression tells a reader less than the
 * schema's description, which says the same rule in words. Validation and
 * /openapi.yaml keep the patterns.
 */
export function forReaders<T>(node: T): T {
  if (Array.isArray(node)) return node.map(forReaders) as T;
  if (node === null || typeof node !== 'object') return node;
  const schema = node as Record<string, unknown>;
  const isString = schema.type === 'string' || (Array.isArray(schema.type) && schema.type.includes('string'));
  const isStringSchema = isString && typeof schema.pattern === 'string';
  return Object.fromEntries(
    Object.entries(schema)
      .filter(([key]) => !(isStringSchema && key === 'pattern'))
      .map(([key, value]) => [key, forReaders(value)]),
  ) as T;
}

export default fp(docs, { name: 'docs', fastify: '5.x' });
