import fastifyJwt from '@fastify/jwt';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { ApiError } from '../errors.ts';
import type { Caller } from '../contract/handlers.ts';

declare module 'fastify' {
  interface FastifyInstance {
    /** onRequest hook of protected routes: runs before the body is read. */
    authenticate: (request: FastifyRequest) => Promise<void>;
  }
}

export interface AuthOptions {
  secretKey: string;
}

const REALM = 'todo-api';
const MAX_SUB_LENGTH = 255;
// What a PostgreSQL text column cannot hold: NUL and unpaired surrogates.
const UNSTORABLE = /[\u0000\uD800-\uDFFF]/u;

type Reason = 'NOT_AUTHENTICATED' | 'INVALID_TOKEN' | 'TOKEN_EXPIRED';

function unauthorized(code: Reason, message: string): ApiError {
  const challenge =
    code === 'NOT_AUTHENTICATED'
      ? `Bearer realm="${REALM}"`
      : `Bearer realm="${REALM}", error="invalid_token", error_description="${message.replace(/"/g, "'")}"`;
  return new ApiError(401, code, message, null, { 'www-authenticate': challenge });
}

/** The token of an `Authorization: Bearer <token>` header (scheme case-insensitive). */
function bearerToken(header: string | undefined): string {
  if (header === undefined || header.trim() === '') {
    throw unauthorized('NOT_AUTHENTICATED', 'Authentication is required; send Authorization: Bearer <token>.');
  }
  const match = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i.exec(header);
  if (!match?.[1]) {
    throw unauthorized('NOT_AUTHENTICATED', 'The Authorization header must be "Bearer <token>".');
  }
  return match[1];
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

function fromVerifyError(err: unknown): ApiError {
  const code = (err as { code?: unknown }).code;
  if (code === 'FAST_JWT_EXPIRED') return unauthorized('TOKEN_EXPIRED', 'The token has expired.');
  if (code === 'FAST_JWT_INACTIVE') return unauthorized('INVALID_TOKEN', 'The token is not valid yet.');
  if (code === 'FAST_JWT_MISSING_REQUIRED_CLAIM') return unauthorized('INVALID_TOKEN', 'The token lacks a required claim (sub and exp).');
  if (code === 'FAST_JWT_INVALID_ALGORITHM') return unauthorized('INVALID_TOKEN', 'The token must be signed with HS256.');
  return unauthorized('INVALID_TOKEN', 'The token is invalid.');
}

/**
 * Bearer JWT authentication: HS256 only (fast-jwt has had algorithm-confusion
 * CVEs, so nothing else is allowed), `sub` and `exp` required.
 */
async function auth(app: FastifyInstance, options: AuthOptions): Promise<void> {
  await app.register(fastifyJwt, {
    secret: options.secretKey,
    sign: { algorithm: 'HS256' },
    // cache: a client sends the same token many times; fast-jwt still honours exp on cache hits.
    verify: { algorithms: ['HS256'], requiredClaims: ['sub', 'exp'], cache: 1000 },
  });

  app.decorate('authenticate', async (request: FastifyRequest) => {
    try {
      const token = bearerToken(request.headers.authorization);
      let payload: unknown;
      try {
        payload = app.jwt.verify(token);
      } catch (err) {
        throw fromVerifyError(err);
      }
      request.caller = callerFrom(payload);
    } catch (err) {
      if (err instanceof ApiError) {
        request.log.warn({ reason: err.code, detail: err.message }, 'authentication failed');
      }
      throw err;
    }
  });
}

export default fp(auth, { name: 'auth', fastify: '5.x' });
