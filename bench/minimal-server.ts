/**
 * The comparator of `npm run bench`: the least a server on our stack can do for the
 * same requests. Plain Fastify 5 + postgres.js + fast-jwt (HS256, with its verdict
 * cache), no contract validation, no logging, and exactly the SQL of
 * src/tasks/queries.ts, one statement per request. Keep the SQL in step with that
 * file, or the ratio compares different work.
 *
 *   DATABASE_URL=postgres://… SECRET_KEY=… PORT=… node --import tsx bench/minimal-server.ts
 */
import { createVerifier } from 'fast-jwt';
import Fastify, { type FastifyRequest } from 'fastify';
import postgres from 'postgres';

const { DATABASE_URL, SECRET_KEY, PORT = '0', HOST = '127.0.0.1' } = process.env;
if (!DATABASE_URL || !SECRET_KEY) {
  process.stderr.write('minimal-server: DATABASE_URL and SECRET_KEY are required\n');
  process.exit(1);
}

// The same pool size and driver options as src/db/client.ts.
const sql = postgres(DATABASE_URL, { max: 10, connect_timeout: 5, idle_timeout: 60, onnotice: () => {} });
const verify = createVerifier({ key: SECRET_KEY, algorithms: ['HS256'], requiredClaims: ['sub', 'exp'], cache: 1000, cacheTTL: 60_000 });
const app = Fastify();

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

app.get('/api/tasks', async (request) => {
  const query = request.query as { limit?: string; status?: string; cursor?: string };
  const limit = Number(query.limit ?? 50);
  const after = query.cursor ? (JSON.parse(Buffer.from(query.cursor, 'base64url').toString('utf8')) as [string, string]) : undefined;
  const rows = await sql`
    SELECT id, user_id, title, status, created_at, updated_at
    FROM tasks
    WHERE user_id = ${request.claims.sub}
      ${query.status ? sql`AND status = ${query.status}` : sql``}
      ${after ? sql`AND (created_at, id) < (${after[0]}::timestamptz, ${after[1]}::uuid)` : sql``}
    ORDER BY created_at DESC, id DESC
    LIMIT ${limit + 1}`;
  const items = rows.slice(0, limit);
  const last = items.at(-1);
  const more = rows.length > limit && last !== undefined;
  return {
    items,
    next_cursor: more ? Buffer.from(JSON.stringify([(last.created_at as Date).toISOString(), last.id])).toString('base64url') : null,
  };
});

app.get('/api/tasks/:id', async (request, reply) => {
  const { id } = request.params as { id: string };
  const [row] = await sql<Row[]>`
    SELECT user_id AS owner_id, id, user_id, title, status, created_at, updated_at
    FROM tasks WHERE id = ${id}`;
  const { status, body } = found(row, request.claims.sub);
  return reply.code(status).send(body);
});

app.post('/api/tasks', async (request, reply) => {
  const { title } = request.body as { title: string };
  const { sub, email = null } = request.claims;
  // As src/tasks/queries.ts creates: the user's change counter bumped, and NOTIFY.
  const [row] = await sql`
    WITH bump AS (
      INSERT INTO users AS u (id, email, change_seq) SELECT ${sub}, ${email}, 1
      ON CONFLICT (id) DO UPDATE SET change_seq = u.change_seq + 1, email = COALESCE(EXCLUDED.email, u.email)
      RETURNING change_seq
    ),
    created AS (
      INSERT INTO tasks (user_id, title, change_seq) SELECT ${sub}, ${title}, change_seq FROM bump
      RETURNING id, user_id, title, status, created_at, updated_at
    )
    SELECT created.*, pg_notify('todo_api_changes', ${sub}) FROM created`;
  if (row) delete row.pg_notify;
  return reply.code(201).header('location', `/api/tasks/${row?.id}`).send(row);
});

app.patch('/api/tasks/:id', async (request, reply) => {
  const { id } = request.params as { id: string };
  const { title = null, status = null } = request.body as { title?: string; status?: string };
  const userId = request.claims.sub;
  // As src/tasks/queries.ts updates: the counter bumped before the row, and NOTIFY.
  const [row] = await sql<Row[]>`
    WITH target AS (SELECT user_id FROM tasks WHERE id = ${id}),
    bump AS (
      UPDATE users SET change_seq = change_seq + 1
      WHERE id = ${userId} AND EXISTS (SELECT 1 FROM target WHERE user_id = ${userId})
      RETURNING change_seq
    ),
    changed AS (
      UPDATE tasks SET
        title = COALESCE(${title}::text, title),
        status = COALESCE(${status}::text, status),
        updated_at = GREATEST(clock_timestamp(), tasks.updated_at + interval '1 millisecond'),
        change_seq = bump.change_seq
      FROM bump
      WHERE tasks.id = ${id} AND tasks.user_id = ${userId}
      RETURNING tasks.id, tasks.user_id, tasks.title, tasks.status, tasks.created_at, tasks.updated_at
    )
    SELECT target.user_id AS owner_id, changed.*, (SELECT pg_notify('todo_api_changes', ${userId}) FROM changed) AS notified
    FROM (SELECT 1) AS one
    LEFT JOIN target ON true
    LEFT JOIN changed ON true`;
  const answer = found(row, userId);
  return reply.code(answer.status).send(answer.body);
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
