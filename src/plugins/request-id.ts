import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';

export const REQUEST_ID_HEADER = 'x-request-id';

/** What a client may choose as its own id: short, and safe in a log line and a header. */
const USABLE_ID = /^[A-Za-z0-9._-]{1,128}$/;

/**
 * Fastify's genReqId: the client's X-Request-Id when it is usable (so a trace
 * can span the caller and us), a fresh UUID otherwise. Fastify logs every line
 * of the request with it (reqId).
 */
export function requestIdFor(raw: Pick<IncomingMessage, 'headers'>): string {
  const sent = raw.headers[REQUEST_ID_HEADER];
  return typeof sent === 'string' && USABLE_ID.test(sent) ? sent : randomUUID();
}

/** Every response carries its request's id, errors and 404s included (onSend sees them all). */
async function requestId(app: FastifyInstance): Promise<void> {
  // Synchronous: it runs on every response.
  app.addHook('onSend', (request, reply, payload, done) => {
    reply.header(REQUEST_ID_HEADER, request.id);
    done(null, payload);
  });
}

export default fp(requestId, { name: 'request-id', fastify: '5.x' });
