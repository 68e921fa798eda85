import t from 'tap';
import { build, TASK_ID_OPERATIONS } from '../helper.ts';

const json = { 'content-type': 'application/json' };

t.test('title rules on create', async (t) => {
  const { api, sql } = await build(t);
  const cases: Array<[string, unknown, string]> = [
    ['missing', {}, 'title'],
    ['empty', { title: '' }, 'title'],
    ['only white space', { title: ' \t\n ' }, 'title'],
    ['501 characters', { title: 'x'.repeat(501) }, 'title'],
    ['501 emoji', { title: '😀'.repeat(501) }, 'title'],
    ['a number (no coercion)', { title: 123 }, 'title'],
    ['a boolean', { title: true }, 'title'],
    ['null', { title: null }, 'title'],
    ['an array', { title: ['a'] }, 'title'],
    ['an object', { title: { text: 'a' } }, 'title'],
    ['with a NUL character', { title: 'a\u0000b' }, 'title'],
  ];
  for (const [name, payload, field] of cases) {
    const res = await api.post('/api/tasks', { as: 'alice', payload: payload as object });
    t.equal(res.statusCode, 400, `${name}: 400`);
    const { error } = res.json();
    t.equal(error.code, 'VALIDATION_ERROR', `${name}: VALIDATION_ERROR`);
    t.ok(error.details.some((d: { field: string; in: string }) => d.field === field && d.in === 'body'), `${name}: details name ${field}`);
  }
  t.same([...(await sql`SELECT count(*)::int AS n FROM tasks`)], [{ n: 0 }], 'nothing was stored');
});

t.test('an unpaired surrogate in a title is a 400, not a 500 or a silent replacement', async (t) => {
  const { api } = await build(t);
  for (const escaped of ['\\ud800', 'a\\udfffb', '\\ude00\\ud83d']) {
    const res = await api.post('/api/tasks', { as: 'alice', headers: json, payload: `{"title":"${escaped}"}` });
    t.equal(res.statusCode, 400, escaped);
    t.equal(res.json().error.code, 'VALIDATION_ERROR');
  }
  const pair = await api.post('/api/tasks', { as: 'alice', headers: json, payload: '{"title":"\\ud83d\\ude00"}' });
  t.equal(pair.statusCode, 201, 'a proper surrogate pair (an emoji) is fine');
  t.equal(pair.json().title, '😀');
});

t.test('title lengths count characters as sent (as the schema says); the stored title is trimmed', async (t) => {
  const { api } = await build(t);
  const ascii = await api.createTask('alice', 'x'.repeat(500));
  t.equal(ascii.title.length, 500);
  const emoji = await api.createTask('alice', '😀'.repeat(500));
  t.equal([...emoji.title].length, 500, '500 emoji are a valid title');
  const padded = await api.createTask('alice', `   ${'y'.repeat(494)}   `);
  t.equal(padded.title, 'y'.repeat(494), 'white space around the title is trimmed');
  const over = await api.post('/api/tasks', { as: 'alice', payload: { title: ` ${'y'.repeat(500)}` } });
  t.equal(over.statusCode, 400, 'white space counts toward the 500, as every generated validator counts it');
  t.same(over.json().error.details, [{ in: 'body', field: 'title', message: 'must be at most 500 characters; got 501' }]);
  const one = await api.createTask('alice', 'z');
  t.equal(one.title, 'z');
});

t.test('notes: an unpaired surrogate is a 400 on that field, a pair is fine', async (t) => {
  const { api, sql } = await build(t);
  const notes = await api.post('/api/tasks', { as: 'alice', headers: json, payload: '{"title":"a","notes":"x\\udc00"}' });
  t.equal(notes.statusCode, 400);
  t.same(notes.json().error.details, [{ in: 'body', field: 'notes', message: 'must not contain NUL characters or unpaired surrogates' }]);
  const task = await api.createTask('alice', 'b');
  const patch = await api.request('PATCH', `/api/tasks/${task.id}`, { as: 'alice', headers: json, payload: '{"notes":"\\ud800"}' });
  t.equal(patch.statusCode, 400);
  t.equal(patch.json().error.details[0].field, 'notes');
  const paired = await api.post('/api/tasks', { as: 'alice', headers: json, payload: '{"title":"c","notes":"\\ud83d\\ude00"}' });
  t.equal(paired.statusCode, 201);
  t.equal(paired.json().notes, '😀');
  t.same([...(await sql`SELECT count(*)::int AS n FROM tasks WHERE notes <> ''`)], [{ n: 1 }], 'only the valid one was stored');
});

