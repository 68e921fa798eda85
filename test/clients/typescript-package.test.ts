/**
 * clients/typescript (@todo-api/client) as a team gets it: packed with `npm pack`
 * (which builds it from openapi.yaml), installed from the tarball into a throwaway
 * project, a small program type-checked against it with the strictest settings, then
 * run against the real server over real HTTP. A wrong program must fail to compile.
 * Contract 1.2.0's additions go through the package too: notes, due dates and a
 * client-chosen id on create (its replay, its 409), moveTask (before, after, top,
 * bottom, If-Match, a bad neighbour), the list's sort, filters and search, and the
 * counts with `today` through the underlying openapi-fetch client.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import t from 'tap';
import { spec } from '../contract.ts';
import { build, token } from '../helper.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
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

// 1.2.0. Left of the five: task 4, 3, 2, 1 (new tasks go to the top of the manual order).
const failure = async (call: () => Promise<unknown>) => {
  try {
    await call();
    return 'no error';
  } catch (err) {
    if (!(err instanceof TodoApiError)) throw err;
    return err.status + ' ' + err.body.code + (err.body.code === 'VALIDATION_ERROR' ? ' ' + err.body.details.map((d) => d.field).join(',') : '');
  }
};
const ownId = globalThis.crypto.randomUUID();
const milkBody = { id: ownId, title: 'Buy milk', notes: '2 litres, semi-skimmed.\\nThe shop on the corner closes at 8.', due_date: '2026-01-07' };
const milk = await todo.createTask(milkBody);
const milkAgain = await todo.createTask(milkBody); // created offline, sent twice: the first 201 again
const idConflict = await failure(() => todo.createTask({ id: ownId, title: 'Buy bread' }));
const bread = await todo.createTask({ title: 'Buy bread', due_date: '2026-01-09' });
const eggs = await todo.createTask({ title: 'Eggs' });
// Manual order now: Eggs, Buy bread, Buy milk, task 4, 3, 2, 1.
const toTop = await todo.moveTask(milk, { to: 'top' }); // If-Match: the ETag milk was created with
const afterBread = await todo.moveTask(eggs, { after: bread.id });
const beforeMilk = await todo.moveTask(bread.id, { before: milk.id });
await todo.moveTask(created[4]!.id, { to: 'bottom' });
const staleMove = await failure(() => todo.moveTask(milk, { to: 'bottom' })); // milk's ETag is from before its move
const badNeighbour = await failure(() => todo.moveTask(milk.id, { before: milk.id }));

const manual: Task[] = [];
for await (const task of todo.tasks({ sort: 'position', limit: 3 })) manual.push(task);
const titlesOf = (page: { items: Task[] }) => page.items.map((task) => task.title);
const searched = titlesOf(await todo.listTasks({ q: 'SEMI-SKIMMED' }));
const searchedBuy = titlesOf(await todo.listTasks({ q: 'buy', sort: 'position' }));
const searchedPercent = titlesOf(await todo.listTasks({ q: '%' }));
const dueToday = titlesOf(await todo.listTasks({ due_before: '2026-01-08', status: 'pending', sort: 'due' }));
const withDue = titlesOf(await todo.listTasks({ has_due: true, sort: 'due' }));
const withoutDue = titlesOf(await todo.listTasks({ has_due: false, sort: 'created' }));
const dueAfter = titlesOf(await todo.listTasks({ due_after: '2026-01-08', sort: 'updated' }));
const counts = (await todo.api.GET('/api/tasks/counts', { params: { query: { today: '2026-01-09' } } })).data;
const plainCounts = (await todo.api.GET('/api/tasks/counts')).data;
const done = await todo.updateTask(await todo.getTask(eggs.id), { status: 'completed', notes: 'free range' });
const reopened = await todo.updateTask(done, { status: 'pending', due_date: '2026-01-10' });

console.log(JSON.stringify({
  health, titles, pages, completed: updated.status, renamed: replaced.title,
  fetchedEtag: etagOf(fetched) ?? null, afterDelete, invalidFields, anonymous,
  ownId, milk, milkAgain, idConflict, bread, eggs, toTop, afterBread, beforeMilk, staleMove, badNeighbour,
  movedEtag: etagOf(toTop) ?? null, manual, searched, searchedBuy, searchedPercent, dueToday, withDue, withoutDue, dueAfter,
  counts, plainCounts, done, reopened, seen,
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
await todo.moveTask('id', { before: 'a', after: 'b' });
await todo.moveTask('id', { to: 'middle' });
await todo.listTasks({ sort: 'priority' });
await todo.createTask({ title: 'x', position: 'a0' });
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

  const creates = (r.seen as any[]).filter((s) => s.method === 'POST' && s.path === '/api/tasks');
  t.equal(creates.length, 11);
  const keyed = creates.filter((s) => s.idempotencyKey !== null);
  t.equal(keyed.length, 8, 'every create without an id of its own carries an Idempotency-Key…');
  t.ok(keyed.every((s) => /^[0-9a-f-]{36}$/.test(s.idempotencyKey)), '…a UUID');
  t.equal(new Set(keyed.map((s) => s.idempotencyKey)).size, keyed.length, 'a fresh one per create');
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

  // 1.2.0: the new fields, a client-chosen id, moves, sort, filters, search and counts with today.
  const task = (x: any) => x as { id: string; title: string; notes: string; due_date: string | null; completed_at: string | null; position: string; status: string };
  const milk = task(r.milk);
  t.equal(milk.id, r.ownId, 'create with a client-chosen id: the task has it');
  t.equal(milk.notes, '2 litres, semi-skimmed.\nThe shop on the corner closes at 8.', 'notes as sent');
  t.equal(milk.due_date, '2026-01-07');
  t.equal(milk.completed_at, null);
  t.match(milk.position, /^[0-9A-Za-z]{1,64}$/, 'a position');
  t.same(r.milkAgain, r.milk, 'the same id and fields again: the first 201 replayed');
  t.equal(r.idConflict, '409 ID_CONFLICT', 'the same id with another title: 409 ID_CONFLICT, typed');
  const withId = creates.filter((s) => s.idempotencyKey === null);
  t.equal(withId.length, 3, 'a create with its own id sends no Idempotency-Key (the id is its key)');
  t.same([task(r.bread).notes, task(r.eggs).due_date], ['', null], 'notes default to "", due_date to null');

  t.equal(task(r.toTop).id, milk.id, 'moveTask answers with the moved task');
  t.ok(task(r.toTop).position < task(r.eggs).position, 'to: top: before the task that was first');
  t.ok(task(r.afterBread).position > task(r.bread).position, 'after: behind its neighbour');
  t.ok(task(r.beforeMilk).position < task(r.toTop).position, 'before: ahead of its neighbour');
  const moves = (r.seen as any[]).filter((s) => s.method === 'POST' && s.path.endsWith('/move'));
  t.equal(moves.length, 6, 'every move is POST /api/tasks/{id}/move');
  t.equal(moves[0].path, `/api/tasks/${milk.id}/move`);
  t.equal(moves[0].ifMatch, creates.find((s) => s.etag !== null && s.idempotencyKey === null)?.etag, 'a move sends If-Match: the ETag the task object came with');
  t.equal(moves[2].ifMatch, null, 'no If-Match for a task given by its id');
  t.equal(r.movedEtag, moves[0].etag, 'the moved task carries its new ETag');
  t.equal(r.staleMove, '412 PRECONDITION_FAILED', 'a move with a stale ETag: 412');
  t.equal(r.badNeighbour, '400 VALIDATION_ERROR before', 'the task itself as its own neighbour: 400 on before');

  const manual = (r.manual as any[]).map(task);
  t.same(
    manual.map((x) => x.title),
    ['Buy bread', 'Buy milk', 'Eggs', 'task 3', 'task 2', 'task 1', 'task 4'],
    'sort=position, paged by 3: the manual order after the moves',
  );
  t.ok(manual.every((x, i) => i === 0 || manual[i - 1]!.position < x.position), 'positions ascend as byte strings');
  t.same(r.searched, ['Buy milk'], 'q searches notes too, ignoring case');
  t.same(r.searchedBuy, ['Buy bread', 'Buy milk'], 'q with sort=position');
  t.same(r.searchedPercent, [], 'q is literal: % is no pattern');
  t.same(r.dueToday, ['Buy milk'], 'due_before + status + sort=due');
  t.same(r.withDue, ['Buy milk', 'Buy bread'], 'has_due=true, sort=due: earliest first');
  t.same(r.withoutDue, ['Eggs', 'task 4', 'task 3', 'task 2', 'task 1'], 'has_due=false, newest first');
  t.same(r.dueAfter, ['Buy bread'], 'due_after');
  t.same(r.counts, { pending: 7, completed: 0, total: 7, overdue: 1, due_today: 1 }, 'counts with today add overdue and due_today');
  t.same(r.plainCounts, { pending: 7, completed: 0, total: 7 }, 'counts without today: the three numbers');
  t.match(task(r.done), { status: 'completed', notes: 'free range', completed_at: /^\d{4}-\d{2}-\d{2}T/ }, 'completed_at is set on completion');
  t.match(task(r.reopened), { status: 'pending', completed_at: null, due_date: '2026-01-10' }, 'and cleared on reopening');

  await writeFile(join(app, 'wrong.ts'), wrongProgram);
  await writeFile(join(app, 'tsconfig.wrong.json'), JSON.stringify({ ...TSCONFIG, include: ['wrong.ts'], compilerOptions: { ...TSCONFIG.compilerOptions, noEmit: true } }));
  const wrong = await run(process.execPath, [TSC, '-p', 'tsconfig.wrong.json'], app);
  t.not(wrong.code, 0, 'a program that misuses the client does not compile');
  t.match(wrong.out, /wrong\.ts\(4,.*'titel'/, 'an unknown request field');
  t.match(wrong.out, /wrong\.ts\(5,.*"done"/, 'a status the contract does not have');
  t.match(wrong.out, /wrong\.ts\(7,.*possibly 'null'/, 'details may be null outside VALIDATION_ERROR');
  t.match(wrong.out, /wrong\.ts\(8,.*NO_SUCH_CODE/, 'an error code the contract does not have');
  t.match(wrong.out, /wrong\.ts\(9,\d+\): error TS2345: Argument of type '\{ before: string; after:/, 'a move takes exactly one of before, after, to');
  t.match(wrong.out, /wrong\.ts\(10,.*"middle"/, 'to is top or bottom');
  t.match(wrong.out, /wrong\.ts\(11,.*"priority"/, 'a sort the contract does not have');
  t.match(wrong.out, /wrong\.ts\(12,.*'position'/, 'position is read-only: not on create');
});
