/**
 * Prints a bearer token signed with the configured secret (SECRET_KEY, or the
 * development secret `npm start` made), for curl and for /docs.
 *
 *   npm run token -- --sub alice [--email alice@example.com] [--ttl 1h]
 */
import { createSigner } from 'fast-jwt';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../src/config.ts';
import { developmentSecret } from '../src/dev/secret.ts';

const USAGE = 'usage: npm run token -- --sub <user id> [--email <email>] [--ttl <30s|15m|1h|7d>]';

function seconds(ttl: string): number {
  const match = /^(\d+)([smhd]?)$/.exec(ttl);
  if (!match?.[1]) throw new Error(`--ttl must look like 30s, 15m, 1h or 7d (got "${ttl}")`);
  const unit = { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[match[2] ?? ''] ?? 1;
  return Number(match[1]) * unit;
}

try {
  const { values } = parseArgs({
    options: {
      sub: { type: 'string' },
      email: { type: 'string' },
      ttl: { type: 'string', default: '1h' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  if (!values.sub) throw new Error(`--sub is required\n${USAGE}`);
  const config = loadConfig();
  if (config.secretKey === undefined && config.jwksUrl !== undefined) {
    throw new Error('SECRET_KEY is not set (tokens come from the JWKS issuer, e.g. Better Auth\'s /api/auth/token)');
  }
  const secret = config.secretKey ?? developmentSecret(config.dataDir).secret;
  const sign = createSigner({ key: secret, algorithm: 'HS256', expiresIn: seconds(values.ttl) * 1000 });
  console.log(
    sign({
      sub: values.sub,
      ...(values.email !== undefined && { email: values.email }),
      // Match what the server is configured to require.
      ...(config.issuer !== undefined && { iss: config.issuer }),
      ...(config.audience?.[0] !== undefined && { aud: config.audience[0] }),
    }),
  );
} catch (err) {
  const message = err instanceof ConfigError ? `invalid configuration: ${err.message}` : err instanceof Error ? err.message : String(err);
  console.error(`token: ${message}`);
  process.exit(1);
}
