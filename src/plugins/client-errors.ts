import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ApiError } from '../errors.ts';
import { REQUEST_ID_HEADER } from './request-id.ts';

/**
 * The contract's error body for requests that never reach a route. These are
 * Fastify server options (they act before any plugin's hooks), so app.ts passes
 * them to Fastify() rather than registering them.
 */

/** Errors Fastify meets before routing (a bad percent-encoding). */
export function frameworkErrors(err: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const error =
    err.code === 'FST_ERR_BAD_URL'
      ? new ApiError(400, 'MALFORMED_REQUEST', 'The request URL is not validly percent-encoded.')
      : new ApiError(400, 'MALFORMED_REQUEST', 'The request is malformed.');
  void reply.code(400).header(REQUEST_ID_HEADER, request.id).type('application/json').send(error.toBody());
}

/**
 * Requests Node's HTTP parser refuses (a 20 KB header, raw bytes in the path):
 * answered on the raw socket, since there is no request object, with an id of
 * their own that the log line carries too.
 */
export function clientErrorHandler(this: FastifyInstance, err: NodeJS.ErrnoException, socket: Socket): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const tooLarge = err.code === 'HPE_HEADER_OVERFLOW';
  const status = tooLarge ? 431 : 400;
  const id = randomUUID();
  this.log.info({ reqId: id, status, reason: err.code }, 'request refused by the HTTP parser');
  const body = JSON.stringify(
    new ApiError(status, 'MALFORMED_REQUEST', tooLarge ? 'The request headers are too large.' : 'The request is malformed.').toBody(),
  );
  socket.end(
    `HTTP/1.1 ${status} ${tooLarge ? 'Request Header Fields Too Large' : 'Bad Request'}\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
      `X-Request-Id: ${id}\r\nConnection: close\r\n\r\n${body}`,
  );
}
