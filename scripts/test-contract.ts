/**
 * `npm run test:contract`: the Portman-generated contract suite (scripts/postman/), run by
 * Newman. With `--base-url` it runs against an instance that is already running (a
 * team's staging server) and exits non-zero on any failure; without, it starts its own
 * server and database, as `npm run test:postman` does.
 *
 *   npm run test:contract -- --base-url https://staging.example.com
 *
 * Tokens: TODO_API_TOKEN (a user's bearer token) and TODO_API_OTHER_TOKEN (a second
 * user's, for the "another user's task is a 403" checks, skipped without it); or
 * TODO_API_SECRET, the server's HS256 SECRET_KEY, from which both are minted (with
 * TODO_API_ISSUER / TODO_API_AUDIENCE as iss / aud when the server checks them).
 * The suite creates tasks as those users and deletes the one it follows through.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createSigner } from 'fast-jwt';
import { SPEC_PATH } from '../src/contract/spec.ts';
import { failuresOf, runNewman } from './postman/newman.ts';
import { generateCollection, type PostmanItem } from './postman/portman.ts';

const USAGE = 'usage: npm run test:contract -- [--base-url <URL>]   (tokens: TODO_API_TOKEN [+ TODO_API_OTHER_TOKEN], or TODO_API_SECRET)';

/** Two users' tokens: given, or minted from the shared secret. */
export function contractTokens(env: NodeJS.ProcessEnv): { token: string; otherToken: string | undefined } {
  const secret = env.TODO_API_SECRET;
  if (env.TODO_API_TOKEN) return { token: env.TODO_API_TOKEN, otherToken: env.TODO_API_OTHER_TOKEN || undefined };
  if (!secret) throw new Error(`set TODO_API_TOKEN (a bearer token) or TODO_API_SECRET (the server's SECRET_KEY)\n${USAGE}`);
  const sign = createSigner({ key: secret, algorithm: 'HS256', expiresIn: 15 * 60_000 });
  const run = randomBytes(4).toString('hex');
  const mint = (sub: string) =>
    sign({
      sub,
      ...(env.TODO_API_ISSUER && { iss: env.TODO_API_ISSUER }),
      ...(env.TODO_API_AUDIENCE && { aud: env.TODO_API_AUDIENCE }),
    });
  return { token: mint(`contract-test-${run}`), otherToken: mint(`contract-test-${run}-other`) };
}

/** Drops the requests that need a second user (they mention its variables); returns their names. */
function dropSecondUser(items: PostmanItem[]): string[] {
  const dropped: string[] = [];
  for (let i = items.length - 1; i >= 0; i--) {
    const item = items[i]!;
    if (item.item) dropped.push(...dropSecondUser(item.item));
    else if (/\{\{other(BearerToken|TaskId)\}\}/.test(JSON.stringify(item))) {
      dropped.push(item.name);
      items.splice(i, 1);
    }
  }
  return dropped;
}

async function againstRunningServer(baseUrl: string): Promise<number> {
  const { token, otherToken } = contractTokens(process.env);
  const workDir = await mkdtemp(join(tmpdir(), 'todo-api-contract-'));
  try {
    const { collection } = await generateCollection({ spec: SPEC_PATH, baseUrl, workDir, timeoutMs: 120_000 });
    if (otherToken === undefined) {
      for (const name of dropSecondUser(collection.item)) console.log(`skipped (needs TODO_API_OTHER_TOKEN): ${name}`);
    }
    const summary = await runNewman({
      collection,
      envVar: [
        { key: 'bearerToken', value: token },
        { key: 'otherBearerToken', value: otherToken ?? '' },
      ],
      reporters: ['cli'],
      ignoreRedirects: true,
      timeout: 300_000,
      timeoutRequest: 30_000,
    });
    const failures = failuresOf(summary);
    const { requests, assertions } = summary.run.stats;
    if (summary.error) failures.push(`the run stopped: ${summary.error.message}`);
    for (const f of failures) console.log(`FAILED ${f}`);
    console.log(
      `test:contract: ${baseUrl}: ${requests.total} requests, ${assertions.total} assertions, ${assertions.failed} failed` +
        (failures.length === 0 ? ': the server conforms to openapi.yaml' : ''),
    );
    return failures.length === 0 && assertions.failed === 0 && requests.total > 0 ? 0 : 1;
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { 'base-url': { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const baseUrl = values['base-url'];
  if (baseUrl !== undefined) {
    if (!/^https?:\/\/[^/]+/.test(baseUrl)) throw new Error(`--base-url must be an http(s) URL (got "${baseUrl}")`);
    return againstRunningServer(baseUrl.replace(/\/+$/, ''));
  }
  // No URL: the test that starts its own database and server.
  const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/test.ts', 'test/clients/postman.test.ts'], { stdio: 'inherit' });
  return new Promise((resolve) => child.on('close', (code) => resolve(code ?? 1)));
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`test:contract: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(2);
  },
);
