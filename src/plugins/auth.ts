import type { Algorithm } from 'fast-jwt';
import fastifyJwt from '@fastify/jwt';
import type { FastifyInstance, FastifyRequest, onRequestHookHandler } from 'fastify';
import fp from 'fastify-plugin';
import { ASYMMETRIC_ALGORITHMS, JwksKeyStore, JwksUnavailableError } from '../auth/jwks.ts';
import type { Caller } from '../contract/handlers.ts';
import { ApiError, notAuthenticated, REALM, serviceUnavailable } from '../errors.ts';

declare module 'fastify' {
  interface FastifyInstance {
    /** onRequest hook of protected routes: runs before the body is read. */
    authenticate: onRequestHookHandler;
  }
}

export interface AuthOptions {
  /** HS256 shared secret (the frontend's BETTER_AUTH_SECRET). */
  secretKey?: string | undefined;
  /** Where the issuer publishes its public keys (Better Auth: <base>/api/auth/jwks). */
  jwksUrl?: string | undefined;
  issuer?: string | undefined;
  audience?: string[] | undefined;
  clockToleranceS?: number | undefined;
  /** The least time between two JWKS fetches (default 10 s). */
  jwksMinRefetchIntervalMs?: number | undefined;
  /** Called after each fetch of the JWKS (metrics). */
  onJwksFetch?: ((outcome: 'ok' | 'error') => void) | undefined;
}

/** Token verdicts kept (by Authorization header) and for how long at most. */
const VERDICT_CACHE_SIZE = 1000;
const VERDICT_TTL_MS = 60_000;
const MAX_SUB_LENGTH = 255;
// What a PostgreSQL text column cannot hold: NUL and unpaired surrogates.
const UNSTORABLE = /[\u0000\uD800-\uDFFF]/u;

type Reason = 'NOT_AUTHENTICATED' | 'INVALID_TOKEN' | 'TOKEN_EXPIRED';

function unauthorized(code: Reason, message: string, detail?: string): ApiError & { detail: string | undefined } {
  if (code === 'NOT_AUTHENTICATED') return Object.assign(notAuthenticated(message), { detail });
  const challenge = `Bearer realm="${REALM}", error="invalid_token", error_description="${message.replace(/"/g, "'")}"`;
  return Object.assign(new ApiError(401, code, message, null, { 'www-authenticate': challenge }), { detail });
}

/** The token of an `Authorization: Bearer <token>` header (scheme case-insensitive). */
function bearerToken(header: string | undefined): string {
  if (header === undefined || header.trim() === '') throw notAuthenticated();
  const match = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i.exec(header);
  if (!match?.[1]) {
    throw unauthorized('NOT_AUTHENTICATED', 'The Authorization header must be "Bearer <token>".');
  }
  return match[1];
}

/** The `alg` of a verified bearer token's header (read only after verification). */
function signedWith(authorization: string): unknown {
  const token = authorization.slice(authorization.indexOf(' ') + 1).trim();
  try {
    return (JSON.parse(Buffer.from(token.slice(0, token.indexOf('.')), 'base64url').toString('utf8')) as { alg?: unknown }).alg;
  } catch {
    return undefined;
  }
}

/** The claims we rely on, checked beyond the signature. */
function callerFrom(payload: unknown): Caller {
  const claims = (typeof payload === 'object' && payload !== null ? payload : {}) as Record<string, unknown>;
  const { sub, email } = claims;
  if (typeof sub !== 'string' || sub.length === 0 || [...sub].length > MAX_SUB_LENGTH || UNSTORABLE.test(sub)) {
    throw unauthorized('INVALID_TOKEN', `The token's sub claim must be a user id of 1 to ${MAX_SUB_LENGTH} characters.`);
  }
  if (typeof claims.exp !== 'number') {
    throw unauthorized('INVALID_TOKEN', 'The token must have an exp claim.');
  }
  const usableEmail = typeof email === 'string' && email.length <= 320 && !UNSTORABLE.test(email) ? email : null;
  return { id: sub, email: usableEmail };
}

/** What is wrong with a malformed token: its shape, or the encoding of parts it has. */
function malformed(token: string): string {
  const parts = token.split('.');
  if (parts.length !== 3) return `The token is malformed: a JWT is three base64url parts, header.payload.signature (this one has ${parts.length}).`;
  return 'The token is malformed: its header or payload is not base64url-encoded JSON.';
}

