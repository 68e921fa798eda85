import fastifyCors from '@fastify/cors';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';

/**
 * Listed origins get their origin echoed, with credentials; any other origin
 * gets no CORS headers, so the browser blocks it.
 */
async function cors(app: FastifyInstance, options: { origins: string[] }): Promise<void> {
  const allowed = new Set(options.origins);
  // A refused preflight is the first thing a frontend developer hits: say what would allow it.
  app.addHook('onRequest', (request, _reply, done) => {
    const origin = request.headers.origin;
    if (request.method === 'OPTIONS' && origin !== undefined && request.headers['access-control-request-method'] !== undefined && !allowed.has(origin)) {
      request.log.info(
        { origin, variable: 'CORS_ORIGINS' },
        `CORS preflight refused for origin ${origin}: add it to CORS_ORIGINS (comma-separated exact origins) to allow it`,
      );
    }
    done();
  });
  await app.register(fastifyCors, {
    origin: (origin, callback) => callback(null, origin !== undefined && allowed.has(origin)),
    credentials: true,
    methods: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'],
    allowedHeaders: ['Authorization', 'Content-Type', 'If-Match', 'If-None-Match', 'Idempotency-Key', 'X-Request-Id'],
    // A browser script sees only these (and the CORS-safelisted ones) of a response.
    exposedHeaders: [
      'ETag',
      'Location',
      'Idempotent-Replayed',
      'Retry-After',
      'X-Request-Id',
      'WWW-Authenticate',
      'RateLimit-Limit',
      'RateLimit-Remaining',
      'RateLimit-Reset',
    ],
    maxAge: 600,
    // An OPTIONS without Access-Control-Request-Method is not a preflight: the not-found
    // handler answers it (204 with Allow) instead of a text/plain 400.
    strictPreflight: false,
  });
}

export default fp(cors, { name: 'cors', fastify: '5.x' });
