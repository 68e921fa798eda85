import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { Server as NetServer, type Socket } from 'node:net';
import { serviceUnavailable } from '../errors.ts';

export interface ShutdownOptions {
  /**
   * How long `close()` lets open keep-alive connections end by themselves (each
   * closes after its next response) before the idle ones are cut. Default 500 ms.
   */
  idleGraceMs?: number | undefined;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Graceful shutdown under load. On `close()`: new connections are refused at once;
 * requests already accepted run to completion and their responses carry
 * `Connection: close`; any later request on an open keep-alive connection gets the
 * contract's 503 with `Connection: close`. Only then are idle connections cut, so a
 * client never sees its connection reset while it is being answered.
 */
async function shutdown(app: FastifyInstance, options: ShutdownOptions): Promise<void> {
  const idleGraceMs = options.idleGraceMs ?? 500;
  let closing = false;
  const sockets = new Set<Socket>();
  app.server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  // Connections that have sent a request. Node's closeIdleConnections cuts those once idle,
  // but not one that never sent a request (a browser's preconnect, a load balancer's spare):
  // close() would wait for it until the request timeout. Those are cut after the grace.
  const served = new WeakSet<Socket>();

  // Both hooks are synchronous: they run on every request.
  app.addHook('onRequest', (request, reply, done) => {
    if (request.raw.socket) served.add(request.raw.socket); // (a destroyed request's may be gone)
    if (!closing) return done();
    reply.header('connection', 'close');
    done(serviceUnavailable('The server is shutting down; retry shortly.'));
  });
  // A response to a request accepted before close() ends its keep-alive connection:
  // Node would otherwise keep it open (idle) until keepAliveTimeout, delaying exit.
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (closing) reply.header('connection', 'close');
    done(null, payload);
  });

  app.addHook('preClose', async () => {
    closing = true;
    // http.Server#close would also cut idle keep-alive connections right now, racing a
    // client that is about to reuse one: stop listening only (net.Server#close), and let
    // Fastify's own close() cut what is still idle once the grace below has passed.
    if (app.server.listening) NetServer.prototype.close.call(app.server);
    const until = Date.now() + idleGraceMs;
    while (sockets.size > 0 && Date.now() < until) await sleep(10);
    for (const socket of sockets) if (!served.has(socket)) socket.destroy();
  });
}

export default fp(shutdown, { name: 'shutdown', fastify: '5.x' });
