import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';

/**
 * Security headers for a JSON API: responses are data, never pages, so nothing may
 * load from them, frame them or sniff them as HTML. The set helmet sends with this
 * policy, written out once: helmet's middleware rebuilt the same strings on every
 * request (bench/PROFILE.md). /docs sets its own, looser Content-Security-Policy
 * (see docs.ts), which replaces this one on its responses.
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'content-security-policy': "default-src 'none';frame-ancestors 'none';base-uri 'none';form-action 'none'",
  'cross-origin-opener-policy': 'same-origin',
  // CORS decides who may read our responses; CORP only guards no-cors loads (e.g. <img>, <script>).
  'cross-origin-resource-policy': 'same-origin',
  'origin-agent-cluster': '?1',
  'referrer-policy': 'no-referrer',
  // Served over TLS by whatever fronts it in production; browsers ignore it over plain HTTP.
  'strict-transport-security': 'max-age=31536000; includeSubDomains',
  'x-content-type-options': 'nosniff',
  'x-dns-prefetch-control': 'off',
  'x-download-options': 'noopen',
  'x-frame-options': 'DENY',
  'x-permitted-cross-domain-policies': 'none',
  // Legacy XSS auditors did more harm than good: off, as current browsers have it.
  'x-xss-protection': '0',
});

async function securityHeaders(app: FastifyInstance): Promise<void> {
  // onRequest, as helmet did: not-found answers and errors carry them too.
  app.addHook('onRequest', (_request, reply, done) => {
    reply.headers(SECURITY_HEADERS);
    done();
  });
}

export default fp(securityHeaders, { name: 'security-headers', fastify: '5.x' });
