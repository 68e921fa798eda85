/**
 * The contract in Postman, run headless: Portman turns openapi.yaml into a
 * Postman collection (scripts/postman/portman-config.json: contract tests on every
 * operation, the created task's id chained through getTask/replaceTask/
 * updateTask/moveTask/deleteTask, and variations on every operation: its errors,
 * and for 1.2.0 a client-chosen id (replay, 409), moves before/after/to, the
 * list's sort, filters and search, counts with today), then Newman runs it
 * against the real app over HTTP with a real token.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { PUBLIC_OPERATIONS } from '../../src/contract/handlers.ts';
import { HTTP_METHODS, SPEC_PATH, operationAt } from '../../src/contract/spec.ts';
import { STREAMING_OPERATIONS } from '../../src/contract/handlers.ts';
import { contractProblems, spec, templateFor } from '../contract.ts';
import { build, token } from '../helper.ts';
import { failuresOf, runNewman } from '../../scripts/postman/newman.ts';
import { PORTMAN_CONFIG, generateCollection } from '../../scripts/postman/portman.ts';

/** Every operation of openapi.yaml but the streams (a Postman request waits for a response's end): operationId, method and path template. */
const operations = Object.keys(spec.paths).flatMap((path) =>
  HTTP_METHODS.flatMap((method) => {
    const op = operationAt(spec, path, method);
    if (!op || (STREAMING_OPERATIONS as readonly string[]).includes(op.operationId)) return [];
    return [{ operationId: op.operationId, method: method.toUpperCase(), path }];
  }),
);

/** The requests the config's variations add: one per variation per targeted operation, by expected status. */
interface VariationTest {
  openApiOperationId?: string;
  openApiOperationIds?: string[];
  openApiOperation?: string;
  variations: Array<{ name: string; openApiResponse?: string }>;
}
interface PortmanConfig {
  tests: { variationTests: VariationTest[] };
}
async function configuredVariations(): Promise<Array<{ operationId: string; name: string; status: number }>> {
  const config = JSON.parse(await readFile(PORTMAN_CONFIG, 'utf8')) as PortmanConfig;
  return config.tests.variationTests.flatMap((vt) => {
    if (vt.openApiOperation !== undefined) throw new Error('count variations by operationId: use openApiOperationId(s) in portman-config.json');
    const targets = vt.openApiOperationIds ?? (vt.openApiOperationId !== undefined ? [vt.openApiOperationId] : []);
    return targets.flatMap((operationId) =>
      vt.variations.map((v) => ({ operationId, name: v.name, status: Number(v.openApiResponse ?? 200) })),
    );
  });
}

