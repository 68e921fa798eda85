import type { FastifyError, FastifyInstance, preValidationHookHandler } from 'fastify';
import fp from 'fastify-plugin';
import type { OpenApiDocument } from '../contract/spec.ts';
import { ApiError, invalidField, TEXT_MESSAGE, UNPAIRED_SURROGATE, unsupportedMediaType } from '../errors.ts';

/** Body fields whose text the server checks for unpaired surrogates. */
const TEXT_BODY_FIELDS = ['title', 'notes'] as const;

/**
 * The preValidation of operations that take a body: a required one must be there
 * (Fastify skips body validation when there is none), and the text fields must be
 * well-formed Unicode, which the contract's patterns leave to the server so that every
 * regex engine reads them alike. Synchronous: it is on every write's path.
 */
export function prepareBody(required: boolean): preValidationHookHandler {
  return (request, _reply, done) => {
    const body = request.body as Record<string, unknown> | null | undefined;
    if (body === undefined || body === null) {
      return required ? done(invalidField('body', '', 'a JSON object body is required') as unknown as FastifyError) : done();
    }
    if (typeof body === 'object' && !Array.isArray(body)) {
      for (const field of TEXT_BODY_FIELDS) {
        const value = body[field];
        if (typeof value === 'string' && UNPAIRED_SURROGATE.test(value)) {
          return done(invalidField('body', field, TEXT_MESSAGE) as unknown as FastifyError);
        }
      }
    }
    done();
  };
}

/** Every media type named under a `content` anywhere in the contract. */
function mediaTypes(node: unknown, found = new Set<string>()): Set<string> {
  if (typeof node !== 'object' || node === null) return found;
  for (const [key, value] of Object.entries(node)) {
    if (key === 'content' && typeof value === 'object' && value !== null) for (const type of Object.keys(value)) found.add(type);
    mediaTypes(value, found);
  }
  return found;
}

/**
 * JSON only, UTF-8 only: a text/plain body is a 415, not a string handed to
 * validation, and bytes that are not UTF-8 are refused rather than stored as U+FFFD.
 */
async function jsonBody(app: FastifyInstance, options: { spec: OpenApiDocument }): Promise<void> {
  app.removeContentTypeParser('text/plain');
  // fastify-openapi-glue asks for a body parser for every media type in the contract,
  // responses included (an event stream, an HTML page): no request body is one of those,
  // so each is refused as any other type that is not JSON.
  for (const type of mediaTypes(options.spec)) {
    if (type === 'application/json') continue;
    app.addContentTypeParser(type, (request, _payload, done) => done(unsupportedMediaType(request.headers['content-type']), undefined));
  }
  // Some clients send Content-Type: application/json on every request, DELETE included:
  // an empty body is "no body" (rejected where one is required), not malformed JSON.
  const parseJson = app.getDefaultJsonParser('error', 'error');
  const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    const charset = /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(request.headers['content-type'] ?? '')?.[1];
    if (charset !== undefined && !/^utf-?8$/i.test(charset)) {
      return done(unsupportedMediaType(request.headers['content-type']), undefined);
    }
    if (body.length === 0) return done(null, undefined);
    let text: string;
    try {
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
}

export default fp(jsonBody, { name: 'json-body', fastify: '5.x' });
