import { createHmac, generateKeyPairSync } from 'node:crypto';
import { createSigner, type Algorithm } from 'fast-jwt';
import t from 'tap';
import { Api, build, SECRET, token, type Sent, type Test } from '../helper.ts';

type Reason = 'NOT_AUTHENTICATED' | 'INVALID_TOKEN' | 'TOKEN_EXPIRED';

const now = () => Math.floor(Date.now() / 1000);
const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** A token with exactly these claims (no iat, no defaults), signed as asked. */
function signed(payload: Record<string, unknown>, options: { algorithm?: Algorithm; key?: string } = {}): string {
  const sign = createSigner({ key: options.key ?? SECRET, algorithm: options.algorithm ?? 'HS256', noTimestamp: true });
  return sign(payload);
}

/** An HS256 token assembled by hand, for claims fast-jwt refuses to sign. */
function handSigned(payload: Record<string, unknown>): string {
  const unsigned = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url(payload)}`;
  return `${unsigned}.${createHmac('sha256', SECRET).update(unsigned).digest('base64url')}`;
}

/** The response is a 401 with this code and an RFC 6750 challenge. */
function assertUnauthorized(t: Test, res: Sent, reason: Reason): void {
  t.equal(res.statusCode, 401, 'status 401');
  t.equal(res.json().error.code, reason, `error.code is ${reason}`);
  const challenge = res.headers['www-authenticate'];
  t.type(challenge, 'string', 'WWW-Authenticate is present');
  t.match(String(challenge), /^Bearer realm="todo-api"/, 'the challenge names the Bearer scheme and the realm');
  if (reason === 'NOT_AUTHENTICATED') {
    t.notMatch(String(challenge), /error=/, 'no error parameter when no usable token was sent');
  } else {
    t.match(String(challenge), /error="invalid_token"/, 'the challenge says invalid_token');
  }
}

/** GET /api/tasks with this Authorization header (none when undefined). */
function listWith(api: Api, authorization: string | undefined): Promise<Sent> {
  return api.get('/api/tasks', authorization === undefined ? {} : { headers: { authorization } });
}

// The rejections below change no data, so they share one app.
const shared = await build(t);

async function rejected(t: Test, authorization: string | undefined, reason: Reason): Promise<void> {
  const api = new Api(t, shared.app);
  assertUnauthorized(t, await listWith(api, authorization), reason);
}

t.test('a hand-signed HS256 token is accepted (so the hand-signed rejections below are about their claims)', async (t) => {
  const res = await listWith(new Api(t, shared.app), `Bearer ${handSigned({ sub: 'alice', exp: now() + 3600 })}`);
  t.equal(res.statusCode, 200);
});

t.test('a valid token is accepted', async (t) => {
  const api = new Api(t, shared.app);
  const res = await listWith(api, `Bearer ${token('alice')}`);
  t.equal(res.statusCode, 200);
  t.same(res.json(), { items: [], next_cursor: null });
  t.equal(res.headers['www-authenticate'], undefined, 'no challenge on success');
});

t.test('the Authorization header', async (t) => {
  t.test('missing: NOT_AUTHENTICATED', (t) => rejected(t, undefined, 'NOT_AUTHENTICATED'));
  t.test('empty: NOT_AUTHENTICATED', (t) => rejected(t, '', 'NOT_AUTHENTICATED'));
  t.test('only white space: NOT_AUTHENTICATED', (t) => rejected(t, '   ', 'NOT_AUTHENTICATED'));
  t.test('the Basic scheme: NOT_AUTHENTICATED', (t) => rejected(t, 'Basic YWxpY2U6c2VjcmV0', 'NOT_AUTHENTICATED'));
  t.test('a valid token under the Basic scheme: NOT_AUTHENTICATED', (t) =>
    rejected(t, `Basic ${token('alice')}`, 'NOT_AUTHENTICATED'),
  );
  t.test('Bearer with no token: NOT_AUTHENTICATED', (t) => rejected(t, 'Bearer', 'NOT_AUTHENTICATED'));
  t.test('Bearer and a space with no token: NOT_AUTHENTICATED', (t) => rejected(t, 'Bearer ', 'NOT_AUTHENTICATED'));
  t.test('Bearer with two tokens: NOT_AUTHENTICATED', (t) => rejected(t, 'Bearer a b', 'NOT_AUTHENTICATED'));
  t.test('a bare token without a scheme: NOT_AUTHENTICATED', (t) => rejected(t, token('alice'), 'NOT_AUTHENTICATED'));
});

t.test('the Bearer scheme word is case-insensitive', async (t) => {
  const api = new Api(t, shared.app);
  for (const scheme of ['bearer', 'BEARER', 'bEaReR']) {
    const res = await listWith(api, `${scheme} ${token('alice')}`);
    t.equal(res.statusCode, 200, scheme);
  }
});

t.test('a token that is not a JWT is INVALID_TOKEN', (t) => rejected(t, 'Bearer abc', 'INVALID_TOKEN'));

t.test('a token signed with another secret is INVALID_TOKEN', (t) =>
  rejected(t, `Bearer ${token('alice', { secret: 'another-secret-that-is-at-least-32-characters' })}`, 'INVALID_TOKEN'),
);

t.test('an expired token is TOKEN_EXPIRED', async (t) => {
  const api = new Api(t, shared.app);
  const res = await listWith(api, `Bearer ${token('alice', { expiresIn: -60 })}`);
  assertUnauthorized(t, res, 'TOKEN_EXPIRED');
  t.match(String(res.headers['www-authenticate']), /error_description="[^"]*expired[^"]*"/, 'the challenge says why');
});

t.test('only HS256 is accepted', async (t) => {
  const claims = () => ({ sub: 'alice', exp: now() + 3600 });

  t.test('HS384 with the right secret: INVALID_TOKEN', (t) =>
    rejected(t, `Bearer ${signed(claims(), { algorithm: 'HS384' })}`, 'INVALID_TOKEN'),
  );
  t.test('HS512 with the right secret: INVALID_TOKEN', (t) =>
    rejected(t, `Bearer ${signed(claims(), { algorithm: 'HS512' })}`, 'INVALID_TOKEN'),
  );
  t.test('alg none, unsigned: INVALID_TOKEN', (t) =>
    rejected(t, `Bearer ${b64url({ alg: 'none', typ: 'JWT' })}.${b64url(claims())}.`, 'INVALID_TOKEN'),
  );
  t.test('alg none, with the HS256 signature of the same header and payload: INVALID_TOKEN', (t) => {
    const [, , signature] = signed(claims()).split('.');
    return rejected(t, `Bearer ${b64url({ alg: 'none', typ: 'JWT' })}.${b64url(claims())}.${signature}`, 'INVALID_TOKEN');
  });
  t.test('RS256 with a key pair of its own: INVALID_TOKEN', (t) => {
    const { privateKey } = generateKeyPairSync('rsa', {
      modulusLength: 2048,
      publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    });
    return rejected(t, `Bearer ${signed(claims(), { algorithm: 'RS256', key: privateKey })}`, 'INVALID_TOKEN');
  });
});

t.test('required claims', async (t) => {
  t.test('no sub: INVALID_TOKEN', (t) => rejected(t, `Bearer ${signed({ exp: now() + 3600 })}`, 'INVALID_TOKEN'));
  t.test('no exp: INVALID_TOKEN', (t) => rejected(t, `Bearer ${signed({ sub: 'alice' })}`, 'INVALID_TOKEN'));
  t.test('exp that is not a number: INVALID_TOKEN', (t) =>
    rejected(t, `Bearer ${handSigned({ sub: 'alice', exp: String(now() + 3600) })}`, 'INVALID_TOKEN'),
  );
});

t.test('sub must be a string of 1 to 255 characters', async (t) => {
  t.test('empty string: INVALID_TOKEN', (t) => rejected(t, `Bearer ${token('')}`, 'INVALID_TOKEN'));
  t.test('a number: INVALID_TOKEN', (t) => rejected(t, `Bearer ${token(42)}`, 'INVALID_TOKEN'));
  t.test('null: INVALID_TOKEN', (t) => rejected(t, `Bearer ${token(null)}`, 'INVALID_TOKEN'));
  t.test('an object: INVALID_TOKEN', (t) => rejected(t, `Bearer ${token({ id: 'alice' })}`, 'INVALID_TOKEN'));
  t.test('256 characters: INVALID_TOKEN', (t) => rejected(t, `Bearer ${token('a'.repeat(256))}`, 'INVALID_TOKEN'));
  t.test('256 emoji: INVALID_TOKEN', (t) => rejected(t, `Bearer ${token('😀'.repeat(256))}`, 'INVALID_TOKEN'));
});

t.test('a sub of exactly 255 characters is a user id', async (t) => {
  const { api } = await build(t);
  // 255 emoji are 510 UTF-16 code units: the limit counts code points, as PostgreSQL does.
  for (const [name, sub] of [
    ['ASCII', 'a'.repeat(255)],
    ['emoji', '😀'.repeat(255)],
  ] as const) {
    const created = await api.post('/api/tasks', { token: token(sub), payload: { title: 'mine' } });
    t.equal(created.statusCode, 201, `${name}: created`);
    t.equal(created.json().user_id, sub, `${name}: user_id is the sub`);
    const listed = await api.get('/api/tasks', { token: token(sub) });
    t.same(
      listed.json().items.map((task: { id: string }) => task.id),
      [created.json().id],
      `${name}: the user sees their task`,
    );
  }
});

t.test('a sub PostgreSQL cannot store is INVALID_TOKEN, never a 500', async (t) => {
  t.test('a NUL character', (t) => rejected(t, `Bearer ${token('ali\u0000ce')}`, 'INVALID_TOKEN'));
  t.test('an unpaired surrogate', (t) => rejected(t, `Bearer ${token('ali\uD800ce')}`, 'INVALID_TOKEN'));
  t.test('on create too', async (t) => {
    const { api, sql } = await build(t);
    const res = await api.post('/api/tasks', { token: token('ali\u0000ce'), payload: { title: 'x' } });
    assertUnauthorized(t, res, 'INVALID_TOKEN');
    const [row] = await sql`SELECT count(*)::int AS n FROM tasks`;
    t.equal(row?.n, 0, 'nothing was stored');
  });
});

t.test('a token that is not valid yet (nbf in the future) is INVALID_TOKEN', (t) =>
  rejected(t, `Bearer ${token('alice', { claims: { nbf: now() + 600 } })}`, 'INVALID_TOKEN'),
);

/** Waits until the clock is past `seconds` (a JWT time) by a margin. */
const waitUntilPast = (seconds: number) =>
  new Promise((resolve) => setTimeout(resolve, Math.max(0, seconds * 1000 - Date.now()) + 100));

t.test('a token accepted while valid is TOKEN_EXPIRED once its exp passes, cached or not', async (t) => {
  const api = new Api(t, shared.app);
  const exp = now() + 2;
  const bearer = `Bearer ${token('alice', { claims: { exp } })}`;
  t.equal((await listWith(api, bearer)).statusCode, 200, 'accepted before exp');
  t.equal((await listWith(api, bearer)).statusCode, 200, 'and again (from the verify cache)');
  await waitUntilPast(exp);
  assertUnauthorized(t, await listWith(api, bearer), 'TOKEN_EXPIRED');
});

t.test('a token refused before its nbf is accepted after it (a refusal is not cached)', async (t) => {
  const api = new Api(t, shared.app);
  const nbf = now() + 2;
  const bearer = `Bearer ${token('alice', { claims: { nbf } })}`;
  assertUnauthorized(t, await listWith(api, bearer), 'INVALID_TOKEN');
  await waitUntilPast(nbf);
  t.equal((await listWith(api, bearer)).statusCode, 200, 'accepted once nbf has passed');
});

t.test('a token whose payload was changed after signing is INVALID_TOKEN', async (t) => {
  const [header, payload, signature] = token('alice').split('.');
  if (header === undefined || payload === undefined || signature === undefined) throw new Error('not a JWT');

  t.test('one character of the payload changed', (t) => {
    const i = Math.floor(payload.length / 2);
    const flipped = `${payload.slice(0, i)}${payload[i] === 'A' ? 'B' : 'A'}${payload.slice(i + 1)}`;
    t.not(flipped, payload);
    return rejected(t, `Bearer ${header}.${flipped}.${signature}`, 'INVALID_TOKEN');
  });

  t.test('sub rewritten to another user', (t) => {
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
    const forged = b64url({ ...claims, sub: 'mallory' });
    return rejected(t, `Bearer ${header}.${forged}.${signature}`, 'INVALID_TOKEN');
  });
});

t.test('a request without valid credentials is answered 401 before its body is looked at', async (t) => {
  const expired = token('alice', { expiresIn: -60 });
  const json = { 'content-type': 'application/json' };

  const bodies: Array<[name: string, headers: Record<string, string>, payload: string, status: number]> = [
    ['invalid JSON: 401, not 400', json, '{"title": ', 400],
    ['a text/plain body: 401, not 415', { 'content-type': 'text/plain' }, 'Buy milk', 415],
    ['a 100 KB body: 401, not 413', json, JSON.stringify({ title: 'x'.repeat(100 * 1024) }), 413],
  ];
  for (const [name, headers, payload, status] of bodies) {
    t.test(name, async (t) => {
      const api = new Api(t, shared.app);
      assertUnauthorized(t, await api.post('/api/tasks', { headers, payload }), 'NOT_AUTHENTICATED');
      assertUnauthorized(t, await api.post('/api/tasks', { token: expired, headers, payload }), 'TOKEN_EXPIRED');
      const authed = await api.post('/api/tasks', { as: 'alice', headers, payload });
      t.equal(authed.statusCode, status, `with a valid token the same body is a ${status}`);
    });
  }
});

t.test('a request without valid credentials is answered 401 before its parameters are validated', async (t) => {
  const api = new Api(t, shared.app);
  assertUnauthorized(t, await api.get('/api/tasks/not-a-uuid'), 'NOT_AUTHENTICATED');
  assertUnauthorized(t, await api.get('/api/tasks?limit=1000'), 'NOT_AUTHENTICATED');
  t.equal((await api.get('/api/tasks/not-a-uuid', { as: 'alice' })).statusCode, 400, 'with a valid token the id is a 400');
  t.equal((await api.get('/api/tasks?limit=1000', { as: 'alice' })).statusCode, 400, 'with a valid token the limit is a 400');
});

t.test('every task operation answers 401 without a token and changes nothing', async (t) => {
  const { api, sql } = await build(t);
  const task = await api.createTask('alice', 'original');
  const url = `/api/tasks/${task.id}`;
  const attempts = [
    ['GET', '/api/tasks', undefined],
    ['POST', '/api/tasks', { title: 'sneaky' }],
    ['GET', url, undefined],
    ['PUT', url, { title: 'sneaky' }],
    ['PATCH', url, { status: 'completed' }],
    ['DELETE', url, undefined],
  ] as const;
  for (const [method, path, payload] of attempts) {
    const res = await api.request(method, path, payload ? { payload } : {});
    t.equal(res.statusCode, 401, `${method} ${path}: 401`);
    t.equal(res.json().error.code, 'NOT_AUTHENTICATED', `${method} ${path}: NOT_AUTHENTICATED`);
    t.equal(res.headers['www-authenticate'], 'Bearer realm="todo-api"', `${method} ${path}: the bare challenge`);
  }
  t.same((await api.get(url, { as: 'alice' })).json(), task, 'the task is untouched');
  const [row] = await sql`SELECT count(*)::int AS n FROM tasks`;
  t.equal(row?.n, 1, 'no task was created');
});

t.test('GET /health needs no token', async (t) => {
  const api = new Api(t, shared.app);
  const res = await api.get('/health');
  t.equal(res.statusCode, 200);
  t.same(res.json(), { status: 'ok', database: 'ok' });
  t.equal(res.headers['www-authenticate'], undefined);
  const withBadToken = await api.get('/health', { headers: { authorization: 'Bearer abc' } });
  t.equal(withBadToken.statusCode, 200, 'and ignores an invalid one');
});

t.test('INVALID_TOKEN says whether the token was malformed, badly signed, or of an algorithm not accepted', async (t) => {
  const api = new Api(t, shared.app);
  const claims = { sub: 'alice', exp: now() + 3600 };
  const cases: Array<[string, string, RegExp]> = [
    ['not a JWT', 'abc', /^The token is malformed/],
    ['two parts', 'abc.def', /^The token is malformed/],
    ['a header that is not JSON', 'abc.def.ghi', /^The token is malformed/],
    ['another secret', signed(claims, { key: 'another-secret-that-is-at-least-32-characters' }), /^The token is badly signed/],
    ['a tampered payload', `${handSigned(claims).split('.')[0]}.${b64url({ ...claims, sub: 'bob' })}.${handSigned(claims).split('.')[2]}`, /^The token is badly signed/],
    ['HS512', signed(claims, { algorithm: 'HS512' }), /^The token is of an algorithm that is not accepted \(accepted: HS256\)/],
    ['alg none', `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url(claims)}.`, /^The token is of an algorithm that is not accepted/],
  ];
  for (const [name, bearer, message] of cases) {
    const res = await listWith(api, `Bearer ${bearer}`);
    assertUnauthorized(t, res, 'INVALID_TOKEN');
    t.match(res.json().error.message, message, `${name}: the message says why`);
    const description = /error_description="([^"]*)"/.exec(String(res.headers['www-authenticate']))?.[1];
    t.equal(description, res.json().error.message.replace(/"/g, "'"), `${name}: and so does the challenge`);
  }
});

t.test('a token accepted once is refused once it has expired: a kept verdict never outlives exp', async (t) => {
  const { api } = await build(t);
  const short = token('alice', { expiresIn: 2 });
  t.equal((await api.get('/api/tasks', { token: short })).statusCode, 200, 'accepted while valid');
  t.equal((await api.get('/api/tasks', { token: short })).statusCode, 200, 'and again (from the kept verdict)');
  await new Promise((r) => setTimeout(r, 3100));
  const late = await api.get('/api/tasks', { token: short });
  t.equal(late.statusCode, 401, 'refused after exp');
  t.equal(late.json().error.code, 'TOKEN_EXPIRED');
});
