/**
 * `npm run test:contract -- --base-url <URL>` against a server that is already running
 * (the real app over real HTTP, as a team's staging server would be), and
 * `npm run postman:export`. A wrong token must make the run fail, non-zero.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { SECRET, build, token, type Test } from '../helper.ts';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
t.setTimeout(400_000);

function run(script: string, args: string[], env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  // Only what the command needs: no TODO_API_* of the caller leaks in.
  const base = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', NO_COLOR: '1' };
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], { cwd: ROOT, env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('close', (code) => resolve({ code, out }));
  });
}

async function liveServer(t: Test): Promise<string> {
  const { app } = await build(t);
  await app.listen({ port: 0, host: '127.0.0.1' });
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
}

t.test('--base-url with TODO_API_SECRET: both users minted, the suite passes, exit 0', async (t) => {
  const baseUrl = await liveServer(t);
  const { code, out } = await run('scripts/test-contract.ts', ['--base-url', baseUrl], { TODO_API_SECRET: SECRET });
  t.equal(code, 0, 'exit 0', { output: code === 0 ? '(passed)' : out });
  t.match(out, new RegExp(`test:contract: ${baseUrl}: \\d+ requests, \\d+ assertions, 0 failed: the server conforms to openapi.yaml`));
  t.match(out, /another user's task is a 403/, "the second user's checks ran");
  t.notMatch(out, /skipped/);
});

t.test('--base-url with a token the server does not accept: failures listed, exit 1', async (t) => {
  const baseUrl = await liveServer(t);
  const wrong = token('someone', { secret: 'a-different-secret-that-is-at-least-32-chars' });
  const { code, out } = await run('scripts/test-contract.ts', ['--base-url', baseUrl], { TODO_API_TOKEN: wrong, TODO_API_OTHER_TOKEN: wrong });
  t.equal(code, 1, 'non-zero', { output: code === 1 ? '(failed as expected)' : out });
  t.match(out, /FAILED .*Response status code is 201.*\(got 401: \{"error":\{"code":"INVALID_TOKEN"/, 'which check failed and what came back');
  t.match(out, /test:contract: .*, [1-9]\d* failed$/m);
});

t.test('--base-url with TODO_API_TOKEN alone: the second-user checks are skipped, the rest passes', async (t) => {
  const baseUrl = await liveServer(t);
  const { code, out } = await run('scripts/test-contract.ts', ['--base-url', baseUrl], { TODO_API_TOKEN: token('contract-solo') });
  t.equal(code, 0, 'exit 0', { output: code === 0 ? '(passed)' : out });
  t.match(out, /skipped \(needs TODO_API_OTHER_TOKEN\): .*another user/);
  t.match(out, /0 failed: the server conforms/);
});

t.test('without a token or secret: a clear refusal, non-zero', async (t) => {
  const { code, out } = await run('scripts/test-contract.ts', ['--base-url', 'http://127.0.0.1:9'], {});
  t.equal(code, 2);
  t.match(out, /set TODO_API_TOKEN \(a bearer token\) or TODO_API_SECRET/);
});

t.test('npm run postman:export writes an importable collection with its tests and no token', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'todo-api-export-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'collection.json');
  const { code, out } = await run('scripts/postman-export.ts', ['--base-url', 'https://staging.example.com', '--out', file], {});
  t.equal(code, 0, 'exit 0', { output: code === 0 ? '(passed)' : out });
  const text = await readFile(file, 'utf8');
  const collection = JSON.parse(text) as { info: { schema: string }; variable: Array<{ key: string; value: string }>; item: any[] };
  t.match(collection.info.schema, /collection\/v2\.1\.0/, 'Postman collection format v2.1');
  t.same(
    Object.fromEntries(collection.variable.map((v) => [v.key, v.value])),
    { baseUrl: 'https://staging.example.com', bearerToken: '', otherBearerToken: '' },
    'the base URL given; the tokens left to the user',
  );
  const requests = (items: any[]): any[] => items.flatMap((i) => (i.item ? requests(i.item) : [i]));
  const all = requests(collection.item);
  t.ok(all.length >= 7, `${all.length} requests`);
  t.ok(
    all.every((r) => (r.event ?? []).some((e: any) => e.listen === 'test' && e.script.exec.join('\n').includes('pm.test'))),
    'every request carries its contract tests',
  );
  t.notMatch(text, /eyJ[\w-]+\.eyJ/, 'no token inside');
  t.match(out, new RegExp(`${all.length} requests for https://staging.example.com written to ${file}`));
});