/** fast-jwt's and @fastify/jwt's failures, in the contract's terms (the detail is for the log only). */
function fromVerifyError(err: unknown, header: string | undefined): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof JwksUnavailableError) {
    return Object.assign(serviceUnavailable("The token issuer's keys cannot be fetched; try again shortly."), { cause: err });
  }
  const { code, message } = err as { code?: unknown; message?: string };
  const detail = message ?? String(err);
  switch (code) {
    case 'FAST_JWT_EXPIRED':
    case 'FST_JWT_AUTHORIZATION_TOKEN_EXPIRED':
      return unauthorized('TOKEN_EXPIRED', 'The token has expired.', detail);
    case 'FAST_JWT_INACTIVE':
      return unauthorized('INVALID_TOKEN', 'The token is not valid yet.', detail);
    case 'FAST_JWT_MISSING_REQUIRED_CLAIM':
      return unauthorized('INVALID_TOKEN', 'The token lacks a required claim (sub and exp).', detail);
  }
  if (/\b(iss|aud)\b/.test(detail)) return unauthorized('INVALID_TOKEN', 'The token was issued by or for someone else.', detail);
  // @fastify/jwt wraps fast-jwt's errors (FST_JWT_AUTHORIZATION_TOKEN_INVALID) but keeps their messages.
  if (code === 'FAST_JWT_INVALID_SIGNATURE' || /signature is invalid/i.test(detail)) {
    return unauthorized('INVALID_TOKEN', 'The token is badly signed: its signature does not verify with the key for its algorithm.', detail);
  }
  if (code === 'FAST_JWT_INVALID_ALGORITHM' || /algorithm/i.test(detail)) {
    return unauthorized('INVALID_TOKEN', 'The token is of an algorithm that is not accepted.', detail);
  }
  if (code === 'FAST_JWT_MALFORMED' || code === 'FAST_JWT_MISSING_SIGNATURE' || /malformed|base64url|serialized JSON|missing/i.test(detail)) {
    // Verification got this far, so the header held a token: bearerToken reads it again.
    return unauthorized('INVALID_TOKEN', malformed(bearerToken(header)), detail);
  }
  return unauthorized('INVALID_TOKEN', 'The token is invalid.', detail);
}

/**
 * Bearer JWT authentication through @fastify/jwt. A token is verified only with
 * a key of its own kind, chosen by its `alg`: HS256 with SECRET_KEY, asymmetric
 * algorithms with the issuer's JWKS key of the matching type; `none` and
 * anything else never (fast-jwt has had algorithm-confusion CVEs).
 */
