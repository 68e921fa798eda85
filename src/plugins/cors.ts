import fastifyCors from '@fastify/cors';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';

export interface CorsOptions {
  /** Exact origins (CORS_ORIGINS). */
  origins: string[];
  /** Outside production: any loopback origin, whatever its port (every dev server's). */
  allowLoopback?: boolean | undefined;
}

/** http(s)://localhost, 127.0.0.1 or [::1], on any port. */
const LOOPBACK = /^https?:\/\/(localhost|127\.0\.0\.1|\[::1\])(:\d{1,5})?$/;

/**
 * Listed origins (and, in development, any loopback one) get their origin echoed, with
 * credentials; any other origin gets no CORS headers, so the browser blocks it.
 */
async function cors(app: FastifyInstance, options: CorsOptions): Promise<void> {
  const allowed = new Set(options.origins);
  const isAllowed = (origin: string | undefined) => origin !== undefined && (allowed.has(origin) || (options.allowLoopback === true && LOOPBACK.test(origin)));
  // A refused preflight is the first thing a frontend developer hits, and the browser shows
  // only a generic error: say in the log, at warn, what would allow it.
  app.addHook('onRequest', (request, _reply, done) => {
    const origin = request.headers.origin;
    if (request.method === 'OPTIONS' && origin !== undefined && request.headers['access-control-request-method'] !== undefined && !isAllowed(origin)) {
      request.log.warn(
        { origin: origin.slice(0, 200), variable: 'CORS_ORIGINS' },
        'CORS preflight refused for this origin: add it to CORS_ORIGINS (comma-separated exact origins) to allow it',
      );
    }
    done();
  });
  await app.register(fastifyCors, {
    origin: (origin, callback) => callback(null, isAllowed(origin)),
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