t.test('Portman generates the collection from openapi.yaml and Newman runs it green against the app', async (t) => {
  t.setTimeout(60_000);
  const started = Date.now();
  const { app } = await build(t);
  await app.listen({ port: 0, host: '127.0.0.1' });
  const baseUrl = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  const workDir = await mkdtemp(join(tmpdir(), 'todo-api-postman-'));
  t.teardown(() => rm(workDir, { recursive: true, force: true }));

  const { collection, log } = await generateCollection({ spec: SPEC_PATH, baseUrl, workDir, timeoutMs: 40_000 });
  t.comment(`portman: ${Date.now() - started} ms`);
  const variable = (key: string) => collection.variable?.find((v) => v.key === key)?.value;
  t.equal(variable('baseUrl'), baseUrl, '--baseUrl is the collection variable baseUrl');
  t.same(
    collection.auth,
    { type: 'bearer', bearer: [{ type: 'any', key: 'token', value: '{{bearerToken}}' }] },
    'the collection authenticates with the {{bearerToken}} variable',
  );
  t.equal(variable('bearerToken'), '', 'the collection carries no token: it is given at run time');
  t.match(log, /Set variable for "createTask" - use \{\{taskId\}\}/, 'createTask assigns {{taskId}}');

  const summary = await runNewman({
    collection,
    envVar: [
      { key: 'bearerToken', value: token('postman-user') },
      { key: 'otherBearerToken', value: token('postman-other-user') },
    ],
    reporters: [],
    ignoreRedirects: true,
    timeout: 45_000,
    timeoutRequest: 10_000,
  });
  const { stats, executions, failures } = summary.run;
  t.comment(
    `newman: ${stats.requests.total} requests, ${stats.assertions.total} assertions, ${stats.assertions.failed} failed, ` +
      `in ${summary.run.timings.completed - summary.run.timings.started} ms`,
  );

  t.equal(summary.error, undefined, 'the run finished');
  t.equal(stats.iterations.total, 1, 'one iteration');
  // Readable on failure: which request, which check, and what the server answered.
  t.same(failuresOf(summary), [], 'no failed assertions, script errors or request errors');
  t.same(
    failures.map((f) => `${f.source?.name ?? '?'}: ${f.error.test ?? f.error.name}: ${f.error.message}`),
    [],
    'newman reports no failures',
  );
  t.equal(stats.assertions.failed, 0, 'zero failed assertions');
  t.equal(stats.testScripts.failed, 0, 'no test script threw');

  const variations = await configuredVariations();
  const errorVariations = variations.filter((v) => v.status >= 400);
  t.equal(
    executions.length,
    operations.length + variations.length,
    `one request per operation (${operations.length}) and per configured variation (${variations.length})`,
  );
  t.ok(executions.length >= operations.length + errorVariations.length, 'at least operations + error variations ran');

  // Which operation each request exercised, by its method and path; and what it got back.
  const ran = executions.map((e) => {
    const url = e.request.url.getPathWithQuery();
    const path = templateFor(url);
    const op = operations.find((o) => o.method === e.request.method && o.path === path);
    return { e, url, operationId: op?.operationId, status: e.response?.code };
  });
  t.same(
    ran.filter((r) => r.operationId === undefined).map((r) => `${r.e.request.method} ${r.url}`),
    [],
    'every request is an operation of openapi.yaml',
  );
  for (const { operationId } of operations) {
    const mine = ran.filter((r) => r.operationId === operationId);
    t.ok(mine.some((r) => r.status !== undefined && r.status < 300), `${operationId} ran and succeeded`);
    const expected = errorVariations.filter((v) => v.operationId === operationId).map((v) => v.status);
    const got = mine.filter((r) => r.status !== undefined && r.status >= 400).map((r) => r.status);
    t.same(got.sort((a, b) => (a ?? 0) - (b ?? 0)), expected.sort((a, b) => a - b), `${operationId}: the error responses of its variations (${expected.join(', ') || 'none'})`);
    if (!(PUBLIC_OPERATIONS as readonly string[]).includes(operationId)) t.ok(expected.length > 0, `${operationId} has at least one error variation`);
  }

  // Each request was checked by Portman's tests, and each response conforms by this project's own checker too.
  for (const { e, url } of ran) {
    const names = (e.assertions ?? []).filter((a) => !a.skipped).map((a) => a.assertion);
    const body = e.response?.text() ?? '';
    t.ok(names.some((n) => /Response status code is \d{3}$/.test(n)), `${e.item.name}: status code asserted`);
    if (body !== '') {
      t.ok(names.some((n) => / - Schema is valid$/.test(n)), `${e.item.name}: body schema asserted`);
      t.ok(names.some((n) => / - Content-Type is application\/json$/.test(n)), `${e.item.name}: content type asserted`);
    }
    const problems = contractProblems({
      method: e.request.method,
      url,
      statusCode: e.response?.code ?? 0,
      headers: Object.fromEntries((e.response?.headers.all() ?? []).map((h) => [h.key.toLowerCase(), h.value])),
      body,
    });
    t.same(problems, [], `${e.item.name}: ${e.request.method} ${url} -> ${e.response?.code} conforms to openapi.yaml`);
  }

  // The flow: createTask first, its id used by the five {id} operations, deleteTask after the others.
  const succeeded = (id: string) => ran.findIndex((r) => r.operationId === id && r.status !== undefined && r.status < 300);
  t.equal(ran[0]?.operationId, 'createTask', 'createTask runs first');
  const created = JSON.parse(ran[succeeded('createTask')]?.e.response?.text() ?? '{}') as { id?: string };
  for (const id of ['getTask', 'replaceTask', 'updateTask', 'deleteTask']) {
    t.equal(ran[succeeded(id)]?.url, `/api/tasks/${created.id}`, `${id} works on the task createTask made ({{taskId}})`);
  }
  t.equal(ran[succeeded('moveTask')]?.url, `/api/tasks/${created.id}/move`, 'moveTask works on the task createTask made ({{taskId}})');
  t.ok(
    ['listTasks', 'getTask', 'replaceTask', 'updateTask', 'moveTask'].every((id) => succeeded(id) > 0 && succeeded(id) < succeeded('deleteTask')),
    'deleteTask runs after the other task operations',
  );

  // 1.2.0 through Postman: what the variations found (each also checked its content in Newman).
  const variation = (name: string) => ran.find((r) => r.e.item.name.endsWith(`[${name}]`));
  const bodyOf = (name: string) => JSON.parse(variation(name)?.e.response?.text() ?? '{}') as Record<string, any>;
  const own = bodyOf('with notes, a due date and an id of its own');
  const sent = JSON.parse((variation('with notes, a due date and an id of its own')?.e.request as any)?.body?.raw ?? '{}') as { id?: string };
  t.match(own, { notes: '2 litres, semi-skimmed.', due_date: '2026-01-07' }, 'a create with notes and a due date');
  t.equal(own.id, sent.id, 'the id the client chose');
  t.same(bodyOf('the same id and fields again replay the first 201'), own, 'the same id again: the first 201 replayed');
  t.equal(bodyOf('the same id with another title is a 409').error?.code, 'ID_CONFLICT');
  const neighbour = bodyOf('a second task, with notes');
  t.same(
    bodyOf('sort=position: the manual order').items?.map((x: { id: string }) => x.id),
    [own.id, neighbour.id],
    'after the moves, the task is just before its neighbour at the top',
  );
  t.ok(
    ran.filter((r) => r.operationId === 'moveTask' && r.status === 200).length >= 4,
    'moves with to: top, after, to: bottom and before answered 200',
  );
  t.comment(`total: ${Date.now() - started} ms`);
});
