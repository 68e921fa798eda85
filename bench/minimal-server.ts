/**
 * The comparator of `npm run bench`: the least a server on our stack can do for the
 * same requests. Plain Fastify 5 + postgres.js + fast-jwt (HS256, with its verdict
 * cache), no contract validation, and exactly the SQL of
 * src/tasks/queries.ts, one statement per request (a move: the same call of
 * todo_move_task, sql/0003). Keep the SQL in step with that file, or the ratio compares
 * different work. It serves what the bench sends: the list with `sort`, `status`, `q`
 * and a cursor (not the due-date filters), get, create (with an Idempotency-Key too, not a
 * client id), patch and move.
 *
 * Two comparators (COMPARATOR): `same-work` (the default) does the API's observable work
 * too, so that a ratio measures what contract-first costs and not whether a server logs:
 * the same response headers (src/plugins/security-headers.ts's values, and the ETags of
 * src/tasks/etag.ts) and one pino line per request at info with the same fields, to stdout
 * (a file under the bench). `floor`
 * does neither: the bare minimum, a second reference.
 *
 *   DATABASE_URL=postgres://… SECRET_KEY=… PORT=… [COMPARATOR=floor] node --import tsx bench/minimal-server.ts
 */
import { createHash, randomUUID } from 'node:crypto';
import { createVerifier } from 'fast-jwt';
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import pino from 'pino';
import postgres from 'postgres';
import { API_CACHE_CONTROL, SECURITY_HEADERS } from '../src/plugins/security-headers.ts';
import { pageEtag, taskEtag } from '../src/tasks/etag.ts';

const { DATABASE_URL, SECRET_KEY, PORT = '0', HOST = '127.0.0.1', COMPARATOR = 'same-work' } = process.env;
const sameWork = COMPARATOR !== 'floor';
if (!DATABASE_URL || !SECRET_KEY) {
  process.stderr.write('minimal-server: DATABASE_URL and SECRET_KEY are required\n');
  process.exit(1);
}

// The same pool size and driver options as src/db/client.ts.
const sql = postgres(DATABASE_URL, { max: 10, connect_timeout: 5, idle_timeout: 60, onnotice: () => {} });
const verify = createVerifier({ key: SECRET_KEY, algorithms: ['HS256'], requiredClaims: ['sub', 'exp'], cache: 1000, cacheTTL: 60_000 });
const app = Fastify(
  sameWork
    ? // pino's own buffered destination; one line per request from onResponse (below), none of Fastify's two.
      {
        loggerInstance: pino({ level: 'info' }, pino.destination({ dest: 1, minLength: 8 * 1024 })),
        disableRequestLogging: true,
        // As the API: a fresh UUID per request, logged as reqId and sent as X-Request-Id.
        genReqId: () => randomUUID(),
      }
    : {},
);
/** The operationIds the API logs for the routes served here (the same bytes in each line). */
const OPERATION_IDS: Record<string, string> = {
  'GET /health': 'getHealth',
  'GET /api/tasks': 'listTasks',
  'POST /api/tasks': 'createTask',
  'GET /api/tasks/:id': 'getTask',
  'PATCH /api/tasks/:id': 'updateTask',
  'POST /api/tasks/:id/move': 'moveTask',
};
if (sameWork) {
  app.addHook('onRequest', (request, reply, done) => {
    reply.headers(SECURITY_HEADERS);
    reply.header('x-request-id', request.id);
    if (request.url.startsWith('/api/')) reply.header('cache-control', API_CACHE_CONTROL);
    done();
  });
  // The API's request line (src/plugins/request-log.ts): the same fields, at info.
  app.addHook('onResponse', (request, reply, done) => {
    request.log.info(
      {
        method: request.method,
        route: request.routeOptions.url,
        operationId: OPERATION_IDS[`${request.method} ${request.routeOptions.url}`],
        status: reply.statusCode,
        durationMs: Math.round(reply.elapsedTime * 10) / 10,
        userId: request.claims?.sub,
      },
      'request completed',
    );
    done();
  });
}

type Claims = { sub: string; email?: string };
type Row = { owner_id: string | null; id: string | null } & Record<string, unknown>;

function caller(request: FastifyRequest): Claims | undefined {
  const header = request.headers.authorization;
  if (!header?.startsWith('Bearer ')) return undefined;
  try {
    return verify(header.slice(7)) as Claims;
  } catch {
    return undefined;
  }
}

