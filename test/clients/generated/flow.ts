/**
 * A short flow through clients generated from openapi.yaml (copied into the generators'
 * work directory by test/clients/generated-clients.test.ts, type-checked with tsc --strict,
 * then run against a live server): hey-api's fetch SDK, orval's fetch client and its zod
 * schemas. Prints one JSON line of what it saw; throws on anything unexpected.
 */
import { randomUUID } from 'node:crypto';
import { client } from './hey/client.gen';
import { createTask, getTask, listTasks, streamChanges, updateTask } from './hey/sdk.gen';
import { createTask as orvalCreateTask, getTask as orvalGetTask } from './orval/fetch';
import { CreateTaskBody } from './orval/zod';

const [baseUrl, token] = process.argv.slice(2);
if (!baseUrl || !token) throw new Error('usage: flow.ts BASE_URL TOKEN');
client.setConfig({ baseUrl, auth: () => token });
const check = (ok: boolean, what: string) => {
  if (!ok) throw new Error(`generated clients: ${what}`);
};

const title = '😀'.repeat(500);
check(CreateTaskBody.safeParse({ title }).success, "orval's zod schema accepts a title of 500 emoji");
check(!CreateTaskBody.safeParse({ title: '   ' }).success, "orval's zod schema refuses a blank title, as the server does");

const created = await createTask({ body: { title }, throwOnError: true });
check(created.data.title === title, 'hey-api: created with 500 emoji');
const etag = created.response.headers.get('etag');
check(etag !== null, 'hey-api: the create has an ETag');

const list = await listTasks({ query: { limit: 10 }, throwOnError: true });
check(list.data.items.some((t) => t.id === created.data.id), 'hey-api: the list has the task');

const done = await updateTask({ path: { id: created.data.id }, body: { status: 'completed' }, headers: { 'If-Match': etag ?? '' }, throwOnError: true });
check(done.data.status === 'completed' && done.data.completed_at !== null, 'hey-api: conditional PATCH');
const stale = await updateTask({ path: { id: created.data.id }, body: { title: 'late' }, headers: { 'If-Match': etag ?? '' } });
check(stale.response?.status === 412 && stale.error?.error.code === 'PRECONDITION_FAILED', 'hey-api: a stale If-Match is a typed 412');

const missing = await getTask({ path: { id: randomUUID() } });
check(missing.response?.status === 404 && missing.error?.error.code === 'NOT_FOUND', 'hey-api: a typed 404');

const stop = new AbortController();
const { stream } = await streamChanges({ query: { since: '*' }, signal: stop.signal, sseMaxRetryAttempts: 1 });
const first = await stream.next();
stop.abort();
const page = first.value as { changes: Array<{ type: string; task?: { id: string; status: string } }>; next_since: string } | undefined;
check(page?.changes.some((c) => c.task?.id === created.data.id && c.task?.status === 'completed') === true, 'hey-api SSE: the first page has the task');

const auth = { headers: { Authorization: `Bearer ${token}` } };
const viaOrval = await orvalCreateTask({ title: 'from orval' }, auth);
check(viaOrval.status === 201 && 'title' in viaOrval.data && viaOrval.data.title === 'from orval', 'orval fetch: create');
const orvalMissing = await orvalGetTask(randomUUID(), auth);
check(orvalMissing.status === 404 && 'error' in orvalMissing.data && orvalMissing.data.error.code === 'NOT_FOUND', 'orval fetch: a typed 404');

console.log(JSON.stringify({ ok: true, next_since: page?.next_since }));
