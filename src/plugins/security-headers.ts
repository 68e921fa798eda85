import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';

/**
 * Security headers for a JSON API (OWASP's REST Security Cheat Sheet): responses are data,
 * never pages, so nothing may load from them, frame them or sniff them as HTML. Headers
 * that act on HTML documents only (X-XSS-Protection, X-Download-Options,
 * X-DNS-Prefetch-Control, X-Permitted-Cross-Domain-Policies, Origin-Agent-Cluster,
 * Cross-Origin-Opener-Policy) are left to /docs, the one HTML page. Written out once, not
 * rebuilt per request (bench/PROFILE.md).
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
  // CORS decides who may read our responses; CORP only guards no-cors loads (e.g. <img>, <script>).
  'cross-origin-resource-policy': 'same-origin',
  'referrer-policy': 'no-referrer',
  // Served over TLS by whatever fronts it in production; browsers ignore it over plain HTTP.
  'strict-transport-security': 'max-age=31536000; includeSubDomains',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
});

/** Under /api, per-user data: no shared cache may keep it; a browser only to revalidate it with its ETag. */
export const API_CACHE_CONTROL = 'private, no-cache';

/** What a browser needs besides, on the HTML reference page (/docs sets its own CSP, docs.ts). */
export const DOCUMENT_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'cross-origin-opener-policy': 'same-origin',
  'origin-agent-cluster': '?1',
  'x-dns-prefetch-control': 'off',
  'x-download-options': 'noopen',
  'x-permitted-cross-domain-policies': 'none',
  // Legacy XSS auditors did more harm than good: off, as current browsers have it.
  'x-xss-protection': '0',
});

async function securityHeaders(app: FastifyInstance): Promise<void> {
  // onRequest: not-found answers and errors carry them too.
  app.addHook('onRequest', (request, reply, done) => {
    reply.headers(SECURITY_HEADERS);
    const url = request.url;
    if (url.startsWith('/api/') || url === '/api' || url.startsWith('/api?')) reply.header('cache-control', API_CACHE_CONTROL);
    else if (url.startsWith('/docs')) reply.headers(DOCUMENT_HEADERS);
    done();
  });
}

export default fp(securityHeaders, { name: 'security-headers', fastify: '5.x' });
