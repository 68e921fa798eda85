import type { FastifyInstance, FastifyReply, FastifyRequest, RouteHandlerMethod } from 'fastify';
import fp from 'fastify-plugin';
import type { ServerResponse } from 'node:http';
import type { Sql } from '../db/client.ts';
import { OPERATION_DEADLINE_MS, withDeadline } from '../db/deadline.ts';
import { serviceUnavailable, tooManyStreams } from '../errors.ts';
import { readChanges, type ChangePage, type FeedOptions } from './feed.ts';
import { ChangeNotifier } from './notifier.ts';
import type { Position } from './position.ts';
import { createSyncQueries } from './queries.ts';

export interface ChangeStreamOptions extends FeedOptions {
  sql: Sql;
  /** The connection LISTEN runs on (the direct one behind a transaction-mode pooler). */
  listenSql?: Sql | undefined;
  /** A comment line at least this often keeps proxies from closing an idle stream (default 20 s). */
  heartbeatMs?: number | undefined;
  /** Open streams per user on this instance (default 5). */
  maxPerUser?: number | undefined;
  deadlineMs?: number | undefined;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The route handler of GET /api/tasks/changes/stream (bound to the contract in app.ts). */
    changeStream: RouteHandlerMethod;
  }
}

const PAGE_SIZE = 100;
/** A client that reads slower than this much is buffered for is dropped; it reconnects with its next_since. */
const MAX_BUFFERED_BYTES = 1 << 20;

// The id is the page's next_since: an SSE client sends it back as Last-Event-ID.
const event = (page: ChangePage) => `id: ${page.next_since}\nevent: changes\ndata: ${JSON.stringify(page)}\n\n`;

/**
 * Server-sent events over the change feed: the first page (or pages) from `since`,
 * then a page whenever the caller's tasks change on any instance. Each stream
 * re-reads the feed from its own position, so a notification that arrives while it
 * reads, or several at once, are never lost: they just mean "read again".
 */
async function changeStream(app: FastifyInstance, options: ChangeStreamOptions): Promise<void> {
  const queries = createSyncQueries(options.sql);
  const notifier = new ChangeNotifier(options.listenSql ?? options.sql);
  const heartbeatMs = options.heartbeatMs ?? 20_000;
  const maxPerUser = options.maxPerUser ?? 5;
  const deadlineMs = options.deadlineMs ?? OPERATION_DEADLINE_MS;
  const open = new Map<string, Set<ServerResponse>>();
  let closing = false;

  const read = (userId: string, since: string | Position | undefined) =>
    withDeadline((deadline) => readChanges(queries, deadline, userId, since, PAGE_SIZE, options), deadlineMs);

  async function handler(this: FastifyInstance, request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const caller = request.caller;
    if (!caller) throw new Error('the change stream needs an authenticated caller');
    if (closing) throw serviceUnavailable('The server is shutting down; reconnect shortly.');
    const mine = open.get(caller.id) ?? new Set<ServerResponse>();
    if (mine.size >= maxPerUser) throw tooManyStreams(maxPerUser);
    const res = reply.raw;
    mine.add(res);
    open.set(caller.id, mine);
    res.on('close', () => cleanup());

    let reading = true; // the first page is being read
    let again = false; // a change arrived meanwhile: read once more
    let position: Position | undefined;
    let heartbeat: NodeJS.Timeout | undefined;
    let unsubscribe: (() => void) | undefined;
    const cleanup = () => {
      clearInterval(heartbeat);
      unsubscribe?.();
      mine.delete(res);
      if (mine.size === 0 && open.get(caller.id) === mine) open.delete(caller.id);
    };

    const pull = async (): Promise<void> => {
      if (reading) {
        again = true;
        return;
      }
      reading = true;
      try {
        do {
          again = false;
          const { page, next } = await read(caller.id, position);
          position = next;
          if (res.destroyed) return;
          if (page.changes.length > 0) send(page);
          again ||= page.has_more;
        } while (again && !res.destroyed);
      } catch (err) {
        // The client reconnects with the last next_since it saw and loses nothing.
        request.log.warn({ err }, 'change stream: reading the feed failed; closing the stream');
        res.end();
      } finally {
        reading = false;
      }
    };

    const send = (page: ChangePage) => {
      res.write(event(page));
      if (res.writableLength > MAX_BUFFERED_BYTES) res.destroy();
    };

    try {
      // Listening before the first read, so that no change can fall between the two.
      unsubscribe = await notifier.subscribe(caller.id, () => void pull());
      // Read before any byte is sent, so that a bad or expired `since` is still a JSON error.
      // A reconnecting SSE client repeats the URL it started with: its Last-Event-ID is newer.
      const since = (request.headers['last-event-id'] as string | undefined) ?? (request.query as { since?: string }).since;
      const first = await read(caller.id, since);
      position = first.next;
      if (res.destroyed) return; // the client left while we read (cleaned up on 'close')
      reply.hijack();
      // Hijacked replies skip onSend: carry over what the hooks set (CORS, request id).
      for (const [name, value] of Object.entries(reply.getHeaders())) if (value !== undefined) res.setHeader(name, value);
      res.setHeader('x-request-id', request.id); // set in onSend for every other response
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'private, no-cache, no-transform',
        'x-accel-buffering': 'no',
      });
      send(first.page);
      heartbeat = setInterval(() => res.write(': keep-alive\n\n'), heartbeatMs);
      reading = false;
      if (again || first.page.has_more) void pull();
    } catch (err) {
      cleanup();
      throw err;
    }
  }

  app.decorate('changeStream', handler);
  app.addHook('onClose', async () => {
    if (options.listenSql && options.listenSql !== options.sql) await options.listenSql.end({ timeout: 1 });
  });
  // Streams never end by themselves: end them first, so that closing waits for nothing.
  app.addHook('preClose', async () => {
    closing = true;
    for (const streams of open.values()) for (const res of streams) res.end();
  });
}

export default fp(changeStream, { name: 'change-stream', fastify: '5.x' });
