import fastifyHelmet from '@fastify/helmet';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';

/**
 * Security headers for a JSON API (@fastify/helmet): responses are data, never
 * pages, so nothing may load from them, frame them or sniff them as HTML.
 * /docs sets its own, looser Content-Security-Policy (see docs.ts).
 */
async function securityHeaders(app: FastifyInstance): Promise<void> {
  await app.register(fastifyHelmet, {
    global: true,
    contentSecurityPolicy: {
      useDefaults: false,
      directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"], baseUri: ["'none'"], formAction: ["'none'"] },
    },
    xFrameOptions: { action: 'deny' },
    referrerPolicy: { policy: 'no-referrer' },
    // Served over TLS by whatever fronts it in production; browsers ignore it over plain HTTP.
    strictTransportSecurity: { maxAge: 31_536_000, includeSubDomains: true },
    // CORS decides who may read our responses; CORP only guards no-cors loads (e.g. <img>, <script>).
    crossOriginResourcePolicy: { policy: 'same-origin' },
  });
}

export default fp(securityHeaders, { name: 'security-headers', fastify: '5.x' });
