import { existsSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { parseEnv } from 'node:util';
import { RATE_LIMIT_DEFAULTS } from './plugins/rate-limit.ts';
import { SYNC_RETENTION_DAYS } from './sync/feed.ts';

export type Environment = 'development' | 'test' | 'production';
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface Config {
  port: number;
  host: string;
  environment: Environment;
  /** Absent: `npm start` runs an embedded PostgreSQL under `dataDir`. */
  databaseUrl: string | undefined;
  dataDir: string;
  /** HS256 shared secret. With neither it nor jwksUrl, development makes one (see server.ts). */
  secretKey: string | undefined;
  /** The token issuer's public keys (Better Auth: <base URL>/api/auth/jwks). */
  jwksUrl: string | undefined;
  /** When set, tokens must carry exactly this `iss` / one of these `aud`. */
  issuer: string | undefined;
  audience: string[] | undefined;
  clockToleranceS: number;
  corsOrigins: string[];
  logLevel: LogLevel;
  /** How long one operation may spend on the database before it is cancelled and answered 503. */
  operationDeadlineMs: number;
  /** How long the change feed remembers deletions; an older `since` is 410 SYNC_EXPIRED. */
  syncRetentionDays: number;
  // The request edges (src/plugins/rate-limit.ts, metrics.ts): see edgeSettings below.
  /** Requests a minute per user; 0 is off. */
  rateLimitPerMinute: number;
  /** Failed authentications a minute per client IP; 0 is off. */
  authFailureLimitPerMinute: number;
  /** Whether X-Forwarded-For gives the client IP: false, true, a hop count, or the proxies' addresses/CIDRs. */
  trustProxy: boolean | number | string[];
  /** Where Prometheus metrics are served (on HOST); undefined is off. */
  metricsPort: number | undefined;
  // Process and deployment (README "Operations").
  /** The direct (unpooled) connection for migrations, when DATABASE_URL goes through a pooler. */
  databaseUrlUnpooled: string | undefined;
  /** Pool size per process: DB_POOL_MAX, else DATABASE_URL's `?max=`, else the driver's default (10). */
  dbPoolMax: number | undefined;
  /** Worker processes serving one port (node:cluster); 1 runs no cluster. */
  webConcurrency: number;
}

/** A refusal to start, worded for one line on stderr. */
export class ConfigError extends Error {
  readonly variable: string;
  constructor(variable: string, message: string) {
    super(`${variable} ${message}`);
    this.variable = variable;
    this.name = 'ConfigError';
  }
}

export const MIN_SECRET_LENGTH = 32;
/** Without CORS_ORIGINS outside production: the usual local dev servers (Next.js/CRA on 3000, Vite on 5173). */
export const DEV_CORS_ORIGINS = ['http://localhost:3000', 'http://localhost:5173', 'http://127.0.0.1:3000', 'http://127.0.0.1:5173'];
const ENVIRONMENTS: readonly Environment[] = ['development', 'test', 'production'];
const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

type Env = Record<string, string | undefined>;

/**
 * The process environment over the `.env` file (when there is one): the real
 * environment wins, as with dotenv.
 */
export function readEnv(env: Env = process.env, envFile = resolve('.env')): Env {
  if (!existsSync(envFile)) return env;
  const fromFile = parseEnv(readFileSync(envFile, 'utf8')) as Env;
  return { ...fromFile, ...env };
}

/** Validates the environment; throws ConfigError naming the first bad variable. */
export function loadConfig(env: Env = readEnv()): Config {
  const value = (name: string): string | undefined => {
    const v = env[name]?.trim();
    return v === '' ? undefined : v;
  };

  const environment = oneOf('ENVIRONMENT', value('ENVIRONMENT') ?? 'development', ENVIRONMENTS);

  const secretKey = value('SECRET_KEY');
  const jwksUrl = value('JWKS_URL');
  if (jwksUrl !== undefined && !isHttpUrl(jwksUrl)) {
    throw new ConfigError('JWKS_URL', `must be an http(s) URL (got "${jwksUrl}")`);
  }
  if (secretKey === undefined && jwksUrl === undefined && environment === 'production') {
    throw new ConfigError('SECRET_KEY', 'or JWKS_URL is required when ENVIRONMENT=production');
  }
  // A JWKS issuer signs tokens for other applications too: in production, only ours are accepted.
  if (jwksUrl !== undefined && environment === 'production') {
    for (const name of ['JWT_ISSUER', 'JWT_AUDIENCE']) {
      if (value(name) === undefined) throw new ConfigError(name, 'is required with JWKS_URL when ENVIRONMENT=production');
    }
  }
  if (secretKey !== undefined && secretKey.length < MIN_SECRET_LENGTH) {
    throw new ConfigError('SECRET_KEY', `must be at least ${MIN_SECRET_LENGTH} characters long`);
  }

  const databaseUrl = value('DATABASE_URL');
  if (databaseUrl !== undefined && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new ConfigError('DATABASE_URL', 'must be a postgres:// or postgresql:// URL');
  }
  // The embedded PostgreSQL is a development convenience (a devDependency, absent from a production install).
  if (databaseUrl === undefined && environment === 'production') {
    throw new ConfigError('DATABASE_URL', 'is required when ENVIRONMENT=production (the embedded PostgreSQL is for development only)');
  }

  return {
    port: portNumber('PORT', value('PORT') ?? '8000'),
    host: value('HOST') ?? '127.0.0.1',
    environment,
    databaseUrl,
    dataDir: resolve(value('DATA_DIR') ?? '.data'),
    secretKey,
    jwksUrl,
    issuer: value('JWT_ISSUER'),
    audience: audiences('JWT_AUDIENCE', value('JWT_AUDIENCE')),
    clockToleranceS: seconds('JWT_CLOCK_TOLERANCE_S', value('JWT_CLOCK_TOLERANCE_S') ?? '5'),
    corsOrigins: origins('CORS_ORIGINS', value('CORS_ORIGINS') ?? (environment === 'production' ? '' : DEV_CORS_ORIGINS.join(','))),
    logLevel: oneOf('LOG_LEVEL', (value('LOG_LEVEL') ?? 'info').toLowerCase(), LOG_LEVELS),
    operationDeadlineMs: milliseconds('OPERATION_DEADLINE_MS', value('OPERATION_DEADLINE_MS') ?? '10000', 100, 600_000),
    syncRetentionDays: days('SYNC_RETENTION_DAYS', value('SYNC_RETENTION_DAYS') ?? String(SYNC_RETENTION_DAYS)),
    ...edgeSettings(value),
    databaseUrlUnpooled: postgresUrl('DATABASE_URL_UNPOOLED', value('DATABASE_URL_UNPOOLED')),
    dbPoolMax: poolMax(value('DB_POOL_MAX'), databaseUrl),
    webConcurrency: wholeNumber('WEB_CONCURRENCY', value('WEB_CONCURRENCY') ?? '1', 1, 64),
  };
}

/** Rate limits, proxies and metrics. */
function edgeSettings(value: (name: string) => string | undefined) {
  const metricsPort = value('METRICS_PORT');
  return {
    rateLimitPerMinute: perMinute('RATE_LIMIT_PER_MINUTE', value('RATE_LIMIT_PER_MINUTE') ?? String(RATE_LIMIT_DEFAULTS.perUserPerMinute)),
    authFailureLimitPerMinute: perMinute('AUTH_FAILURE_LIMIT_PER_MINUTE', value('AUTH_FAILURE_LIMIT_PER_MINUTE') ?? String(RATE_LIMIT_DEFAULTS.authFailuresPerMinute)),
    trustProxy: trustProxy('TRUST_PROXY', value('TRUST_PROXY') ?? 'false'),
    metricsPort: metricsPort === undefined ? undefined : portNumber('METRICS_PORT', metricsPort),
  };
}

function perMinute(name: string, v: string): number {
  if (!/^\d{1,9}$/.test(v)) throw new ConfigError(name, `must be a whole number of requests a minute, 0 for no limit (got "${v}")`);
  return Number(v);
}

function trustProxy(name: string, v: string): boolean | number | string[] {
  if (/^(true|false)$/i.test(v)) return v.toLowerCase() === 'true';
  if (/^\d{1,2}$/.test(v)) return Number(v);
  const list = v.split(',').map((a) => a.trim()).filter((a) => a !== '');
  for (const entry of list) {
    const [address = '', prefix] = entry.split('/');
    const family = isIP(address);
    const maxPrefix = family === 4 ? 32 : 128;
    if (family === 0 || (prefix !== undefined && (!/^\d+$/.test(prefix) || Number(prefix) > maxPrefix))) {
      throw new ConfigError(name, `must be true, false, a number of proxies, or their addresses/CIDRs, comma-separated (got "${entry}")`);
    }
  }
  return list;
}

function postgresUrl(name: string, v: string | undefined): string | undefined {
  if (v !== undefined && !/^postgres(ql)?:\/\//.test(v)) throw new ConfigError(name, 'must be a postgres:// or postgresql:// URL');
  return v;
}

function wholeNumber(name: string, v: string, min: number, max: number): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < min || n > max) throw new ConfigError(name, `must be a whole number from ${min} to ${max} (got "${v}")`);
  return n;
}

