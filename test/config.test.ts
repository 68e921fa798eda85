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
  t.same(loadConfig({ ENVIRONMENT: 'production', SECRET_KEY: SECRET }).corsOrigins, []);
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
  t.ok(loadConfig({ ENVIRONMENT: 'production', JWKS_URL: 'https://auth.example/jwks' }), 'JWKS alone is enough in production');
});
