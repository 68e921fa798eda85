import t from 'tap';
import { ConfigError, loadConfig } from '../src/config.ts';

const SECRET = 'x'.repeat(32);

t.test('defaults', async (t) => {
  const c = loadConfig({});
  t.same(
    { port: c.port, host: c.host, environment: c.environment, cors: c.corsOrigins, log: c.logLevel, tolerance: c.clockToleranceS },
    {
      port: 8000,
      host: '127.0.0.1',
      environment: 'development',
      cors: ['http://localhost:3000', 'http://localhost:5173', 'http://127.0.0.1:3000', 'http://127.0.0.1:5173'],
      log: 'info',
      tolerance: 5,
    },
  );
  t.equal(c.secretKey, undefined);
  t.equal(c.databaseUrl, undefined);
});

t.test('CORS_ORIGINS unset: the local dev servers outside production, no origin in production', async (t) => {
  const dev = ['http://localhost:3000', 'http://localhost:5173', 'http://127.0.0.1:3000', 'http://127.0.0.1:5173'];
  t.same(loadConfig({ ENVIRONMENT: 'test' }).corsOrigins, dev);
  t.same(loadConfig({ ENVIRONMENT: 'production', SECRET_KEY: SECRET, DATABASE_URL: 'postgres://app@db.example/todo' }).corsOrigins, []);
  t.same(loadConfig({ CORS_ORIGINS: 'https://app.example' }).corsOrigins, ['https://app.example'], 'set: exactly what it lists');
});

