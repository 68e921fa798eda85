/**
 * Our API against a REAL Better Auth (the frontend's auth server), run
 * in-process on loopback with its `jwt` plugin and a PostgreSQL of its own
 * schema: the tokens it hands out at /api/auth/token must be accepted, with
 * its keys fetched from /api/auth/jwks, through key rotation, and nothing
 * else must be.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { betterAuth } from 'better-auth';
import { getMigrations } from 'better-auth/db/migration';
import { toNodeHandler } from 'better-auth/node';
import { jwt, type JWKOptions, type JwtOptions } from 'better-auth/plugins';
import pg from 'pg';
import t from 'tap';
import { buildApp } from '../../src/app.ts';
import { createSql } from '../../src/db/client.ts';
import { Api, databaseUrl, freshSchema, ORIGIN, type Sent, type Test } from '../helper.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

interface Decoded {
  header: Record<string, any>;
  payload: Record<string, any>;
}

function decode(token: string): Decoded {
  const [header, payload] = token.split('.');
  if (header === undefined || payload === undefined) throw new Error(`not a JWS: ${token}`);
  return {
    header: JSON.parse(Buffer.from(header, 'base64url').toString('utf8')),
    payload: JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')),
  };
}

/** A listening node:http server on 127.0.0.1 and its base URL; closed at teardown. */
async function listen(t: Test, server: Server): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

interface BetterAuthServer {
  /** Its base URL (what its jwt plugin uses as iss and aud). */
  base: string;
  jwksUrl: string;
  /** Our schema (our tables and Better Auth's, side by side: users/tasks vs user/session/account/verification/jwks). */
  url: string;
  pool: pg.Pool;
  signUp: (email: string, name?: string) => Promise<{ userId: string; cookie: string }>;
  signIn: (email: string) => Promise<string>;
  /** GET /api/auth/token with a session cookie. */
  token: (cookie: string) => Promise<string>;
  jwks: () => Promise<{ keys: Record<string, any>[] }>;
}

const PASSWORD = 'correct horse battery staple';

/**
 * A real Better Auth with emailAndPassword and the jwt plugin, on loopback,
 * migrated into a fresh schema of the test PostgreSQL. Everything is undone at
 * teardown (server, pool, schema).
 */
