import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseEnv } from 'node:util';

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
}

/** A refusal to start, worded for one line on stderr. */
export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`${variable} ${message}`);
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
  if (secretKey !== undefined && secretKey.length < MIN_SECRET_LENGTH) {
    throw new ConfigError('SECRET_KEY', `must be at least ${MIN_SECRET_LENGTH} characters long`);
  }

  const databaseUrl = value('DATABASE_URL');
  if (databaseUrl !== undefined && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new ConfigError('DATABASE_URL', 'must be a postgres:// or postgresql:// URL');
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
  };
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
