import fastifyRateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { ApiError } from '../errors.ts';

declare module 'fastify' {
  interface FastifyInstance {
    /** onRequest hook of protected routes, after authentication: the caller's budget. */
    limitPerUser: (request: FastifyRequest, reply: FastifyReply) => Promise<void>;
    /**
     * Counts a failed authentication against the client's IP; returns the 429 to
     * answer instead of the 401 once the IP is over its budget.
     */
    countAuthFailure: (request: FastifyRequest) => Promise<ApiError | undefined>;
  }
}

export interface RateLimitOptions {
  /** Requests per minute per user (the token's sub); 0 turns the limit off. */
  perUserPerMinute: number;
  /** Failed authentications per minute per client IP; 0 turns the limit off. */
  authFailuresPerMinute: number;
  /** Called on each rejection (metrics). */
  onRejected?: ((limit: 'user' | 'auth_failure') => void) | undefined;
}

export const RATE_LIMIT_DEFAULTS = { perUserPerMinute: 1200, authFailuresPerMinute: 300 } as const;

const WINDOW_MS = 60_000;

/** @fastify/rate-limit's answer for a key it counts (ours never allow-list a key, so every answer is one). */
type Verdict = Extract<Awaited<ReturnType<ReturnType<FastifyInstance['createRateLimit']>>>, { isAllowed: false }>;

/** The IETF draft's RateLimit-* fields (draft-ietf-httpapi-ratelimit-headers-06), as @fastify/rate-limit names them. */
function rateLimitHeaders(v: Verdict): Record<string, string> {
  return {
    'ratelimit-limit': String(v.max),
    'ratelimit-remaining': String(v.remaining),
    'ratelimit-reset': String(v.ttlInSeconds),
  };
}

function rateLimited(v: Verdict, what: string): ApiError {
  return new ApiError(
    429,
    'RATE_LIMITED',
    `Too many ${what}; the limit is ${v.max} a minute; retry in ${v.ttlInSeconds} s.`,
    null,
    { ...rateLimitHeaders(v), 'retry-after': String(v.ttlInSeconds) },
  );
}

/**
 * Per-user and per-IP budgets (@fastify/rate-limit's counters, in this process's
 * memory). Per user on authenticated routes, so one token holder cannot starve
 * the others; per IP for failed authentication, so guessing tokens is slow, while
 * a valid token from the same IP (a shared NAT) still works. The client IP is
 * Fastify's request.ip, which honours X-Forwarded-For only with TRUST_PROXY.
 */
async function rateLimit(app: FastifyInstance, options: RateLimitOptions): Promise<void> {
  await app.register(fastifyRateLimit, { global: false, cache: 10_000 });

  const perUser = app.createRateLimit({
    max: options.perUserPerMinute,
    timeWindow: WINDOW_MS,
    keyGenerator: (request) => `user:${request.caller?.id ?? ''}`,
  });
  app.decorate('limitPerUser', async (request: FastifyRequest, reply: FastifyReply) => {
    if (options.perUserPerMinute === 0 || request.caller === undefined) return;
    const verdict = (await perUser(request)) as Verdict;
    if (verdict.isExceeded) {
      options.onRejected?.('user');
      throw rateLimited(verdict, 'requests');
    }
    reply.headers(rateLimitHeaders(verdict));
  });

  const failures = app.createRateLimit({
    max: options.authFailuresPerMinute,
    timeWindow: WINDOW_MS,
    keyGenerator: (request) => `auth-failure:${request.ip}`,
  });
  app.decorate('countAuthFailure', async (request: FastifyRequest) => {
    if (options.authFailuresPerMinute === 0) return undefined;
    const verdict = (await failures(request)) as Verdict;
    if (!verdict.isExceeded) return undefined;
    options.onRejected?.('auth_failure');
    return rateLimited(verdict, 'failed authentications from this address');
  });
}

export default fp(rateLimit, { name: 'rate-limit', fastify: '5.x' });
