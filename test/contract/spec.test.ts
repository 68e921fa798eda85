import { readFileSync } from 'node:fs';
import t from 'tap';
import { parse } from 'yaml';
import { PUBLIC_OPERATIONS, STREAMING_OPERATIONS } from '../../src/contract/handlers.ts';
import { createHealthHandlers } from '../../src/health/handlers.ts';
import { createServiceHandlers } from '../../src/service/handlers.ts';
import { createSyncHandlers } from '../../src/sync/handlers.ts';
import { createTaskHandlers } from '../../src/tasks/handlers.ts';
import { spec } from '../contract.ts';
import { build, databaseUrl } from '../helper.ts';
import postgres from 'postgres';

type Operation = {
  operationId: string;
  summary?: string;
  description?: string;
  tags?: string[];
  security?: unknown[];
  requestBody?: { content: Record<string, { examples?: object }> };
  responses: Record<string, { $ref?: string; content?: Record<string, { examples?: object }> }>;
};

const operations: Array<[string, string, Operation]> = Object.entries(spec.paths).flatMap(([path, item]) =>
  Object.entries(item ?? {})
    .filter(([method]) => ['get', 'post', 'put', 'patch', 'delete'].includes(method))
    .map(([method, op]) => [path, method, op as Operation] as [string, string, Operation]),
);

t.test('every operation is documented for client generators', async (t) => {
  for (const [path, method, op] of operations) {
    const name = `${method.toUpperCase()} ${path}`;
    t.match(op.operationId, /^[a-z]+[A-Za-z]*$/, `${name}: camelCase operationId`);
    t.ok(op.summary && op.description, `${name}: summary and description`);
    t.ok(op.tags?.length, `${name}: tagged`);
    for (const [status, response] of Object.entries(op.responses)) {
      const resolved = response.$ref ? spec.components.responses?.[response.$ref.split('/').pop()!] as Operation['responses'][string] : response;
      // Every media type the response has (JSON, or an event stream) shows an example.
      for (const [type, media] of Object.entries(resolved?.content ?? {})) t.ok(media.examples, `${name} ${status} ${type}: has an example`);
    }
    if (op.requestBody) t.ok(op.requestBody.content['application/json']?.examples, `${name}: request example`);
  }
});

t.test('every protected operation documents its errors', async (t) => {
  for (const [path, method, op] of operations) {
    if (PUBLIC_OPERATIONS.includes(op.operationId as never)) continue;
    const name = `${method.toUpperCase()} ${path}`;
    const expected = ['400', '401', '500', '503'];
    if (path.includes('{id}')) expected.push('403', '404');
    if (op.requestBody) expected.push('413', '415');
    for (const status of expected) t.ok(op.responses[status], `${name} documents ${status}`);
  }
});

t.test('the handler map covers exactly the contract\'s operations', async (t) => {
  const sql = postgres(databaseUrl(), { max: 1 });
  t.teardown(() => sql.end());
  const handlers = {
    ...createServiceHandlers('1.0.0'),
    ...createHealthHandlers(sql),
    ...createTaskHandlers(sql),
    ...createSyncHandlers(sql, { retentionDays: 30 }),
  };
  t.same([...Object.keys(handlers), ...STREAMING_OPERATIONS].sort(), operations.map(([, , op]) => op.operationId).sort());
});

t.test('the server publishes the contract as written, and an API reference', async (t) => {
  const { app } = await build(t);
  const file = readFileSync(new URL('../../openapi.yaml', import.meta.url), 'utf8');

  const yaml = await app.inject({ method: 'GET', url: '/openapi.yaml' });
  t.equal(yaml.statusCode, 200);
  t.match(yaml.headers['content-type'], /yaml/);
  t.equal(yaml.body, file);

  const json = await app.inject({ method: 'GET', url: '/openapi.json' });
  t.equal(json.statusCode, 200);
  t.same(json.json(), parse(file));

  const docs = await app.inject({ method: 'GET', url: '/docs' });
  const page = docs.statusCode === 302 ? await app.inject({ method: 'GET', url: String(docs.headers.location) }) : docs;
  t.equal(page.statusCode, 200);
  t.match(page.headers['content-type'], /text\/html/);
  t.match(page.body, /swagger-ui/i);
});

t.test('every schema has a description and an example that validates', async (t) => {
  const { Ajv2020 } = await import('ajv/dist/2020.js');
  const addFormats = (await import('ajv-formats')).default;
  const ajv = new Ajv2020({ strict: false });
  addFormats.default(ajv);
  ajv.addSchema(spec as object, 'spec');
  for (const [name, schema] of Object.entries(spec.components.schemas ?? {}) as Array<[string, { description?: string; examples?: unknown[]; properties?: Record<string, { description?: string; $ref?: string }> }]>) {
    t.ok(schema.description, `${name}: description`);
    t.ok(schema.examples?.length, `${name}: examples`);
    const validate = ajv.getSchema(`spec#/components/schemas/${name}`);
    for (const example of schema.examples ?? []) t.ok(validate?.(example), `${name}: example ${JSON.stringify(example).slice(0, 60)} is valid`);
    for (const [prop, def] of Object.entries(schema.properties ?? {})) {
      t.ok(def.description || def.$ref, `${name}.${prop}: described`);
    }
  }
});
