import { negotiate } from '@fastify/accept-negotiator';
import type { FastifyInstance, onSendAsyncHookHandler } from 'fastify';
import fp from 'fastify-plugin';
import type { components } from '../generated/openapi.ts';

type ServiceIndex = components['schemas']['ServiceIndex'];

const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** The index as a page: the same links, clickable, and how to get a token. */
function page(index: ServiceIndex): string {
  const link = (href: string, text: string) => `<li><a href="${escape(href)}">${escape(text)}</a></li>`;
  return `<!doctype html>
<html lang="en">
<meta charset="utf-8">
<title>${escape(index.name)} ${escape(index.version)}</title>
<h1>${escape(index.name)} <small>${escape(index.version)}</small></h1>
<ul>
${link(index.links.docs, 'API reference (try every call)')}
${link(index.links.openapi, 'The contract (openapi.yaml)')}
${link(index.links.health, 'Health')}
</ul>
<p>Every <code>/api</code> call needs <code>Authorization: Bearer &lt;token&gt;</code>. In development,
<code>npm run -s token -- --sub alice</code> prints one signed with this server's secret; in
production the token comes from your sign-in (Better Auth or any HS256/JWKS issuer).</p>
</html>
`;
}

/**
 * GET / in a browser: the same answer as a small HTML page whose links can be clicked;
 * JSON stays the answer for every other client (the handler is unchanged: this only
 * renders its body when the request prefers text/html).
 */
async function htmlIndex(app: FastifyInstance): Promise<void> {
  const render: onSendAsyncHookHandler = async (request, reply, payload) => {
    reply.header('vary', 'Accept');
    if (reply.statusCode !== 200 || typeof payload !== 'string') return payload;
    if (negotiate(request.headers.accept ?? '*/*', ['application/json', 'text/html']) !== 'text/html') return payload;
    reply.type('text/html; charset=utf-8');
    return page(JSON.parse(payload) as ServiceIndex);
  };
  // On the index's route only (GET /, and the HEAD Fastify adds): no other response pays for it.
  app.addHook('onRoute', (route) => {
    if (route.url !== '/' || (route.method !== 'GET' && route.method !== 'HEAD')) return;
    const own = route.onSend === undefined ? [] : Array.isArray(route.onSend) ? route.onSend : [route.onSend];
    route.onSend = [render, ...own]; // first: a HEAD route's own hook drops the body after it
  });
}

export default fp(htmlIndex, { name: 'html-index', fastify: '5.x' });
