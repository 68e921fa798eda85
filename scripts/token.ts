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

/**
 * `npm run token --sub alice` (without `--`) hands --sub to npm, not to this script:
 * npm sets npm_config_sub and passes "alice" on alone. Say so instead of failing oddly.
 */
function optionsTakenByNpm(env: NodeJS.ProcessEnv, argv: string[]): string | undefined {
  // --sub is always needed, and npm has no option of that name: its presence is the sign.
  if (env.npm_config_sub === undefined) return undefined;
  const taken = ['sub', 'email', 'ttl'].filter((o) => env[`npm_config_${o}`] !== undefined);
  const positional = [...argv];
  const args = taken.flatMap((o) => {
    const v = env[`npm_config_${o}`];
    return [`--${o}`, v === 'true' || v === '' ? (positional.shift() ?? '<value>') : (v ?? '')];
  });
  return (
    `npm took ${taken.map((o) => `--${o}`).join(', ')} for itself: options after "npm run token" go to npm unless a "--" comes first.\n` +
    `Run: npm run token -- ${args.join(' ')}`
  );
}

try {
  const npmTookThem = optionsTakenByNpm(process.env, process.argv.slice(2));
  if (npmTookThem !== undefined) throw new Error(npmTookThem);
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