async function startBetterAuth(t: Test, jwks: JwtOptions['jwks'] = undefined): Promise<BetterAuthServer> {
  const { url, schema } = await freshSchema(t);
  const pool = new pg.Pool({ connectionString: databaseUrl(), options: `-c search_path=${schema}`, max: 4 });
  // LIFO: runs before freshSchema's DROP SCHEMA.
  t.teardown(() => pool.end());

  const server = createServer();
  const base = await listen(t, server);
  const auth = betterAuth({
    baseURL: base,
    secret: randomBytes(32).toString('hex'),
    database: pool,
    emailAndPassword: { enabled: true },
    plugins: [jwt(jwks === undefined ? {} : { jwks })],
    telemetry: { enabled: false },
    logger: { level: 'error' },
  });
  const { runMigrations } = await getMigrations(auth.options);
  await runMigrations();
  const handle = toNodeHandler(auth);
  server.on('request', (req, res) => void handle(req, res));

  const post = async (path: string, body: unknown): Promise<Response> => {
    const res = await fetch(`${base}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: base },
      body: JSON.stringify(body),
    });
    if (!res.ok) throw new Error(`POST ${path} -> ${res.status}: ${await res.text()}`);
    return res;
  };
  const cookieOf = (res: Response): string => {
    const cookies = res.headers.getSetCookie().map((c) => c.split(';')[0] ?? '');
    if (!cookies.some((c) => c.includes('session_token='))) throw new Error(`no session cookie in ${JSON.stringify(cookies)}`);
    return cookies.join('; ');
  };

  return {
    base,
    jwksUrl: `${base}/api/auth/jwks`,
    url,
    pool,
    async signUp(email, name = 'Test User') {
      const res = await post('/api/auth/sign-up/email', { email, password: PASSWORD, name });
      const body = (await res.json()) as { user: { id: string } };
      return { userId: body.user.id, cookie: cookieOf(res) };
    },
    async signIn(email) {
      return cookieOf(await post('/api/auth/sign-in/email', { email, password: PASSWORD }));
    },
    async token(cookie) {
      const res = await fetch(`${base}/api/auth/token`, { headers: { cookie } });
      if (!res.ok) throw new Error(`GET /api/auth/token -> ${res.status}: ${await res.text()}`);
      const { token } = (await res.json()) as { token: string };
      return token;
    },
    async jwks() {
      const res = await fetch(`${base}/api/auth/jwks`);
      if (!res.ok) throw new Error(`GET /api/auth/jwks -> ${res.status}`);
      return (await res.json()) as { keys: Record<string, any>[] };
    },
  };
}

/** Our app, trusting only the JWKS (no SECRET_KEY); closed at teardown (which also ends its pool). */
async function ourApp(
  t: Test,
  url: string,
  options: { jwksUrl: string; issuer: string; audience: string[]; jwksMinRefetchIntervalMs?: number },
): Promise<Api> {
  const app = await buildApp({ sql: createSql(url, { max: 2 }), corsOrigins: [ORIGIN], ...options });
  await app.ready();
  t.teardown(() => app.close());
  return new Api(t, app);
}

function assertInvalidToken(t: Test, res: Sent, what: string): void {
  t.equal(res.statusCode, 401, `${what}: 401`);
  t.equal(res.json().error?.code, 'INVALID_TOKEN', `${what}: INVALID_TOKEN`);
  t.match(String(res.headers['www-authenticate']), /^Bearer realm="todo-api", error="invalid_token"/, `${what}: invalid_token challenge`);
}

/** The token with one base64url character of segment `index` changed (not the last one, whose low bits may be padding). */
function flipped(token: string, index: 1 | 2): string {
  const parts = token.split('.');
  const segment = parts[index] as string;
  const at = Math.floor(segment.length / 2);
  const c = segment[at];
  parts[index] = `${segment.slice(0, at)}${c === 'A' ? 'B' : 'A'}${segment.slice(at + 1)}`;
  return parts.join('.');
}

/** Sign up, take a token, check it is Better Auth's kind of token, and create + list a task with it. */
async function roundTrip(t: Test, alg: 'EdDSA' | 'ES256', keyPairConfig?: JWKOptions): Promise<void> {
  const ba = await startBetterAuth(t, keyPairConfig === undefined ? undefined : { keyPairConfig });
  const email = `ada-${alg.toLowerCase()}@example.com`;
  const { userId, cookie } = await ba.signUp(email, 'Ada Lovelace');
  const token = await ba.token(cookie);
  const { header, payload } = decode(token);

  t.equal(header.alg, alg, `Better Auth signs with ${alg}`);
  t.type(header.kid, 'string', 'the header names its key');
  t.equal(payload.sub, userId, "sub is Better Auth's user id");
  t.notMatch(payload.sub, UUID, "Better Auth's default user ids are not UUIDs");
  t.equal(payload.email, email, 'the email is in the payload');
  t.equal(payload.iss, ba.base, 'iss is its base URL');
  t.equal(payload.aud, ba.base, 'aud is its base URL');
  t.equal(payload.exp - payload.iat, 15 * 60, 'the token lives 15 minutes');

  const { keys } = await ba.jwks();
  const published = keys.find((k) => k.kid === header.kid);
  t.ok(published, 'the JWKS publishes the signing key');
  t.match(published, alg === 'EdDSA' ? { kty: 'OKP', crv: 'Ed25519', alg } : { kty: 'EC', crv: 'P-256', alg }, 'a key of the right type');
  t.notOk(published && 'd' in published, 'the JWKS holds no private key');

  const api = await ourApp(t, ba.url, { jwksUrl: ba.jwksUrl, issuer: payload.iss, audience: [payload.aud] });
  const created = await api.post('/api/tasks', { token, payload: { title: `Written with ${alg}` } });
  t.equal(created.statusCode, 201, 'a Better Auth token creates a task');
  t.equal(created.json().user_id, userId, "the task belongs to Better Auth's user id");

  const listed = await api.get('/api/tasks', { token });
  t.equal(listed.statusCode, 200, 'the same token lists');
  t.same(
    listed.json().items.map((x: { id: string }) => x.id),
    [created.json().id],
    'the list holds the task',
  );

  const { rows } = await ba.pool.query<{ id: string; email: string | null }>('SELECT id, email FROM users');
  t.same(rows, [{ id: userId, email }], "the token's sub and email are recorded in our users table");

  // A fresh session (sign-in) gives another token for the same user: same owner.
  const again = await ba.token(await ba.signIn(email));
  const second = await api.get('/api/tasks', { token: again });
  t.equal(second.statusCode, 200, 'a token of a later session is accepted');
  t.equal(second.json().items.length, 1, 'a token from a later sign-in sees the same tasks');
}

t.test('Better Auth default (EdDSA / Ed25519) tokens are accepted', async (t) => {
  await roundTrip(t, 'EdDSA');
});

t.test('Better Auth configured for ES256: its tokens are accepted', async (t) => {
  await roundTrip(t, 'ES256', { alg: 'ES256' });
});

t.test('key rotation is picked up by the running app, without a restart', async (t) => {
  t.test('rotationInterval: a new key signs, the old one stays published, both are accepted', async (t) => {
    // Better Auth's own rotation: a key expires after rotationInterval seconds and the next
    // token is signed with a new one; the old key stays in the JWKS for the grace period.
    const ba = await startBetterAuth(t, { rotationInterval: 1 });
    // Both users first: the key pair is minted on the first token request.
    const a = await ba.signUp('rot-a@example.com');
    const b = await ba.signUp('rot-b@example.com');
    const first = await ba.token(a.cookie);
    // Signed with the old key but never shown to our app before the rotation.
    const unseen = await ba.token(b.cookie);
    const kid1 = decode(first).header.kid;
    t.equal(decode(unseen).header.kid, kid1, 'both tokens of before the rotation share one key');

    const api = await ourApp(t, ba.url, { jwksUrl: ba.jwksUrl, issuer: ba.base, audience: [ba.base], jwksMinRefetchIntervalMs: 0 });
    t.equal((await api.post('/api/tasks', { token: first, payload: { title: 'before' } })).statusCode, 201, 'the first key works');

    await new Promise((resolve) => setTimeout(resolve, 1100));
    const second = await ba.token(a.cookie);
    const kid2 = decode(second).header.kid;
    t.not(kid2, kid1, 'Better Auth signed the new token with a new key');
    t.same((await ba.jwks()).keys.map((k) => k.kid).sort(), [kid1, kid2].sort(), 'both keys are published');

    t.equal((await api.post('/api/tasks', { token: second, payload: { title: 'after' } })).statusCode, 201, 'the same app instance fetches and accepts the new key');
    t.equal((await api.get('/api/tasks', { token: second })).json().items.length, 2, 'one user, two keys, one task list');
    t.equal((await api.get('/api/tasks', { token: first })).statusCode, 200, 'the token of before the rotation still works');
    const other = await api.get('/api/tasks', { token: unseen });
    t.equal(other.statusCode, 200, 'an old-key token first seen after the refetch works: the old key was kept');
    t.same(other.json().items, [], "and it sees only its own user's (no) tasks");
  });

  t.test('jwks table emptied: a new key pair, accepted after one refetch; the withdrawn key is not', async (t) => {
    const ba = await startBetterAuth(t);
    const a = await ba.signUp('wipe-a@example.com');
    const b = await ba.signUp('wipe-b@example.com');
    const first = await ba.token(a.cookie);
    const unseen = await ba.token(b.cookie);
    const api = await ourApp(t, ba.url, { jwksUrl: ba.jwksUrl, issuer: ba.base, audience: [ba.base], jwksMinRefetchIntervalMs: 100 });
    t.equal((await api.post('/api/tasks', { token: first, payload: { title: 'before' } })).statusCode, 201, 'the first key works');

    await ba.pool.query('DELETE FROM jwks');
    const second = await ba.token(a.cookie);
    t.not(decode(second).header.kid, decode(first).header.kid, 'a new key pair signs the new token');
    t.same((await ba.jwks()).keys.map((k) => k.kid), [decode(second).header.kid], 'only the new key is published');

    // More than jwksMinRefetchIntervalMs after our first fetch, so the unknown kid refetches.
    await new Promise((resolve) => setTimeout(resolve, 150));
    const created = await api.post('/api/tasks', { token: second, payload: { title: 'after' } });
    t.equal(created.statusCode, 201, 'the same app instance accepts the new key');
    t.equal((await api.get('/api/tasks', { token: second })).json().items.length, 2, 'both tasks listed');

    // The issuer no longer publishes the old key: its tokens stop working once we have refetched.
    assertInvalidToken(t, await api.get('/api/tasks', { token: unseen }), 'an old-key token never seen before');
    assertInvalidToken(t, await api.get('/api/tasks', { token: first }), 'an old-key token accepted before');
  });
});

t.test('tampered tokens and tokens of another issuer are refused', async (t) => {
  const ba = await startBetterAuth(t);
  const { userId, cookie } = await ba.signUp('eve@example.com');
  const token = await ba.token(cookie);
  const options = { jwksUrl: ba.jwksUrl, issuer: ba.base, audience: [ba.base] };
  const api = await ourApp(t, ba.url, options);
  t.equal((await api.get('/api/tasks', { token })).statusCode, 200, 'the untouched token is accepted');

  assertInvalidToken(t, await api.get('/api/tasks', { token: flipped(token, 1) }), 'a character changed in the payload');
  assertInvalidToken(t, await api.get('/api/tasks', { token: flipped(token, 2) }), 'a character changed in the signature');

  // A well-formed payload for someone else, under the original signature.
  const [h, , s] = token.split('.');
  const forged = { ...decode(token).payload, sub: 'someone-else', email: 'someone@example.com' };
  const swapped = `${h}.${Buffer.from(JSON.stringify(forged)).toString('base64url')}.${s}`;
  assertInvalidToken(t, await api.post('/api/tasks', { token: swapped, payload: { title: 'forged' } }), 'a rewritten payload');

  // The header switched to HS256 (algorithm confusion): this app has no shared secret, so it must not help.
  const hs = `${Buffer.from(JSON.stringify({ ...decode(token).header, alg: 'HS256' })).toString('base64url')}.${token.split('.').slice(1).join('.')}`;
  assertInvalidToken(t, await api.get('/api/tasks', { token: hs }), 'alg switched to HS256');

  const elsewhere = await ourApp(t, ba.url, { ...options, issuer: 'https://someone-else.example' });
  const notOurIssuer = await elsewhere.get('/api/tasks', { token });
  assertInvalidToken(t, notOurIssuer, 'an app trusting another issuer');
  t.equal(notOurIssuer.json().error.message, 'The token was issued by or for someone else.', 'the message names the iss/aud mismatch');
  const otherAudience = await ourApp(t, ba.url, { ...options, audience: ['https://another-api.example'] });
  const notForUs = await otherAudience.get('/api/tasks', { token });
  assertInvalidToken(t, notForUs, 'an app expecting another audience');
  t.equal(notForUs.json().error.message, 'The token was issued by or for someone else.', 'the message names the iss/aud mismatch');

  // Another issuer's JWKS publishing a different Ed25519 key under the very same kid.
  const { kid } = decode(token).header;
  const foreign = generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' });
  const impostor = await listen(
    t,
    createServer((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: [{ ...foreign, kid, alg: 'EdDSA', use: 'sig' }] }));
    }),
  );
  const wrongKeys = await ourApp(t, ba.url, { ...options, jwksUrl: `${impostor}/api/auth/jwks` });
  assertInvalidToken(t, await wrongKeys.get('/api/tasks', { token }), "another issuer's key under the same kid");

  const { rows } = await ba.pool.query('SELECT id FROM users');
  t.same(rows, [], 'no refused token left a user behind');
  t.equal((await api.get('/api/tasks', { token })).json().items.length, 0, `no task was created for ${userId} or anyone`);
});