/** DB_POOL_MAX wins over the URL's own `?max=`; both are checked (the driver would take "50" as one connection). */
function poolMax(env: string | undefined, databaseUrl: string | undefined): number | undefined {
  if (env !== undefined) return wholeNumber('DB_POOL_MAX', env, 1, 1000);
  let fromUrl: string | null = null;
  try {
    fromUrl = databaseUrl === undefined ? null : new URL(databaseUrl).searchParams.get('max');
  } catch {
    throw new ConfigError('DATABASE_URL', 'is not a valid URL');
  }
  if (fromUrl === null) return undefined;
  if (!/^\d+$/.test(fromUrl) || Number(fromUrl) < 1 || Number(fromUrl) > 1000) {
    throw new ConfigError('DATABASE_URL', `max must be a whole number from 1 to 1000 (got "${fromUrl}")`);
  }
  return Number(fromUrl);
}

function oneOf<T extends string>(name: string, v: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(v)) {
    throw new ConfigError(name, `must be one of ${allowed.join(', ')} (got "${v}")`);
  }
  return v as T;
}

function isHttpUrl(v: string): boolean {
  try {
    return /^https?:$/.test(new URL(v).protocol);
  } catch {
    return false;
  }
}

function audiences(name: string, v: string | undefined): string[] | undefined {
  if (v === undefined) return undefined;
  const list = v
    .split(',')
    .map((a) => a.trim())
    .filter((a) => a !== '');
  if (list.length === 0) throw new ConfigError(name, 'must list at least one audience (comma-separated)');
  return list;
}

