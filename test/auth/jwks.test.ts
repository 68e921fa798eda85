/**
 * Asymmetric tokens verified with keys from a JWKS URL: a JWKS server made here
 * (node:crypto keys) covers key types, rotation, outages, kid floods, claims and
 * every algorithm crossing.
 */
import { generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createSigner } from 'fast-jwt';
import t from 'tap';
import { buildApp, type AppOptions } from '../../src/app.ts';
import { createSql } from '../../src/db/client.ts';
import { Api, freshSchema, ORIGIN, SECRET, token as hsToken, type Test } from '../helper.ts';

interface Pair {
  kid: string;
  alg: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
}

function pair(alg: string, kid = randomUUID()): Pair {
  const keys =
    alg === 'EdDSA'
      ? generateKeyPairSync('ed25519')
      : alg.startsWith('ES')
        ? generateKeyPairSync('ec', { namedCurve: { ES256: 'P-256', ES384: 'P-384', ES512: 'P-521' }[alg] ?? 'P-256' })
        : generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { kid, alg, ...keys };
}

const jwk = (p: Pair, extra: Record<string, unknown> = {}) => ({ ...p.publicKey.export({ format: 'jwk' }), kid: p.kid, use: 'sig', ...extra });

/** A JWKS endpoint whose keys and health the test controls; it counts its fetches. */
class JwksServer {
  keys: object[] = [];
  status = 200;
  fetches = 0;
  private server: Server = createServer((_req, res) => {
    this.fetches++;
    if (this.status !== 200) {
      res.writeHead(this.status).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: this.keys }));
  });
  url = '';

  async start(t: Test): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/api/auth/jwks`;
    t.teardown(() => new Promise<void>((resolve) => this.server.close(() => resolve())));
    return this;
  }
}

const ISSUER = 'https://auth.example.test';

function sign(p: Pair, claims: Record<string, unknown> = {}): string {
  const now = Math.floor(Date.now() / 1000);
  const signer = createSigner({
    key: p.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    algorithm: p.alg as never,
    kid: p.kid,
  });
  return signer({ sub: 'user_123abc', email: 'u@example.test', iss: ISSUER, aud: ISSUER, iat: now, exp: now + 900, ...claims });
}

async function app(t: Test, jwks: JwksServer, options: Partial<AppOptions> = {}) {
  const { url } = await freshSchema(t);
  const built = await buildApp({
    sql: createSql(url),
    jwksUrl: jwks.url,
    issuer: ISSUER,
    audience: [ISSUER],
    corsOrigins: [ORIGIN],
    jwksMinRefetchIntervalMs: 0,
    ...options,
  });
  await built.ready();
  t.teardown(() => built.close());
  return new Api(t, built);
}

async function expect401(t: Test, api: Api, token: string, code: string, name: string) {
  const res = await api.get('/api/tasks', { token });
  t.equal(res.statusCode, 401, `${name}: 401`);
  t.equal(res.json().error.code, code, `${name}: ${code}`);
  t.match(res.headers['www-authenticate'], /error="invalid_token"/, `${name}: challenge`);
}

t.test('tokens of every asymmetric kind are accepted with the matching JWKS key', async (t) => {
  const algs = ['EdDSA', 'ES256', 'ES384', 'ES512', 'RS256', 'RS512', 'PS256', 'PS384'];
  const pairs = algs.map((alg) => pair(alg));
  const jwks = await new JwksServer().start(t);
  jwks.keys = pairs.map((p) => jwk(p));
  const api = await app(t, jwks);
  for (const p of pairs) {
    const res = await api.post('/api/tasks', { token: sign(p, { sub: `user-${p.alg}` }), payload: { title: p.alg } });
    t.equal(res.statusCode, 201, p.alg);
    t.equal(res.json().user_id, `user-${p.alg}`);
  }
  t.equal(jwks.fetches, 1, 'the keys were fetched once and cached');
});

t.test('a new key is picked up without a restart (rotation)', async (t) => {
  const jwks = await new JwksServer().start(t);
  const old = pair('EdDSA');
  jwks.keys = [jwk(old)];
  const api = await app(t, jwks);
  t.equal((await api.get('/api/tasks', { token: sign(old) })).statusCode, 200);

  const next = pair('EdDSA');
  jwks.keys = [jwk(next), jwk(old)];
  t.equal((await api.get('/api/tasks', { token: sign(next) })).statusCode, 200, 'the new kid triggered a refetch');
  t.equal(jwks.fetches, 2);

  jwks.keys = [jwk(next)];
  t.equal((await api.get('/api/tasks', { token: sign(old) })).statusCode, 200, 'a cached key keeps working until it is needed again');
});

t.test('a flood of unknown kids refetches at most once per interval', async (t) => {
  const jwks = await new JwksServer().start(t);
  const real = pair('ES256');
  jwks.keys = [jwk(real)];
  const api = await app(t, jwks, { jwksMinRefetchIntervalMs: 60_000 });
  t.equal((await api.get('/api/tasks', { token: sign(real) })).statusCode, 200);
  t.equal(jwks.fetches, 1);

  const forged = pair('ES256');
  const results = await Promise.all(
    Array.from({ length: 50 }, () => api.get('/api/tasks', { token: sign({ ...forged, kid: randomUUID() }) })),
  );
  t.ok(results.every((r) => r.statusCode === 401 && r.json().error.code === 'INVALID_TOKEN'), '50 unknown kids: all 401 INVALID_TOKEN');
  t.equal(jwks.fetches, 1, 'no refetch inside the interval');
});

t.test('an unknown kid refetches once when the interval allows, then is refused', async (t) => {
  const jwks = await new JwksServer().start(t);
  jwks.keys = [jwk(pair('ES256'))];
  const api = await app(t, jwks);
  await expect401(t, api, sign(pair('ES256')), 'INVALID_TOKEN', 'unknown kid');
  t.equal(jwks.fetches, 1, 'one fetch for one unknown kid');
});

t.test('while the JWKS is down, cached keys keep working and unknown ones are a 503', async (t) => {
  const jwks = await new JwksServer().start(t);
  const known = pair('EdDSA');
  jwks.keys = [jwk(known)];
  const api = await app(t, jwks);
  t.equal((await api.get('/api/tasks', { token: sign(known) })).statusCode, 200);

  jwks.status = 503;
  t.equal((await api.get('/api/tasks', { token: sign(known) })).statusCode, 200, 'cached key: still 200');
  const res = await api.get('/api/tasks', { token: sign(pair('EdDSA')) });
  t.equal(res.statusCode, 503, 'a key we do not have: 503');
  t.equal(res.json().error.code, 'SERVICE_UNAVAILABLE');
  t.notMatch(res.body, /127\.0\.0\.1|jwks|HTTP 503/i, 'the body names nothing internal');

  jwks.status = 200;
  const rotated = pair('EdDSA');
  jwks.keys = [jwk(rotated), jwk(known)];
  t.equal((await api.get('/api/tasks', { token: sign(rotated) })).statusCode, 200, 'back up: new keys are fetched again');
});

t.test('with the JWKS unreachable from the start, asymmetric tokens are a 503, HS256 still works', async (t) => {
  const jwks = await new JwksServer().start(t);
  jwks.status = 500;
  const api = await app(t, jwks, { secretKey: SECRET });
  const res = await api.get('/api/tasks', { token: sign(pair('RS256')) });
  t.equal(res.statusCode, 503);
  t.equal(res.json().error.code, 'SERVICE_UNAVAILABLE');
  t.equal((await api.get('/api/tasks', { token: hsToken('hs-user', { claims: { iss: ISSUER, aud: ISSUER } }) })).statusCode, 200);

  const closed = new JwksServer();
  closed.url = 'http://127.0.0.1:9/jwks';
  const refused = await app(t, closed);
  const r2 = await refused.get('/api/tasks', { token: sign(pair('RS256')) });
  t.equal(r2.statusCode, 503, 'connection refused: 503');
});

t.test('issuer and audience must match when configured', async (t) => {
  const jwks = await new JwksServer().start(t);
  const p = pair('ES256');
  jwks.keys = [jwk(p)];
  const api = await app(t, jwks);
  await expect401(t, api, sign(p, { iss: 'https://evil.example' }), 'INVALID_TOKEN', 'wrong iss');
  await expect401(t, api, sign(p, { aud: 'https://other-app.example' }), 'INVALID_TOKEN', 'wrong aud');
  await expect401(t, api, sign(p, { iss: undefined }), 'INVALID_TOKEN', 'no iss');
  await expect401(t, api, sign(p, { aud: undefined }), 'INVALID_TOKEN', 'no aud');
  t.equal((await api.get('/api/tasks', { token: sign(p, { aud: [ISSUER, 'x'] }) })).statusCode, 200, 'aud as a list containing ours');

  const open = await app(t, jwks, { issuer: undefined, audience: undefined });
  t.equal((await open.get('/api/tasks', { token: sign(p, { iss: 'anyone', aud: 'anything' }) })).statusCode, 200, 'not configured: not checked');
});

t.test('clock tolerance applies to exp and nbf', async (t) => {
  const jwks = await new JwksServer().start(t);
  const p = pair('EdDSA');
  jwks.keys = [jwk(p)];
  const api = await app(t, jwks, { clockToleranceS: 5 });
  const now = Math.floor(Date.now() / 1000);
  t.equal((await api.get('/api/tasks', { token: sign(p, { exp: now - 2 }) })).statusCode, 200, 'expired 2 s ago, tolerance 5 s');
  await expect401(t, api, sign(p, { exp: now - 30 }), 'TOKEN_EXPIRED', 'expired 30 s ago');
  t.equal((await api.get('/api/tasks', { token: sign(p, { nbf: now + 2 }) })).statusCode, 200, 'valid in 2 s, tolerance 5 s');
  await expect401(t, api, sign(p, { nbf: now + 60 }), 'INVALID_TOKEN', 'valid in 60 s');

  const strict = await app(t, jwks, { clockToleranceS: 0 });
  await expect401(t, strict, sign(p, { exp: now - 2 }), 'TOKEN_EXPIRED', 'no tolerance');
});

t.test('no algorithm confusion: a token is verified only with a key of its own kind', async (t) => {
  const jwks = await new JwksServer().start(t);
  const rsa = pair('RS256');
  const ec = pair('ES256');
  const ed = pair('EdDSA');
  const secret = 'a-shared-secret-that-is-also-published-0123456789';
  jwks.keys = [jwk(rsa, { alg: 'RS256' }), jwk(ec), jwk(ed), { kty: 'oct', kid: 'sym', k: Buffer.from(secret).toString('base64url') }];
  const api = await app(t, jwks, { secretKey: SECRET });
  const now = Math.floor(Date.now() / 1000);
  const claims = { sub: 'mallory', iss: ISSUER, aud: ISSUER, exp: now + 600 };
  const hs = (key: string, kid?: string) => createSigner({ key, algorithm: 'HS256', ...(kid && { kid }) })(claims);

  const rsaPem = rsa.publicKey.export({ format: 'pem', type: 'spki' }).toString();
  await expect401(t, api, hs(rsaPem, rsa.kid), 'INVALID_TOKEN', 'HS256 signed with the RSA public key (PEM) as secret');
  await expect401(t, api, hs(JSON.stringify(jwk(rsa)), rsa.kid), 'INVALID_TOKEN', 'HS256 signed with the JWK text as secret');
  await expect401(t, api, hs(secret, 'sym'), 'INVALID_TOKEN', 'HS256 with a symmetric key published in the JWKS');
  await expect401(t, api, sign({ ...ec, kid: rsa.kid }), 'INVALID_TOKEN', 'ES256 token naming the RSA key');
  await expect401(t, api, sign({ ...ed, kid: ec.kid }), 'INVALID_TOKEN', 'EdDSA token naming the EC key');
  await expect401(t, api, sign({ ...rsa, alg: 'PS256' }), 'INVALID_TOKEN', 'PS256 with a key published for RS256 only');
  await expect401(t, api, sign({ ...rsa, alg: 'RS384', kid: rsa.kid }), 'INVALID_TOKEN', 'RS384 with a key published for RS256');

  const none = (payload: object, kid: string) =>
    `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT', kid })).toString('base64url')}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.`;
  await expect401(t, api, none(claims, rsa.kid), 'INVALID_TOKEN', 'alg none');

  const jwksOnly = await app(t, jwks);
  await expect401(t, jwksOnly, hsToken('x', { claims: { iss: ISSUER, aud: ISSUER } }), 'INVALID_TOKEN', 'HS256 when no SECRET_KEY is configured');

  t.equal((await api.get('/api/tasks', { token: sign(rsa) })).statusCode, 200, 'the honest RS256 token works');
  t.equal((await api.get('/api/tasks', { token: hsToken('alice', { claims: { iss: ISSUER, aud: ISSUER } }) })).statusCode, 200, 'the honest HS256 token works');
});

t.test('without a kid, a token is verified only when the JWKS has exactly one key of its kind', async (t) => {
  const jwks = await new JwksServer().start(t);
  const a = pair('ES256');
  jwks.keys = [{ ...jwk(a), kid: undefined }];
  const api = await app(t, jwks);
  const noKid = (p: Pair) => {
    const now = Math.floor(Date.now() / 1000);
    return createSigner({ key: p.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), algorithm: p.alg as never })({
      sub: 'k',
      iss: ISSUER,
      aud: ISSUER,
      exp: now + 60,
    });
  };
  t.equal((await api.get('/api/tasks', { token: noKid(a) })).statusCode, 200);
  const b = pair('ES256');
  jwks.keys = [{ ...jwk(a), kid: undefined }, { ...jwk(b), kid: undefined }];
  await expect401(t, api, noKid(b), 'INVALID_TOKEN', 'two keys of the kind, no kid: ambiguous');
});