t.test('each bad variable is refused by name', async (t) => {
  const cases: Array<[Record<string, string>, string]> = [
    [{ SECRET_KEY: 'short' }, 'SECRET_KEY'],
    [{ ENVIRONMENT: 'production' }, 'SECRET_KEY'],
    [{ ENVIRONMENT: 'staging' }, 'ENVIRONMENT'],
    [{ PORT: '70000' }, 'PORT'],
    [{ PORT: 'eighty' }, 'PORT'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
    [{ DATABASE_URL: 'mysql://x' }, 'DATABASE_URL'],
    [{ CORS_ORIGINS: '*' }, 'CORS_ORIGINS'],
    [{ CORS_ORIGINS: 'http://ok.example,not a url' }, 'CORS_ORIGINS'],
    [{ CORS_ORIGINS: 'http://a.example/path' }, 'CORS_ORIGINS'],
    [{ JWKS_URL: 'ftp://keys.example/jwks' }, 'JWKS_URL'],
    [{ JWKS_URL: 'http://x:99999/jwks' }, 'JWKS_URL'],
    [{ JWT_AUDIENCE: ' , ' }, 'JWT_AUDIENCE'],
    [{ JWT_CLOCK_TOLERANCE_S: '-1' }, 'JWT_CLOCK_TOLERANCE_S'],
  ];
  for (const [env, variable] of cases) {
    t.throws(() => loadConfig(env), { name: 'ConfigError', variable }, JSON.stringify(env));
  }
  t.type(new ConfigError('X', 'y'), Error);
});

t.test('valid values are parsed', async (t) => {
  const c = loadConfig({
    SECRET_KEY: SECRET,
    ENVIRONMENT: 'production',
    DATABASE_URL: 'postgres://app@db.example/todo',
    CORS_ORIGINS: 'https://a.example, https://b.example:8443/',
    JWKS_URL: 'https://auth.example/api/auth/jwks',
    JWT_ISSUER: 'https://auth.example',
    JWT_AUDIENCE: 'https://auth.example,https://other.example',
    JWT_CLOCK_TOLERANCE_S: '0',
    LOG_LEVEL: 'WARN',
    PORT: '0',
  });
  t.same(c.corsOrigins, ['https://a.example', 'https://b.example:8443']);
  t.same(c.audience, ['https://auth.example', 'https://other.example']);
  t.equal(c.clockToleranceS, 0);
  t.equal(c.logLevel, 'warn');
  t.equal(c.port, 0);
  t.ok(
    loadConfig({ ENVIRONMENT: 'production', DATABASE_URL: 'postgres://app@db.example/todo', JWKS_URL: 'https://auth.example/jwks', JWT_ISSUER: 'https://auth.example', JWT_AUDIENCE: 'https://auth.example' }),
    'JWKS with issuer and audience is enough in production',
  );
});

t.test('in production, JWKS_URL needs JWT_ISSUER and JWT_AUDIENCE', async (t) => {
  const jwks = { ENVIRONMENT: 'production', DATABASE_URL: 'postgres://app@db.example/todo', JWKS_URL: 'https://auth.example/jwks' };
  t.throws(() => loadConfig(jwks), { variable: 'JWT_ISSUER', message: /JWT_ISSUER is required with JWKS_URL when ENVIRONMENT=production/ });
  t.throws(() => loadConfig({ ...jwks, JWT_ISSUER: 'https://auth.example' }), { name: 'ConfigError', variable: 'JWT_AUDIENCE' });
  t.throws(() => loadConfig({ ...jwks, JWT_AUDIENCE: 'https://auth.example' }), { name: 'ConfigError', variable: 'JWT_ISSUER' });
  t.ok(loadConfig({ JWKS_URL: 'https://auth.example/jwks' }), 'development does not insist');
  t.ok(loadConfig({ ENVIRONMENT: 'production', DATABASE_URL: 'postgres://app@db.example/todo', SECRET_KEY: SECRET }), 'a shared secret alone is not affected');
});

t.test('rate limits, proxies and metrics', async (t) => {
  const d = loadConfig({});
  t.same(
    [d.rateLimitPerMinute, d.authFailureLimitPerMinute, d.trustProxy, d.metricsPort],
    [1200, 300, false, undefined],
    'defaults: 1200 and 300 a minute, no proxy trusted, no metrics',
  );
  const c = loadConfig({ RATE_LIMIT_PER_MINUTE: '0', AUTH_FAILURE_LIMIT_PER_MINUTE: '50', TRUST_PROXY: '10.0.0.0/8, 192.168.1.1,::1', METRICS_PORT: '9464' });
  t.same([c.rateLimitPerMinute, c.authFailureLimitPerMinute, c.trustProxy, c.metricsPort], [0, 50, ['10.0.0.0/8', '192.168.1.1', '::1'], 9464]);
  t.equal(loadConfig({ TRUST_PROXY: 'true' }).trustProxy, true);
  t.equal(loadConfig({ TRUST_PROXY: '2' }).trustProxy, 2);
  for (const [env, variable] of [
    [{ RATE_LIMIT_PER_MINUTE: '-1' }, 'RATE_LIMIT_PER_MINUTE'],
    [{ RATE_LIMIT_PER_MINUTE: 'lots' }, 'RATE_LIMIT_PER_MINUTE'],
    [{ AUTH_FAILURE_LIMIT_PER_MINUTE: '1.5' }, 'AUTH_FAILURE_LIMIT_PER_MINUTE'],
    [{ TRUST_PROXY: 'yes' }, 'TRUST_PROXY'],
    [{ TRUST_PROXY: '10.0.0.0/33' }, 'TRUST_PROXY'],
    [{ METRICS_PORT: '99999' }, 'METRICS_PORT'],
  ] as const) {
    t.throws(() => loadConfig(env), { name: 'ConfigError', variable }, JSON.stringify(env));
  }
});

// Process and deployment variables.
t.test('DB_POOL_MAX, the URL’s max, DATABASE_URL_UNPOOLED, WEB_CONCURRENCY', async (t) => {
  const url = 'postgres://app@db.example/todo';
  t.equal(loadConfig({}).dbPoolMax, undefined, 'no pool size given: the driver default');
  t.equal(loadConfig({ DATABASE_URL: `${url}?max=50` }).dbPoolMax, 50, "the URL's ?max= is honoured");
  t.equal(loadConfig({ DATABASE_URL: `${url}?max=50`, DB_POOL_MAX: '4' }).dbPoolMax, 4, 'DB_POOL_MAX wins over it');
  t.equal(loadConfig({ DATABASE_URL_UNPOOLED: url }).databaseUrlUnpooled, url);
  t.equal(loadConfig({}).webConcurrency, 1, 'one process by default');
  t.equal(loadConfig({ WEB_CONCURRENCY: '4' }).webConcurrency, 4);
  const bad: Array<[Record<string, string>, string]> = [
    [{ DB_POOL_MAX: '0' }, 'DB_POOL_MAX'],
    [{ DB_POOL_MAX: 'ten' }, 'DB_POOL_MAX'],
    [{ DATABASE_URL: `${url}?max=lots` }, 'DATABASE_URL'],
    [{ DATABASE_URL_UNPOOLED: 'mysql://x' }, 'DATABASE_URL_UNPOOLED'],
    [{ WEB_CONCURRENCY: '0' }, 'WEB_CONCURRENCY'],
    [{ WEB_CONCURRENCY: '2.5' }, 'WEB_CONCURRENCY'],
  ];
  for (const [env, variable] of bad) t.throws(() => loadConfig(env), { name: 'ConfigError', variable }, JSON.stringify(env));
  t.throws(() => loadConfig({ ENVIRONMENT: 'production', SECRET_KEY: SECRET }), { name: 'ConfigError', variable: 'DATABASE_URL' }, 'production needs DATABASE_URL');
});