async function auth(app: FastifyInstance, options: AuthOptions): Promise<void> {
  const jwks = options.jwksUrl
    ? new JwksKeyStore({
        url: options.jwksUrl,
        onFetch: options.onJwksFetch,
        ...(options.jwksMinRefetchIntervalMs !== undefined && { minRefetchIntervalMs: options.jwksMinRefetchIntervalMs }),
      })
    : undefined;
  const algorithms = [...(options.secretKey ? ['HS256'] : []), ...(jwks ? ASYMMETRIC_ALGORITHMS : [])];
  if (algorithms.length === 0) throw new Error('auth needs SECRET_KEY or JWKS_URL');

  await app.register(fastifyJwt, {
    secret: async (_request: FastifyRequest, token: unknown) => {
      const header = (token as { header?: { alg?: unknown; kid?: unknown } }).header ?? {};
      const { alg, kid } = header;
      if (alg === 'HS256' && options.secretKey) return options.secretKey;
      if (typeof alg === 'string' && jwks && ASYMMETRIC_ALGORITHMS.includes(alg)) {
        const key = await jwks.keyFor(alg, typeof kid === 'string' ? kid : undefined);
        if (key) return key;
        throw unauthorized('INVALID_TOKEN', 'The token is signed with a key the issuer does not publish.', `alg ${alg}, kid ${String(kid)}`);
      }
      throw unauthorized('INVALID_TOKEN', `The token is of an algorithm that is not accepted (accepted: ${algorithms.join(', ')}).`, `alg ${String(alg)}`);
    },
    decode: { complete: true },
    verify: {
      algorithms: algorithms as Algorithm[], // names from KEY_TYPES (src/auth/jwks.ts) and HS256
      // fast-jwt checks iss/aud only when present: configured means required.
      requiredClaims: ['sub', 'exp', ...(options.issuer !== undefined ? ['iss'] : []), ...(options.audience !== undefined ? ['aud'] : [])],
      ...(options.issuer !== undefined && { allowedIss: options.issuer }),
      ...(options.audience !== undefined && { allowedAud: options.audience }),
      clockTolerance: (options.clockToleranceS ?? 0) * 1000,
      // A client sends the same token many times; fast-jwt still honours exp on cache hits,
      // and a verdict is reused for at most a minute (a withdrawn JWKS key stops soon).
      cache: 1000,
      cacheTTL: 60_000,
      extractToken: (request: FastifyRequest) => bearerToken(request.headers.authorization),
    },
    messages: { authorizationTokenInvalid: (err: Error) => err.message },
  });

  // A client sends the same token on every request. An HS256 verdict is kept, by the exact
  // Authorization header, within the bounds fast-jwt's own cache would use (nbf and exp
  // with the clock tolerance, a minute at most, so a withdrawn JWKS key stops soon):
  // a hit skips @fastify/jwt's per-request option merging, decoding and token hashing.
  const tolerance = (options.clockToleranceS ?? 0) * 1000;
  const verdicts = new Map<string, { caller: Caller; from: number; until: number }>();
  const remember = (header: string, caller: Caller, payload: unknown) => {
    // Only shared-secret (HS256) verdicts: a JWKS token must keep meeting the key lookup,
    // so that a key the issuer withdraws stops working as soon as we have refetched.
    if (signedWith(header) !== 'HS256') return;
    const { nbf, exp } = payload as { nbf?: unknown; exp?: unknown };
    const now = Date.now();
    if (verdicts.size >= VERDICT_CACHE_SIZE) verdicts.delete(verdicts.keys().next().value as string);
    verdicts.set(header, {
      caller,
      from: typeof nbf === 'number' ? nbf * 1000 - tolerance : 0,
      until: Math.min(now + tolerance + VERDICT_TTL_MS, typeof exp === 'number' ? exp * 1000 + tolerance : now),
    });
  };

  /** A kept verdict for this Authorization header, if it is still good. */
  const keptCaller = (header: string | undefined): Caller | undefined => {
    if (header === undefined) return undefined;
    const verdict = verdicts.get(header);
    if (verdict === undefined) return undefined;
    const now = Date.now();
    if (now >= verdict.from && now <= verdict.until) return verdict.caller;
    verdicts.delete(header);
    return undefined;
  };

  const verify = async (request: FastifyRequest): Promise<void> => {
    const header = request.headers.authorization;
    try {
      let payload: unknown; // @fastify/jwt reads the header through bearerToken (extractToken)
      try {
        payload = await request.jwtVerify();
      } catch (err) {
        throw fromVerifyError(err, header);
      }
      request.caller = callerFrom(payload);
      if (header !== undefined) remember(header, request.caller, payload);
    } catch (err) {
      if (err instanceof ApiError && err.statusCode === 503) {
        request.log.error({ err: (err as { cause?: unknown }).cause ?? err }, 'authentication unavailable: token keys cannot be fetched');
      } else if (err instanceof ApiError) {
        // Over the IP's budget of failures: a 429 (no longer logged one by one; metrics count them).
        const limited = await app.countAuthFailure(request);
        if (limited) throw limited;
        // The detail can quote a token's header (alg, kid): bounded, like every log line.
        const detail = (err as { detail?: string }).detail ?? err.message;
        request.log.warn({ reason: err.code, detail: detail.length > 200 ? `${detail.slice(0, 200)}…` : detail }, 'authentication failed');
      }
      throw err;
    }
  };

  // A callback hook: a kept verdict answers synchronously, without a promise per request.
  app.decorate('authenticate', function (request, _reply, done) {
    const caller = keptCaller(request.headers.authorization);
    if (caller !== undefined) {
      request.caller = caller;
      return done();
    }
    verify(request).then(() => done(), done);
  } satisfies onRequestHookHandler);
}

export default fp(auth, { name: 'auth', fastify: '5.x', dependencies: ['rate-limit'] });