t.test('unknown fields are rejected, never stripped', async (t) => {
  const { api, sql } = await build(t);
  const task = await api.createTask('alice', 'mine');
  const attempts: Array<[string, string, object]> = [
    ['POST', '/api/tasks', { title: 'x', user_id: 'bob' }],
    ['POST', '/api/tasks', { title: 'x', status: 'completed' }],
    ['POST', '/api/tasks', { title: 'x', position: task.position }],
    ['PUT', `/api/tasks/${task.id}`, { title: 'x', user_id: 'bob' }],
    ['PUT', `/api/tasks/${task.id}`, { title: 'x', status: 'completed' }],
    ['PATCH', `/api/tasks/${task.id}`, { status: 'completed', user_id: 'bob' }],
    ['PATCH', `/api/tasks/${task.id}`, { created_at: '2020-01-01T00:00:00Z' }],
  ];
  for (const [method, url, payload] of attempts) {
    const res = await api.request(method, url, { as: 'alice', payload });
    t.equal(res.statusCode, 400, `${method} ${JSON.stringify(payload)}`);
    const extra = Object.keys(payload).find((k) => !['title', 'status'].includes(k) || (method !== 'PATCH' && k === 'status'));
    t.ok(res.json().error.details.some((d: { field: string }) => d.field === extra), `details name ${extra}`);
  }
  const rows = await sql`SELECT title, status, user_id FROM tasks`;
  t.same([...rows], [{ title: 'mine', status: 'pending', user_id: 'alice' }], 'stored data is unchanged');
});

t.test('PATCH needs at least one known field with a valid value', async (t) => {
  const { api, sql } = await build(t);
  const task = await api.createTask('alice', 'mine');
  for (const payload of [{}, { status: 'done' }, { status: null }, { status: 1 }, { title: '' }, { title: '  ' }, { title: 7 }]) {
    const res = await api.patch(`/api/tasks/${task.id}`, { as: 'alice', payload });
    t.equal(res.statusCode, 400, JSON.stringify(payload));
    t.equal(res.json().error.code, 'VALIDATION_ERROR');
  }
  const [row] = await sql`SELECT title, status, updated_at FROM tasks`;
  t.same({ title: row?.title, status: row?.status }, { title: 'mine', status: 'pending' });
  t.equal(row?.updated_at, task.updated_at, 'updated_at did not move');
});

t.test('a body that is not a JSON object is rejected', async (t) => {
  const { api } = await build(t);
  const task = await api.createTask('alice');
  for (const [method, url] of [
    ['POST', '/api/tasks'],
    ['PUT', `/api/tasks/${task.id}`],
    ['PATCH', `/api/tasks/${task.id}`],
  ] as const) {
    for (const body of ['[]', '"title"', '42', 'null', 'true']) {
      const res = await api.request(method, url, { as: 'alice', headers: json, payload: body });
      t.equal(res.statusCode, 400, `${method} ${body}`);
      t.equal(res.json().error.code, 'VALIDATION_ERROR', `${method} ${body}`);
    }
    const none = await api.request(method, url, { as: 'alice' });
    t.equal(none.statusCode, 400, `${method} with no body`);
    t.equal(none.json().error.code, 'VALIDATION_ERROR');
  }
});

