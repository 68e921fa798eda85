import t from 'tap';
import { build, rawSender, token, type Test } from '../helper.ts';
import { memoryLogger, settle } from '../log-capture.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

async function setup(t: Test) {
  const log = memoryLogger();
  const built = await build(t, { loggerInstance: log.logger });
  return { ...built, log };
}

t.test('every response carries a generated X-Request-Id', async (t) => {
  const { api } = await setup(t);
  const task = await api.createTask('alice');
  const responses = {
    '200 health': await api.get('/health'),
    '200 list': await api.get('/api/tasks', { as: 'alice' }),
    '204 delete': await api.delete(`/api/tasks/${task.id}`, { as: 'alice' }),
    '400 validation': await api.post('/api/tasks', { as: 'alice', payload: {} }),
    '400 malformed JSON': await api.post('/api/tasks', { as: 'alice', headers: { 'content-type': 'application/json' }, payload: '{' }),
    '400 bad percent-encoding': await api.get('/api/tasks/%E0%A4%A', { as: 'alice' }),
    '401': await api.get('/api/tasks'),
    '403': await api.get(`/api/tasks/${(await api.createTask('bob')).id}`, { as: 'alice' }),
    '404 task': await api.get(`/api/tasks/${task.id}`, { as: 'alice' }),
    '404 route': await api.get('/nowhere'),
    '405': await api.request('PATCH', '/api/tasks', { as: 'alice' }),
    '413': await api.post('/api/tasks', { as: 'alice', headers: { 'content-type': 'application/json' }, payload: 'x'.repeat(70_000) }),
    '415': await api.post('/api/tasks', { as: 'alice', headers: { 'content-type': 'text/plain' }, payload: 'x' }),
  };
  const ids = new Set<unknown>();
  for (const [name, res] of Object.entries(responses)) {
    t.match(res.headers['x-request-id'], UUID, `${name}: a generated id`);
    ids.add(res.headers['x-request-id']);
  }
  t.equal(ids.size, Object.keys(responses).length, 'each request has its own');
});

t.test("a client's usable X-Request-Id is reused; anything else is replaced", async (t) => {
  const { api } = await setup(t);
  for (const id of ['abc.DEF_123-x', 'a', 'x'.repeat(128), '0f8fad5b-d9cb-469f-a165-70867728950e']) {
    const res = await api.get('/api/tasks', { as: 'alice', headers: { 'x-request-id': id } });
    t.equal(res.headers['x-request-id'], id, `"${id.slice(0, 20)}" is reused`);
  }
  for (const id of ['', 'x'.repeat(129), 'has space', 'a/b', 'ünïcode', 'a,b', '<script>']) {
    const res = await api.get('/api/tasks', { as: 'alice', headers: { 'x-request-id': id } });
    t.match(res.headers['x-request-id'], UUID, `"${id.slice(0, 20)}" is replaced by a generated id`);
  }
});

t.test('every log line of a request carries its id', async (t) => {
  const { api, log } = await setup(t);
  const res = await api.get('/api/tasks', { token: token('alice', { expiresIn: -60 }), headers: { 'x-request-id': 'trace-42' } });
  await settle();
  t.equal(res.statusCode, 401);
  const lines = log.parsed();
  t.ok(lines.length >= 2, 'a warning and the request line');
  t.same(lines.map((line) => line.reqId), lines.map(() => 'trace-42'), 'all of them with the client id');
});

t.test('requests the HTTP parser refuses get an id too, in the response and the log', async (t) => {
  const { app, log } = await setup(t);
  const raw = await rawSender(app);
  for (const [name, request, status] of [
    ['headers over the limit', `GET /api/tasks HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 431],
    ['not HTTP', 'NOT A REQUEST\r\n\r\n', 400],
  ] as const) {
    log.clear();
    const answer = await raw(request);
    t.match(answer, new RegExp(`^HTTP/1\\.1 ${status} `), `${name}: ${status}`);
    const id = /\r\nX-Request-Id: ([^\r]+)\r\n/i.exec(answer)?.[1];
    t.match(id, UUID, `${name}: the response has an id`);
    const line = log.parsed().find((l) => l.msg === 'request refused by the HTTP parser');
    t.equal(line?.reqId, id, `${name}: the log line has the same id`);
  }
});
