/**
 * clients/typescript (@todo-api/client) as a team gets it: packed with `npm pack`
 * (which builds it from openapi.yaml), installed from the tarball into a throwaway
 * project, a small program type-checked against it with the strictest settings, then
 * run against the real server over real HTTP. A wrong program must fail to compile.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { spec } from '../contract.ts';
import { build, token } from '../helper.ts';

const ROOT = new URL('../../', import.meta.url).pathname;
const PACKAGE_DIR = join(ROOT, 'clients', 'typescript');
const TSC = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
const exec = promisify(execFile);
t.setTimeout(400_000);

async function run(cmd: string, args: string[], cwd: string): Promise<{ code: number; out: string; stdout: string }> {
  try {
    const { stdout, stderr } = await exec(cmd, args, { cwd, maxBuffer: 10 * 1024 * 1024 });
    return { code: 0, out: stdout + stderr, stdout };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, out: `${e.stdout ?? ''}${e.stderr ?? ''}`, stdout: e.stdout ?? '' };
  }
}

const TSCONFIG = {
  compilerOptions: {
    target: 'ES2022',
    lib: ['ES2022', 'DOM', 'DOM.Iterable'],
    module: 'nodenext',
    moduleResolution: 'nodenext',
    types: [],
    strict: true,
    noUncheckedIndexedAccess: true,
    exactOptionalPropertyTypes: true,
    outDir: 'out',
  },
};

const program = (baseUrl: string, bearer: string) => `
import { createTodoClient, etagOf, TodoApiError, type Task } from '@todo-api/client';

const BASE = ${JSON.stringify(baseUrl)};
const seen: Array<{ method: string; path: string; idempotencyKey: string | null; ifMatch: string | null; etag: string | null }> = [];
const todo = createTodoClient({
  baseUrl: BASE,
  getToken: async () => ${JSON.stringify(bearer)},
  fetch: async (request) => {
    const response = await fetch(request);
    seen.push({
      method: request.method,
      path: new URL(request.url).pathname,
      idempotencyKey: request.headers.get('idempotency-key'),
      ifMatch: request.headers.get('if-match'),
      etag: response.headers.get('etag'),
    });
    return response;
  },
});

const health = await todo.health();
const created: Task[] = [];
for (let i = 0; i < 5; i++) created.push(await todo.createTask({ title: 'task ' + i }));
const titles: string[] = [];
for await (const task of todo.tasks({ limit: 2 })) titles.push(task.title);
let pages = 0;
for await (const page of todo.pages({ limit: 2 })) pages += page.items.length > 0 ? 1 : 0;

const first = created[0]!;
const fetched = await todo.getTask(first.id);
const updated = await todo.updateTask(fetched, { status: 'completed' });
const replaced = await todo.replaceTask(updated, { title: 'renamed' });
await todo.deleteTask(replaced);

let afterDelete = '';
try {
  await todo.getTask(first.id);
} catch (err) {
  if (err instanceof TodoApiError) afterDelete = err.status + ' ' + err.body.code;
}
let invalidFields: string[] = [];
try {
  await todo.createTask({ title: '' });
} catch (err) {
  // details is FieldError[] (not null) once code is VALIDATION_ERROR: the union narrows it.
  if (err instanceof TodoApiError && err.body.code === 'VALIDATION_ERROR') invalidFields = err.body.details.map((d) => d.field);
}
let anonymous = '';
try {
  await createTodoClient({ baseUrl: BASE }).listTasks();
} catch (err) {
  if (err instanceof TodoApiError) anonymous = err.status + ' ' + err.body.code;
}

console.log(JSON.stringify({
  health, titles, pages, completed: updated.status, renamed: replaced.title,
  fetchedEtag: etagOf(fetched) ?? null, afterDelete, invalidFields, anonymous, seen,
}));
`;

const wrongProgram = `
import { createTodoClient, TodoApiError } from '@todo-api/client';
const todo = createTodoClient({ baseUrl: 'http://127.0.0.1:1', token: 't' });
await todo.createTask({ titel: 'typo' });
await todo.updateTask('id', { status: 'done' });
declare const err: TodoApiError;
if (err.body.code === 'NOT_FOUND') err.body.details.map((d) => d.field);
if (err.body.code === 'NO_SUCH_CODE') console.log('never');
`;

t.test('the package version is the contract version (info.version), as is the project\'s', async (t) => {
  const pkg = JSON.parse(readFileSync(join(PACKAGE_DIR, 'package.json'), 'utf8')) as { name: string; version: string };
  const root = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  const info = spec.info as { version: string };
  t.equal(pkg.name, '@todo-api/client');
  t.equal(pkg.version, info.version, 'clients/typescript/package.json version = openapi.yaml info.version');
  t.equal(root.version, info.version, 'package.json version = openapi.yaml info.version');
});

t.test('npm pack, install the tarball elsewhere, type-check a program, run it against a live server', async (t) => {
  const work = await mkdtemp(join(tmpdir(), 'todo-api-client-'));
  t.teardown(() => rm(work, { recursive: true, force: true }));

  const packed = await run('npm', ['pack', '--pack-destination', work, '--json'], PACKAGE_DIR);
  t.equal(packed.code, 0, 'npm pack (builds from openapi.yaml first)', { output: packed.code === 0 ? '' : packed.out });
  const tarball = (await readdir(work)).find((f) => f.endsWith('.tgz'));
  t.ok(tarball, `a tarball: ${tarball}`);
  // --json's array comes after the prepack build's log lines.
  const files = (JSON.parse(packed.stdout.slice(packed.stdout.search(/^\[$/m))) as Array<{ files: Array<{ path: string }> }>)[0]!.files.map((f) => f.path);
  t.ok(files.includes('dist/index.js') && files.includes('dist/index.d.ts'), 'ESM with .d.ts');
  t.ok(files.includes('openapi.yaml'), 'the contract it was built from ships with it');
  t.notOk(files.some((f) => f.startsWith('src/')), 'no sources');

  const app = join(work, 'app');
  await mkdir(app);
  await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'throwaway', private: true, type: 'module' }));
  const installed = await run('npm', ['install', join(work, tarball!), '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'], app);
  t.equal(installed.code, 0, 'npm install <tarball>', { output: installed.out });

  await writeFile(join(app, 'tsconfig.json'), JSON.stringify({ ...TSCONFIG, include: ['program.ts'] }));
  const { app: server } = await build(t);
  await server.listen({ port: 0, host: '127.0.0.1' });
  const baseUrl = `http://127.0.0.1:${(server.server.address() as AddressInfo).port}`;
  await writeFile(join(app, 'program.ts'), program(baseUrl, token('client-package-user')));
  const compiled = await run(process.execPath, [TSC, '-p', '.'], app);
  t.equal(compiled.code, 0, 'the program type-checks against the installed package', { output: compiled.out });

  const ran = await run(process.execPath, ['out/program.js'], app);
  t.equal(ran.code, 0, 'the program ran', { output: ran.out });
  const r = JSON.parse(ran.stdout) as Record<string, any>;
  t.same(r.health, { status: 'ok', database: 'ok' });
  t.same(r.titles, ['task 4', 'task 3', 'task 2', 'task 1', 'task 0'], 'tasks() went through every page, newest first');
  t.equal(r.pages, 3, 'pages() followed next_cursor: 5 tasks by 2');
  t.equal(r.completed, 'completed');
  t.equal(r.renamed, 'renamed');
  t.equal(r.afterDelete, '404 NOT_FOUND', 'a typed error after the delete');
  t.same(r.invalidFields, ['title'], "VALIDATION_ERROR's details");
  t.equal(r.anonymous, '401 NOT_AUTHENTICATED', 'no token: 401');

  const creates = (r.seen as any[]).filter((s) => s.method === 'POST');
  t.equal(creates.length, 6);
  t.ok(creates.every((s) => /^[0-9a-f-]{36}$/.test(s.idempotencyKey)), 'every create carries an Idempotency-Key');
  t.equal(new Set(creates.map((s) => s.idempotencyKey)).size, creates.length, 'a fresh one per create');
  // If-Match carries exactly the ETag the task object came with (none when the server sends none).
  const get = (r.seen as any[]).find((s) => s.method === 'GET' && /^\/api\/tasks\/[^/]+$/.test(s.path));
  const patch = (r.seen as any[]).find((s) => s.method === 'PATCH');
  t.equal(r.fetchedEtag, get.etag, 'etagOf(task) is the ETag of the response it came in');
  t.equal(patch.ifMatch, get.etag, `PATCH sent If-Match: ${get.etag}`);
  const put = (r.seen as any[]).find((s) => s.method === 'PUT');
  t.equal(put.ifMatch, patch.etag, 'PUT sent the ETag the PATCH answered with');
  t.ok(
    (r.seen as any[]).filter((s) => s.path.startsWith('/api/')).every((s) => s.method !== 'GET' || s.ifMatch === null),
    'no If-Match on reads',
  );

  await writeFile(join(app, 'wrong.ts'), wrongProgram);
  await writeFile(join(app, 'tsconfig.wrong.json'), JSON.stringify({ ...TSCONFIG, include: ['wrong.ts'], compilerOptions: { ...TSCONFIG.compilerOptions, noEmit: true } }));
  const wrong = await run(process.execPath, [TSC, '-p', 'tsconfig.wrong.json'], app);
  t.not(wrong.code, 0, 'a program that misuses the client does not compile');
  t.match(wrong.out, /wrong\.ts\(4,.*'titel'/, 'an unknown request field');
  t.match(wrong.out, /wrong\.ts\(5,.*"done"/, 'a status the contract does not have');
  t.match(wrong.out, /wrong\.ts\(7,.*possibly 'null'/, 'details may be null outside VALIDATION_ERROR');
  t.match(wrong.out, /wrong\.ts\(8,.*NO_SUCH_CODE/, 'an error code the contract does not have');
});