function seconds(name: string, v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n > 3600) {
    throw new ConfigError(name, `must be a whole number of seconds from 0 to 3600 (got "${v}")`);
  }
  return n;
}

function days(name: string, v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < 1 || n > 3650) {
    throw new ConfigError(name, `must be a whole number of days from 1 to 3650 (got "${v}")`);
  }
  return n;
}

function milliseconds(name: string, v: string, min: number, max: number): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < min || n > max) {
    throw new ConfigError(name, `must be a whole number of milliseconds from ${min} to ${max} (got "${v}")`);
  }
  return n;
}

function portNumber(name: string, v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < 0 || n > 65535) {
    throw new ConfigError(name, `must be a port number from 0 to 65535 (got "${v}")`);
  }
  return n;
}

function origins(name: string, v: string): string[] {
  return v
    .split(',')
    .map((o) => o.trim())
    .filter((o) => o !== '')
    .map((o) => {
      let url: URL | undefined;
      try {
        url = new URL(o);
      } catch {
        url = undefined;
      }
      // A wildcard cannot be combined with credentials, so only exact origins are allowed.
      if (url === undefined || !/^https?:$/.test(url.protocol) || url.origin !== o.replace(/\/$/, '')) {
        throw new ConfigError(name, `must be a comma-separated list of origins like https://app.example.com (got "${o}")`);
      }
      return url.origin;
    });
}