/** The same 403/404 reading of a lookup row as src/tasks/queries.ts. */
function found(row: Row | undefined, userId: string): { status: number; body: unknown } {
  if (!row || row.owner_id === null) return { status: 404, body: { error: { code: 'NOT_FOUND', message: 'Not found.', details: null } } };
  if (row.owner_id !== userId) return { status: 403, body: { error: { code: 'FORBIDDEN', message: 'Forbidden.', details: null } } };
  if (row.id === null) return { status: 404, body: { error: { code: 'NOT_FOUND', message: 'Not found.', details: null } } };
  const { owner_id, notified, ...task } = row;
  void owner_id;
  void notified;
  return { status: 200, body: task };
}

app.addHook('onRequest', async (request, reply) => {
  if (!request.url.startsWith('/api/')) return;
  const claims = caller(request);
  if (!claims) return reply.code(401).send({ error: { code: 'INVALID_TOKEN', message: 'Invalid token.', details: null } });
  request.claims = claims;
});

declare module 'fastify' {
  interface FastifyRequest {
    claims: Claims;
  }
}

app.get('/health', async () => {
  await sql`SELECT 1`;
  return { status: 'ok', database: 'ok' };
});

// As src/tasks/queries.ts and search.ts: the columns, the due rank, the cursor (a fingerprint of the query, then the key).
const COLUMNS = sql.unsafe('id, user_id, title, status, created_at, updated_at, notes, due_date::text AS due_date, completed_at, position');
const RANK = sql.unsafe("COALESCE(DATE '1970-01-01' - due_date, -2147483648)");
const EPOCH_DAY = Date.UTC(1970, 0, 1);
const dueRank = (date: string | null) => (date === null ? -2147483648 : Math.round((EPOCH_DAY - Date.parse(`${date}T00:00:00Z`)) / 86_400_000));
const iso = (v: unknown) => (v instanceof Date ? v.toISOString() : (v as string | null));
type Sort = 'created' | 'position' | 'due' | 'updated';
type Key = (string | null)[];
const ORDER: Record<Sort, { after: (k: Key) => ReturnType<typeof sql>; by: ReturnType<typeof sql>; key: (row: Row) => Key }> = {
  created: {
    after: ([c, i]) => sql`AND (created_at, id) < (${c ?? null}::timestamptz, ${i ?? null}::uuid)`,
    by: sql`ORDER BY created_at DESC, id DESC`,
    key: (r) => [iso(r.created_at), r.id],
  },
  position: {
    after: ([p]) => sql`AND position > ${p ?? null}::text COLLATE "C"`,
    by: sql`ORDER BY position`,
    key: (r) => [r.position as string],
  },
  due: {
    after: ([d, c, i]) => sql`AND (${RANK}, created_at, id) < (${dueRank(d ?? null)}::bigint, ${c ?? null}::timestamptz, ${i ?? null}::uuid)`,
    by: sql`ORDER BY ${RANK} DESC, created_at DESC, id DESC`,
    key: (r) => [r.due_date as string | null, iso(r.created_at), r.id],
  },
  updated: {
    after: ([u, i]) => sql`AND (updated_at, id) < (${u ?? null}::timestamptz, ${i ?? null}::uuid)`,
    by: sql`ORDER BY updated_at DESC, id DESC`,
    key: (r) => [iso(r.updated_at), r.id],
  },
};
const contains = (q: string) => `%${q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

/** A task's ETag (src/tasks/etag.ts) on a 200 or 201, as the API sends it. */
function withEtag(reply: FastifyReply, status: number, body: unknown): FastifyReply {
  const updated = (body as { updated_at?: unknown } | null)?.updated_at;
  if (sameWork && status < 300 && updated !== undefined) reply.header('etag', taskEtag(iso(updated) ?? ''));
  return reply.code(status).send(body);
}

app.get('/api/tasks', async (request, reply) => {
  const query = request.query as { limit?: string; status?: string; cursor?: string; sort?: Sort; q?: string; has_due?: string };
  const limit = Number(query.limit ?? 50);
  const sort = query.sort ?? 'created';
  const order = ORDER[sort];
  const hasDue = query.has_due === undefined ? undefined : query.has_due === 'true';
  const fingerprint = createHash('sha256')
    .update(JSON.stringify([sort, query.status, undefined, undefined, hasDue, query.q]))
    .digest('base64url')
    .slice(0, 10);
  const after = query.cursor ? (JSON.parse(Buffer.from(query.cursor, 'base64url').toString('utf8')) as Key).slice(1) : undefined;
  const statement = sql<Row[]>`
    SELECT ${COLUMNS}
    FROM tasks
    WHERE user_id = ${request.claims.sub}
      ${query.status ? sql`AND status = ${query.status}` : sql``}
      ${query.q === undefined ? sql`` : sql`AND (title ILIKE ${contains(query.q)} OR notes ILIKE ${contains(query.q)})`}
      ${after ? order.after(after) : sql``}
    ${order.by}
    LIMIT ${limit + 1}`;
  // As the API does (src/db/client.ts plannedPerCall): a search is sent unnamed, planned per call.
  if (query.q !== undefined) (statement as unknown as { options: { prepare?: boolean } }).options.prepare = false;
  const rows = await statement;
  const items = rows.slice(0, limit);
  const last = items.at(-1);
  const more = rows.length > limit && last !== undefined;
  const nextCursor = more ? Buffer.from(JSON.stringify([fingerprint, ...order.key(last)])).toString('base64url') : null;
  if (sameWork) reply.header('etag', pageEtag(items.map((row) => ({ id: row.id ?? '', updated_at: iso(row.updated_at) ?? '' })), nextCursor));
  return { items, next_cursor: nextCursor };
});

app.get('/api/tasks/:id', async (request, reply) => {
  const { id } = request.params as { id: string };
  const [row] = await sql<Row[]>`SELECT user_id AS owner_id, ${COLUMNS} FROM tasks WHERE id = ${id}`;
  const { status, body } = found(row, request.claims.sub);
  return withEtag(reply, status, body);
});

// As src/tasks/queries.ts: an Idempotency-Key's record answers for 24 hours.
const KEPT = sql`(k.created_at > now() - interval '24 hours' OR k.key = k.task_id::text)`;

app.post('/api/tasks', async (request, reply) => {
  const { title, notes = '', due_date = null } = request.body as { title: string; notes?: string; due_date?: string | null };
  const { sub, email = null } = request.claims;
  const key = request.headers['idempotency-key'];
  if (typeof key === 'string') {
    // As src/tasks/queries.ts createKeyed (without a client id): the key claimed in the
    // statement that inserts. A key already claimed (the bench sends none) answers with its record.
    const [row] = await sql`
      WITH bump AS (
        INSERT INTO users AS u (id, email, change_seq, top_position) SELECT ${sub}, ${email}, 1, todo_key_between(NULL, NULL)
        WHERE NOT EXISTS (SELECT 1 FROM idempotency_keys AS k WHERE k.user_id = ${sub} AND k.key = ${key} AND ${KEPT})
        ON CONFLICT (id) DO UPDATE SET change_seq = u.change_seq + 1, email = COALESCE(EXCLUDED.email, u.email),
          top_position = todo_key_between(NULL, u.top_position)
        RETURNING change_seq, top_position
      ),
      claim AS (
        INSERT INTO idempotency_keys AS k (user_id, key, title, notes, due_date, task_id, created_at, position)
        SELECT ${sub}, ${key}, ${title}, ${notes}, ${due_date}::date, gen_random_uuid(), now(), bump.top_position
        FROM bump
        ON CONFLICT (user_id, key) DO UPDATE
          SET title = EXCLUDED.title, notes = EXCLUDED.notes, due_date = EXCLUDED.due_date, task_id = EXCLUDED.task_id,
            created_at = EXCLUDED.created_at, position = EXCLUDED.position
          WHERE NOT ${KEPT}
        RETURNING task_id, created_at, position
      ),
      created AS (
        INSERT INTO tasks (id, user_id, title, notes, due_date, change_seq, position, created_at, updated_at)
        SELECT claim.task_id, ${sub}, ${title}, ${notes}, ${due_date}::date, bump.change_seq, claim.position, claim.created_at, claim.created_at
        FROM claim, bump
        RETURNING ${COLUMNS}
      )
      SELECT created.*, pg_notify('todo_api_changes', ${sub}) FROM created`;
    if (row) {
      delete row.pg_notify;
      return withEtag(reply.header('location', `/api/tasks/${row.id}`), 201, row);
    }
    const [stored] = await sql`
      SELECT k.title, k.notes, k.due_date::text AS due_date, k.task_id, k.created_at, k.position
      FROM idempotency_keys AS k WHERE k.user_id = ${sub} AND k.key = ${key} AND ${KEPT}`;
    return reply.code(201).header('idempotent-replayed', 'true').send(stored);
  }
  // As src/tasks/queries.ts creates: the user's change counter bumped and the key before
  // their top position taken in one upsert, the task at that key, and NOTIFY.
  const [row] = await sql`
    WITH bump AS (
      INSERT INTO users AS u (id, email, change_seq, top_position) VALUES (${sub}, ${email}, 1, todo_key_between(NULL, NULL))
      ON CONFLICT (id) DO UPDATE SET change_seq = u.change_seq + 1, email = COALESCE(EXCLUDED.email, u.email),
        top_position = todo_key_between(NULL, u.top_position)
      RETURNING change_seq, top_position
    ),
    created AS (
      INSERT INTO tasks (user_id, title, notes, due_date, change_seq, position)
      SELECT ${sub}, ${title}, ${notes}, ${due_date}::date, change_seq, top_position FROM bump
      RETURNING ${COLUMNS}
    )
    SELECT created.*, pg_notify('todo_api_changes', ${sub}) FROM created`;
  if (row) delete row.pg_notify;
  return withEtag(reply.header('location', `/api/tasks/${row?.id}`), 201, row);
});

app.patch('/api/tasks/:id', async (request, reply) => {
  const { id } = request.params as { id: string };
  const body = request.body as { title?: string; status?: string; notes?: string; due_date?: string | null };
  const status = body.status ?? null;
  const userId = request.claims.sub;
  // As src/tasks/queries.ts updates: the counter bumped before the row, completed_at set or cleared, and NOTIFY.
  const next = sql`GREATEST(bump.now, tasks.updated_at + interval '1 millisecond')`;
  const [row] = await sql<Row[]>`
    WITH target AS (SELECT user_id FROM tasks WHERE id = ${id}),
    bump AS (
      UPDATE users SET change_seq = change_seq + 1
      WHERE id = ${userId} AND EXISTS (SELECT 1 FROM target WHERE user_id = ${userId})
      RETURNING change_seq, clock_timestamp() AS now
    ),
    changed AS (
      UPDATE tasks SET
        title = COALESCE(${body.title ?? null}::text, title),
        status = COALESCE(${status}::text, status),
        notes = COALESCE(${body.notes ?? null}::text, notes),
        due_date = CASE WHEN ${body.due_date !== undefined} THEN ${body.due_date ?? null}::date ELSE due_date END,
        completed_at = CASE
          WHEN ${status}::text = 'completed' AND tasks.status <> 'completed' THEN ${next}
          WHEN ${status}::text = 'pending' THEN NULL
          ELSE completed_at END,
        updated_at = ${next},
        change_seq = bump.change_seq
      FROM bump
      WHERE tasks.id = ${id} AND tasks.user_id = ${userId}
      RETURNING ${COLUMNS}
    )
    SELECT target.user_id AS owner_id, changed.*, (SELECT pg_notify('todo_api_changes', ${userId}) FROM changed) AS notified
    FROM (SELECT 1) AS one
    LEFT JOIN target ON true
    LEFT JOIN changed ON true`;
  const answer = found(row, userId);
  return withEtag(reply, answer.status, answer.body);
});

app.post('/api/tasks/:id/move', async (request, reply) => {
  const { id } = request.params as { id: string };
  const to = request.body as { before?: string; after?: string; to?: 'top' | 'bottom' };
  const userId = request.claims.sub;
  const neighbour = to.before ?? to.after;
  if (neighbour !== undefined && neighbour.toLowerCase() === id.toLowerCase()) {
    return reply.code(400).send({ error: { code: 'VALIDATION_ERROR', message: 'Invalid request.', details: null } });
  }
  // As src/tasks/queries.ts moves: one call of todo_move_task (sql/0003), NOTIFY when it moved.
  const [row] = await sql<(Row & { outcome: string })[]>`
    SELECT m.*, CASE WHEN m.outcome = 'found' THEN pg_notify('todo_api_changes', ${userId}) END AS notified
    FROM todo_move_task(${userId}, ${id}::uuid, ${to.before ?? null}::uuid, ${to.after ?? null}::uuid, ${to.to ?? null}::text,
      false, false, ${[]}::timestamptz[]) AS m`;
  if (row?.outcome === 'bad-neighbour') {
    return reply.code(400).send({ error: { code: 'VALIDATION_ERROR', message: 'Invalid request.', details: null } });
  }
  const { outcome, ...rest } = row ?? ({} as Row & { outcome: string });
  void outcome;
  const answer = found(row ? (rest as Row) : undefined, userId);
  return withEtag(reply, answer.status, answer.body);
});

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    void app
      .close()
      .then(() => sql.end({ timeout: 5 }))
      .then(() => process.exit(0));
  });
}

await app.listen({ port: Number(PORT), host: HOST });
