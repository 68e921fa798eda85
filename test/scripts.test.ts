import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createVerifier } from 'fast-jwt';
import t from 'tap';
import { parse } from 'yaml';
import { readEnv } from '../src/config.ts';
import { fileURLToPath } from 'node:url';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SECRET = 'token-script-secret-token-script-secret';

function tokenScript(args: string[], env: Record<string, string>) {
  return run(process.execPath, ['--import', 'tsx', 'scripts/token.ts', ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', DATA_DIR: join(tmpdir(), 'todo-api-token-test'), ...env },
  });
}

t.test('npm run token prints a token the server accepts', async (t) => {
  const { stdout } = await tokenScript(['--sub', 'alice', '--email', 'alice@example.com', '--ttl', '15m'], { SECRET_KEY: SECRET });
  const payload = createVerifier({ key: SECRET, algorithms: ['HS256'] })(stdout.trim());
  t.equal(payload.sub, 'alice');
  t.equal(payload.email, 'alice@example.com');
  t.ok(Math.abs(payload.exp - payload.iat - 900) <= 1, 'expires in 15 minutes');
});

t.test('npm run token refuses without --sub, with one line', async (t) => {
  const failure = await tokenScript([], { SECRET_KEY: SECRET }).catch((err: { code: number; stderr: string }) => err);
  t.equal((failure as { code: number }).code, 1);
  t.match((failure as { stderr: string }).stderr, /--sub is required/);
});

t.test('npm run token --sub alice (without --) explains the --', async (t) => {
  const npm = (args: string[]) =>
    run('npm', ['run', '-s', 'token', ...args], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', DATA_DIR: join(tmpdir(), 'todo-api-token-test'), SECRET_KEY: SECRET },
    }).then(
      () => ({ code: 0, stderr: '' }),
      (err: { code: number; stderr: string }) => err,
    );
  const plain = await npm(['--sub', 'alice']);
  t.equal(plain.code, 1);
  t.match(plain.stderr, /npm took --sub for itself/);
  t.match(plain.stderr, /Run: npm run token -- --sub alice$/m, 'the command to run instead');
  const both = await npm(['--sub=alice', '--ttl', '15m']);
  t.match(both.stderr, /Run: npm run token -- --sub alice --ttl 15m$/m);
  const right = await run('npm', ['run', '-s', 'token', '--', '--sub', 'alice'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', DATA_DIR: join(tmpdir(), 'todo-api-token-test'), SECRET_KEY: SECRET },
  });
  t.equal(createVerifier({ key: SECRET, algorithms: ['HS256'] })(right.stdout.trim()).sub, 'alice', 'with -- it works');
});

t.test('a .env file is read, and the real environment wins over it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'todo-api-env-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, '.env');
  writeFileSync(file, 'PORT=9001\nLOG_LEVEL=debug\n# a comment\nCORS_ORIGINS="http://a.example"\n');
  const env = readEnv({ LOG_LEVEL: 'warn' }, file);
  t.equal(env.PORT, '9001');
  t.equal(env.CORS_ORIGINS, 'http://a.example');
  t.equal(env.LOG_LEVEL, 'warn');
  t.same(readEnv({ A: '1' }, join(dir, 'missing.env')), { A: '1' }, 'no file, no change');
});

t.test('npm test: a concise summary with failures in full by default, the whole TAP stream with --tap', async (t) => {
  t.setTimeout(180_000);
  // DATABASE_URL set: the runner starts no embedded PostgreSQL (the sample needs none).
  const runTests = (args: string[]) =>
    run(process.execPath, ['--import', 'tsx', 'scripts/test.ts', ...args, 'test/fixtures/reporter-sample.ts'], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' },
    }).then(
      ({ stdout }) => ({ code: 0, stdout }),
      (err: { code: number; stdout: string }) => ({ code: err.code, stdout: err.stdout }),
    );
  const plain = (s: string) => s.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');

  const concise = await runTests([]);
  t.equal(concise.code, 1, 'a failure exits non-zero');
  const out = plain(concise.stdout);
  t.match(out, /✖ a failing test > the failing assertion/, 'the failure, named');
  t.match(out, /-3\n\s*\+2/, 'with its diff');
  t.match(out, /Asserts:\s+1 pass\s+1 fail/, 'the summary');
  t.notMatch(out, /^\s*(not )?ok \d+ - /m, 'no TAP lines: passing assertions are not listed');

  const full = await runTests(['--tap']);
  t.equal(full.code, 1);
  t.match(full.stdout, /^\s+ok 1 - the passing assertion$/m, 'every assertion');
  t.match(full.stdout, /^# \{ total: 2, pass: 1, fail: 1 \}$/m, "tap's summary line, which .ci/run counts");
});

t.test('npm run contract:version sets one version everywhere, and --release makes it the released contract', async (t) => {
  const { cpSync, mkdirSync, readFileSync } = await import('node:fs');
  const dir = mkdtempSync(join(tmpdir(), 'todo-api-version-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  for (const file of ['openapi.yaml', 'package.json', 'package-lock.json', 'CHANGELOG.md', 'clients/typescript/package.json', 'contract/released.yaml']) {
    mkdirSync(join(dir, file, '..'), { recursive: true });
    cpSync(join(ROOT, file), join(dir, file));
  }
  const before = readFileSync(join(dir, 'openapi.yaml'), 'utf8');
  const { stdout } = await run(process.execPath, ['--import', 'tsx', 'scripts/contract-version.ts', '9.8.7', '--release', '--root', dir], { cwd: ROOT });
  t.match(stdout, /-> 9\.8\.7/);
  const after = readFileSync(join(dir, 'openapi.yaml'), 'utf8');
  t.equal((parse(after) as { info: { version: string } }).info.version, '9.8.7', 'openapi.yaml info.version');
  t.equal(after.split('\n').filter((line, i) => line !== before.split('\n')[i]).length, 1, 'one line of openapi.yaml changed');
  const json = (file: string) => JSON.parse(readFileSync(join(dir, file), 'utf8')) as { version: string; packages?: Record<string, { version?: string }> };
  t.equal(json('package.json').version, '9.8.7');
  t.equal(json('package-lock.json').version, '9.8.7');
  t.equal(json('package-lock.json').packages?.['']?.version, '9.8.7');
  t.equal(json('clients/typescript/package.json').version, '9.8.7');
  const changelog = readFileSync(join(dir, 'CHANGELOG.md'), 'utf8');
  t.match(changelog, /^## 9\.8\.7\n\n\S/m, 'a CHANGELOG.md section for the version');
  t.notMatch(changelog, /^## Unreleased/m, '(the "Unreleased" one, renamed, when there is one)');
  t.match(changelog, /^## 1\.0\.0$/m, 'the earlier ones stay');
  t.equal(readFileSync(join(dir, 'contract/released.yaml'), 'utf8'), after, 'released');

  const refused = await run(process.execPath, ['--import', 'tsx', 'scripts/contract-version.ts', 'v2', '--root', dir], { cwd: ROOT }).catch((e: { code: number; stderr: string }) => e);
  t.equal((refused as { code: number }).code, 1);
  t.match((refused as { stderr: string }).stderr, /usage: npm run contract:version -- <MAJOR\.MINOR\.PATCH>/);
});
