/**
 * The README says what the code does: its design tree names every folder, and its
 * stream recipe for teams without the client package runs as written (extracted from
 * README.md, its base URL pointed at a live app).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { transform } from 'esbuild';
import t from 'tap';
import { build, token } from './helper.ts';

type ChangePage = { changes: Array<{ type: string; task?: { title: string } }>; next_since: string; has_more: boolean };
type Recipe = (token: string, since?: string, signal?: AbortSignal) => AsyncGenerator<ChangePage>;

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

t.test("the design tree names every folder of src/ and of the project's top level", async (t) => {
  const tree = /## Design[\s\S]*?```\n([\s\S]*?)```/.exec(readme)?.[1] ?? '';
  t.ok(tree.length > 0, 'README.md has a design tree');
  // The folders git keeps (not build output, caches or node_modules).
  const files = execFileSync('git', ['ls-files'], { cwd: fileURLToPath(new URL('..', import.meta.url)), encoding: 'utf8' }).split('\n');
  const folders = new Set(files.flatMap((f) => {
    const parts = f.split('/');
    return parts.length > 2 && parts[0] === 'src' ? [`src/${parts[1]}/`] : parts.length > 1 && !parts[0]?.startsWith('.') ? [`${parts[0]}/`] : [];
  }));
  t.ok(folders.has('src/sync/'), 'src/sync/ is among the folders checked');
  for (const folder of folders) t.match(tree, new RegExp(`^${folder}`, 'm'), folder);
});

t.test("the README's version-bearing lines name the versions the packages have", async (t) => {
  const client = JSON.parse(readFileSync(new URL('../clients/typescript/package.json', import.meta.url), 'utf8')) as { version: string };
  const tarballs = [...readme.matchAll(/todo-api-client-(\d+\.\d+\.\d+)\.tgz/g)].map((m) => m[1]);
  t.ok(tarballs.length > 0, 'the README names the client tarball');
  for (const v of tarballs) t.equal(v, client.version, `todo-api-client-${v}.tgz is what npm pack makes`);
});

async function recipe(baseUrl: string): Promise<Recipe> {
  const block = /```ts\n(async function\* changeStream[\s\S]*?)```/.exec(readme)?.[1];
  if (!block) throw new Error('README.md has no changeStream recipe');
  const { code } = await transform(`${block.replaceAll('http://localhost:8000', baseUrl)}\nexport { changeStream };`, { loader: 'ts', format: 'esm' });
  const mod = (await import(`data:text/javascript;base64,${Buffer.from(code).toString('base64')}`)) as { changeStream: Recipe };
  return mod.changeStream;
}

t.test("the README's fetch recipe reads the stream and resumes from since", async (t) => {
  const { app, api } = await build(t);
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  const changeStream = await recipe(`http://127.0.0.1:${address.port}`);
  await api.createTask('alice', 'first');

  const stop = new AbortController();
  t.teardown(() => stop.abort());
  const full = changeStream(token('alice'), undefined, stop.signal);
  const page = (await full.next()).value as ChangePage;
  t.same(page.changes.map((c) => c.task?.title), ['first'], 'the first page is a full sync');
  await api.createTask('alice', 'second');
  const next = (await full.next()).value as ChangePage;
  t.same(next.changes.map((c) => c.task?.title), ['second'], 'a new task arrives as the next page');
  stop.abort();
  await full.return(undefined).catch(() => undefined);

  const again = new AbortController();
  t.teardown(() => again.abort());
  const resumed = changeStream(token('alice'), page.next_since, again.signal);
  t.same(((await resumed.next()).value as ChangePage).changes.map((c) => c.task?.title), ['second'], 'resumed from since: only what came after');
  again.abort();
  await resumed.return(undefined).catch(() => undefined);
  app.server.closeAllConnections();
});