t.test('unparsable JSON is MALFORMED_REQUEST', async (t) => {
  const { api } = await build(t);
  for (const body of ['{bad', '{"title": "a",}', '{"title"', "{'title':'a'}"]) {
    const res = await api.post('/api/tasks', { as: 'alice', headers: json, payload: body });
    t.equal(res.statusCode, 400, body);
    t.equal(res.json().error.code, 'MALFORMED_REQUEST', body);
  }
  const empty = await api.post('/api/tasks', { as: 'alice', headers: json, payload: '' });
  t.equal(empty.statusCode, 400, 'an empty JSON body where one is required');
  t.equal(empty.json().error.code, 'VALIDATION_ERROR');

  const poisoned = await api.post('/api/tasks', { as: 'alice', headers: json, payload: '{"__proto__":{"admin":true},"title":"a"}' });
  t.equal(poisoned.statusCode, 400, 'prototype poisoning is refused');
});

t.test('only application/json bodies are accepted', async (t) => {
  const { api } = await build(t);
  for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'application/xml']) {
    const res = await api.post('/api/tasks', { as: 'alice', headers: { 'content-type': type }, payload: 'title=a' });
    t.equal(res.statusCode, 415, type);
    t.equal(res.json().error.code, 'UNSUPPORTED_MEDIA_TYPE', type);
  }
  const charset = await api.post('/api/tasks', {
    as: 'alice',
    headers: { 'content-type': 'application/json; charset=utf-8' },
    payload: '{"title":"ok"}',
  });
  t.equal(charset.statusCode, 201, 'a charset parameter is fine');
});

t.test('a body over 64 KiB is PAYLOAD_TOO_LARGE', async (t) => {
  const { api, sql } = await build(t);
  const res = await api.post('/api/tasks', { as: 'alice', headers: json, payload: JSON.stringify({ title: 'x'.repeat(70_000) }) });
  t.equal(res.statusCode, 413);
  t.equal(res.json().error.code, 'PAYLOAD_TOO_LARGE');
  t.same([...(await sql`SELECT count(*)::int AS n FROM tasks`)], [{ n: 0 }]);
});

t.test('a task id that is not a UUID is a 400 on every operation', async (t) => {
  const { api } = await build(t);
  for (const id of ['abc', '123', 'urn:uuid:6f1c2a9e-3b4d-4e5f-8a9b-0c1d2e3f4a5b', '6f1c2a9e3b4d4e5f8a9b0c1d2e3f4a5b', '6f1c2a9e-3b4d-4e5f-8a9b-0c1d2e3f4a5g', "' OR 1=1 --"]) {
    for (const [method, payload] of TASK_ID_OPERATIONS) {
      const res = await api.request(method, `/api/tasks/${encodeURIComponent(id)}`, { as: 'alice', ...(payload && { payload }) });
      t.equal(res.statusCode, 400, `${method} ${id}`);
      const { error } = res.json();
      t.equal(error.code, 'VALIDATION_ERROR');
      t.same(error.details, [{ in: 'path', field: 'id', message: 'must be a UUID' }]);
    }
  }
  const upper = await api.get('/api/tasks/6F1C2A9E-3B4D-4E5F-8A9B-0C1D2E3F4A5B', { as: 'alice' });
  t.equal(upper.statusCode, 404, 'an upper-case UUID is a UUID');
});

t.test('list query parameters are validated', async (t) => {
  const { api } = await build(t);
  const bad: Array<[string, string]> = [
    ['limit=0', 'limit'],
    ['limit=101', 'limit'],
    ['limit=-1', 'limit'],
    ['limit=abc', 'limit'],
    ['limit=1.5', 'limit'],
    ['limit=', 'limit'],
    ['status=done', 'status'],
    ['status=pending&status=completed', 'status'],
    ['cursor=', 'cursor'],
    ['cursor=not-a-cursor', 'cursor'],
    ['cursor=' + Buffer.from('["x","y"]').toString('base64url'), 'cursor'],
    ['cursor=' + 'a'.repeat(201), 'cursor'],
  ];
  for (const [query, field] of bad) {
    const res = await api.get(`/api/tasks?${query}`, { as: 'alice' });
    t.equal(res.statusCode, 400, query);
    const { error } = res.json();
    t.equal(error.code, 'VALIDATION_ERROR', query);
    t.ok(error.details.some((d: { in: string; field: string }) => d.in === 'query' && d.field === field), `${query}: names ${field}`);
  }
  for (const query of ['limit=1', 'limit=100', 'status=pending', 'status=completed']) {
    t.equal((await api.get(`/api/tasks?${query}`, { as: 'alice' })).statusCode, 200, query);
  }
});

t.test('unknown query parameters are a 400 naming them, on every operation', async (t) => {
  const { api } = await build(t);
  const task = await api.createTask('alice', 'mine');
  // A typo must not silently return everything.
  const list = await api.get('/api/tasks?completed=true', { as: 'alice' });
  t.equal(list.statusCode, 400);
  t.same(list.json().error, {
    code: 'VALIDATION_ERROR',
    message: 'completed is not a known query parameter; known: status, sort, due_before, due_after, has_due, q, limit, cursor.',
    details: [{ in: 'query', field: 'completed', message: 'is not a known query parameter; known: status, sort, due_before, due_after, has_due, q, limit, cursor' }],
  });
  const mixed = await api.get('/api/tasks?limit=5&order=asc', { as: 'alice' });
  t.equal(mixed.statusCode, 400, 'known parameters do not excuse an unknown one');
  t.same(mixed.json().error.details, [{ in: 'query', field: 'order', message: 'is not a known query parameter; known: status, sort, due_before, due_after, has_due, q, limit, cursor' }], 'naming the known ones');
  for (const [method, payload] of TASK_ID_OPERATIONS) {
    const res = await api.request(method, `/api/tasks/${task.id}?force=1`, { as: 'alice', ...(payload && { payload }) });
    t.equal(res.statusCode, 400, `${method} with an unknown query parameter`);
    t.equal(res.json().error.details[0].field, 'force');
  }
  t.equal((await api.get(`/api/tasks/${task.id}`, { as: 'alice' })).json().status, 'pending', 'the PATCH did not happen');
  const docs = await api.app.inject({ method: 'GET', url: '/openapi.json?v=2' });
  t.equal(docs.statusCode, 200, 'outside the contract (the documents) a cache-busting parameter is fine');
});

t.test('messages name the field and the limit that was hit', async (t) => {
  const { api } = await build(t);
  const long = await api.post('/api/tasks', { as: 'alice', payload: { title: 'x'.repeat(501) } });
  t.equal(long.json().error.message, 'title must be at most 500 characters; got 501.');
  t.same(long.json().error.details, [{ in: 'body', field: 'title', message: 'must be at most 500 characters; got 501' }]);
  const emoji = await api.post('/api/tasks', { as: 'alice', payload: { title: '😀'.repeat(600) } });
  t.equal(emoji.json().error.message, 'title must be at most 500 characters; got 600.', 'characters, not UTF-16 units');
  const number = await api.post('/api/tasks', { as: 'alice', payload: { title: 5 } });
  t.equal(number.json().error.message, 'title must be a string; got a number.');
  const high = await api.get('/api/tasks?limit=101', { as: 'alice' });
  t.equal(high.json().error.message, 'limit must be at most 100; got 101.');
  const low = await api.get('/api/tasks?limit=0', { as: 'alice' });
  t.equal(low.json().error.message, 'limit must be at least 1; got 0.');
  const cursor = await api.get(`/api/tasks?cursor=${'a'.repeat(513)}`, { as: 'alice' });
  t.equal(cursor.json().error.message, 'cursor must be at most 512 characters; got 513.');
  const two = await api.post('/api/tasks', { as: 'alice', payload: { title: '', extra: 1 } });
  t.match(two.json().error.message, /^(title|extra) .+\. 1 more problem is listed in details\.$/);
  t.equal(two.json().error.details.length, 2);
  const big = await api.post('/api/tasks', { as: 'alice', headers: { 'content-type': 'application/json' }, payload: `{"title":"${'x'.repeat(70_000)}"}` });
  t.equal(big.statusCode, 413);
  t.equal(big.json().error.message, 'The request body is larger than the limit of 65536 bytes (64 KiB).');
});

t.test('Content-Type: application/json with no body is fine where no body is expected', async (t) => {
  const { api } = await build(t);
  const task = await api.createTask('alice');
  t.equal((await api.get('/api/tasks', { as: 'alice', headers: json })).statusCode, 200);
  t.equal((await api.delete(`/api/tasks/${task.id}`, { as: 'alice', headers: json })).statusCode, 204);
});

t.test('bodies must be UTF-8: other bytes and charsets are refused, not stored as U+FFFD', async (t) => {
  const { api, sql } = await build(t);
  const latin1 = Buffer.concat([Buffer.from('{"title":"caf'), Buffer.from([0xe9]), Buffer.from('"}')]);
  const bad = await api.post('/api/tasks', { as: 'alice', headers: json, payload: latin1 });
  t.equal(bad.statusCode, 400);
  t.equal(bad.json().error.code, 'MALFORMED_REQUEST');
  const declared = await api.post('/api/tasks', { as: 'alice', headers: { 'content-type': 'application/json; charset=iso-8859-1' }, payload: latin1 });
  t.equal(declared.statusCode, 415);
  t.equal(declared.json().error.code, 'UNSUPPORTED_MEDIA_TYPE');
  t.same([...(await sql`SELECT count(*)::int AS n FROM tasks`)], [{ n: 0 }], 'nothing stored');
  const ok = await api.post('/api/tasks', { as: 'alice', headers: { 'content-type': 'application/json; charset=UTF-8' }, payload: Buffer.from('{"title":"café"}') });
  t.equal(ok.json().title, 'café', 'real UTF-8 is kept exactly');
});

t.test('a __proto__ or constructor key is an unknown field, named', async (t) => {
  const { api } = await build(t);
  for (const key of ['__proto__', 'constructor']) {
    const res = await api.post('/api/tasks', { as: 'alice', headers: json, payload: `{"title":"x","${key}":{"admin":true}}` });
    t.equal(res.statusCode, 400, key);
    t.same(res.json().error.details, [{ in: 'body', field: key, message: 'is not an allowed field' }]);
  }
});

t.test('a cursor outside PostgreSQL\'s range is a 400 on cursor', async (t) => {
  const { api } = await build(t);
  const forged = Buffer.from(JSON.stringify(['0000-01-01T00:00:00.000Z', '00000000-0000-0000-0000-000000000000'])).toString('base64url');
  const res = await api.get(`/api/tasks?cursor=${forged}`, { as: 'alice' });
  t.equal(res.statusCode, 400);
  t.same(res.json().error.details.map((d: { field: string }) => d.field), ['cursor']);
});

t.test('a trailing slash names the same resource', async (t) => {
  const { api } = await build(t);
  const task = await api.createTask('alice');
  t.equal((await api.get('/api/tasks/', { as: 'alice' })).statusCode, 200);
  t.equal((await api.get(`/api/tasks/${task.id}/`, { as: 'alice' })).statusCode, 200);
  t.equal((await api.post('/api/tasks/', { as: 'alice', payload: { title: 'slash' } })).statusCode, 201);
});

t.test('messages say what arrived: the Content-Type of a 415, the shape of a malformed token', async (t) => {
  const { api, app } = await build(t);
  const text = await api.post('/api/tasks', { as: 'alice', headers: { 'content-type': 'text/plain' }, payload: 'x' });
  t.equal(text.statusCode, 415);
  t.equal(text.json().error.message, 'The request body came with Content-Type text/plain; send it as application/json (UTF-8).');
  const latin = await api.post('/api/tasks', { as: 'alice', headers: { 'content-type': 'application/json; charset=latin1' }, payload: '{}' });
  t.match(latin.json().error.message, /came with Content-Type application\/json; charset=latin1; send it as application\/json \(UTF-8\)/);
  const threeParts = await app.inject({ method: 'GET', url: '/api/tasks', headers: { authorization: 'Bearer abc.def.ghi' } });
  t.equal(threeParts.json().error.message, 'The token is malformed: its header or payload is not base64url-encoded JSON.', 'three parts: not called the wrong shape');
  const onePart = await app.inject({ method: 'GET', url: '/api/tasks', headers: { authorization: 'Bearer abc' } });
  t.match(onePart.json().error.message, /three base64url parts, header\.payload\.signature \(this one has 1\)/);
});
