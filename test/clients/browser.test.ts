/**
 * A real browser against the real API, all on loopback:
 * - a page on an allowed origin (http://localhost:<port>) uses the API on another
 *   origin (http://127.0.0.1:<apiPort>) with fetch and a bearer token, through real
 *   CORS preflights;
 * - the same page on an unlisted origin is blocked by the browser;
 * - /docs (Swagger UI) authorizes with a token and executes a call.
 *
 * The browser is Debian's chromium driven by playwright-core: CHROMIUM_PATH when set
 * (and then only it), otherwise `chromium` on PATH. Without it every test here is
 * reported as skipped, with the reason.
 */
import { mkdirSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { chromium, type Page } from 'playwright-core';
import t from 'tap';
import { build, token, type Test } from '../helper.ts';
import { CHROMIUM, LAUNCH_ARGS } from './chromium.ts';

const skip = CHROMIUM.skip;

/**
 * What a frontend on another origin does: fetch with a bearer token, JSON bodies,
 * and whatever headers CORS lets it read. A rejected fetch is returned, not thrown.
 */
const CLIENT_PAGE = `<!doctype html>
<html lang="en">
<meta charset="utf-8">
<title>todo client</title>
<link rel="icon" href="data:,">
<script>
  window.todo = async function ({ api, token, method, path, body }) {
    const headers = {};
    if (token !== null) headers['Authorization'] = 'Bearer ' + token;
    const init = { method, headers };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    try {
      const res = await fetch(api + path, init);
      const text = await res.text();
      return {
        status: res.status,
        location: res.headers.get('Location'),
        wwwAuthenticate: res.headers.get('WWW-Authenticate'),
        body: text === '' ? null : JSON.parse(text),
      };
    } catch (error) {
      return { error: { name: error.name, message: String(error.message) } };
    }
  };
</script>
<h1>todo client</h1>
</html>`;

interface Answer {
  status: number;
  location: string | null;
  wwwAuthenticate: string | null;
  body: any;
}
type Outcome = Answer | { error: { name: string; message: string } };

interface Call {
  api: string;
  token: string | null;
  method: string;
  path: string;
  body?: unknown;
}

/** Runs the page's fetch (in the page, on its origin) and brings the result back. */
function call(page: Page, request: Call): Promise<Outcome> {
  return page.evaluate((r) => (globalThis as any).todo({ body: undefined, ...r }), request);
}

/** The answer, or a failure naming the rejected fetch (a blocked CORS request ends here). */
function answered(outcome: Outcome, what: string): Answer {
  if ('error' in outcome) throw new Error(`${what}: the browser's fetch rejected: ${outcome.error.name}: ${outcome.error.message}`);
  return outcome;
}

interface Seen {
  method: string;
  url: string;
  origin: string | undefined;
  authorization: boolean;
  requestMethod: string | undefined;
  requestHeaders: string[];
  status?: number;
}

/** Every request the API's HTTP server receives, preflights included, with its final status. */
function recordRequests(server: Server): Seen[] {
  const seen: Seen[] = [];
  server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => {
    const entry: Seen = {
      method: req.method ?? '',
      url: req.url ?? '',
      origin: req.headers.origin,
      authorization: req.headers.authorization !== undefined,
      requestMethod: req.headers['access-control-request-method'],
      requestHeaders: String(req.headers['access-control-request-headers'] ?? '')
        .split(',')
        .map((h) => h.trim().toLowerCase())
        .filter((h) => h !== ''),
    };
    seen.push(entry);
    res.on('finish', () => {
      entry.status = res.statusCode;
    });
  });
  return seen;
}

/** Serves `html` at / from a port of its own; returns its origin, http://localhost:<port>. */
async function servePage(t: Test, html: string): Promise<string> {
  const server = createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(html);
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return `http://localhost:${(server.address() as AddressInfo).port}`;
}

/** The app on a real port; returns its base URL, http://127.0.0.1:<port>. */
async function listen(app: FastifyInstance): Promise<string> {
  await app.listen({ port: 0, host: '127.0.0.1' });
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
}

interface Opened {
  page: Page;
  /** Console messages and uncaught page errors, as "type: text". */
  messages: string[];
  /** Every URL the page requested outside loopback (there is no network here). */
  external: string[];
}

/** A fresh browser (closed at teardown, registered after build's, so it closes before the app). */
async function open(t: Test, url: string): Promise<Opened> {
  if (CHROMIUM.path === null) throw new Error(CHROMIUM.skip);
  const browser = await chromium.launch({ executablePath: CHROMIUM.path, args: LAUNCH_ARGS, timeout: 20_000 });
  t.teardown(() => browser.close());
  const page = await browser.newPage();
  page.setDefaultTimeout(10_000);
  const messages: string[] = [];
  const external: string[] = [];
  page.on('console', (m) => messages.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => messages.push(`pageerror: ${e.message}`));
  page.on('request', (r) => {
    const { protocol, hostname } = new URL(r.url());
    const loopback = ['localhost', '127.0.0.1', '[::1]'].includes(hostname);
    if (!loopback && protocol !== 'data:' && protocol !== 'blob:') external.push(r.url());
  });
  const res = await page.goto(url);
  if (res === null || !res.ok()) throw new Error(`GET ${url} -> ${res?.status() ?? 'no response'}`);
  return { page, messages, external };
}

async function taskCount(sql: Awaited<ReturnType<typeof build>>['sql']): Promise<number> {
  const [row] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM tasks`;
  return row?.n ?? -1;
}

t.test('a page on an allowed origin creates, lists, updates and deletes through CORS', { skip }, async (t) => {
  const pageOrigin = await servePage(t, CLIENT_PAGE);
  const { app, sql } = await build(t, { corsOrigins: [pageOrigin] });
  const seen = recordRequests(app.server);
  const api = await listen(app);
  t.not(new URL(api).origin, pageOrigin, 'the API is on another origin than the page');
  const { page, external } = await open(t, `${pageOrigin}/`);
  const bearer = token('browser-user');
  const as = (method: string, path: string, body?: unknown) =>
    call(page, { api, token: bearer, method, path, ...(body !== undefined && { body }) });

  const created = answered(await as('POST', '/api/tasks', { title: '  From the browser ' }), 'POST /api/tasks');
  t.equal(created.status, 201, 'POST -> 201');
  t.same(
    { title: created.body.title, status: created.body.status, user_id: created.body.user_id },
    { title: 'From the browser', status: 'pending', user_id: 'browser-user' },
    'the new task, trimmed, owned by the token\'s user',
  );
  t.equal(created.location, `/api/tasks/${created.body.id}`, 'Location is readable from JS (Access-Control-Expose-Headers)');
  const id: string = created.body.id;

  const listed = answered(await as('GET', '/api/tasks'), 'GET /api/tasks');
  t.equal(listed.status, 200, 'GET list -> 200');
  t.same(
    listed.body.items.map((x: { id: string }) => x.id),
    [id],
    'the list holds the new task',
  );

  const patched = answered(await as('PATCH', `/api/tasks/${id}`, { status: 'completed' }), 'PATCH /api/tasks/{id}');
  t.equal(patched.status, 200, 'PATCH -> 200');
  t.same({ status: patched.body.status, title: patched.body.title }, { status: 'completed', title: 'From the browser' }, 'PATCH changed the status only');

  const fetched = answered(await as('GET', `/api/tasks/${id}`), 'GET /api/tasks/{id}');
  t.equal(fetched.status, 200, 'GET one -> 200');
  t.equal(fetched.body.status, 'completed', 'the change is stored');

  const deleted = answered(await as('DELETE', `/api/tasks/${id}`), 'DELETE /api/tasks/{id}');
  t.equal(deleted.status, 204, 'DELETE -> 204');
  t.equal(deleted.body, null, 'no body');

  const gone = answered(await as('GET', `/api/tasks/${id}`), 'GET /api/tasks/{id} after DELETE');
  t.equal(gone.status, 404, 'GET after DELETE -> 404');
  t.equal(gone.body.error.code, 'NOT_FOUND', 'the error body is readable');
  t.equal(await taskCount(sql), 0, 'the database holds no task');

  // An error without a token is readable too, WWW-Authenticate included.
  const anonymous = answered(await call(page, { api, token: null, method: 'GET', path: '/api/tasks' }), 'GET without token');
  t.equal(anonymous.status, 401, 'GET without a token -> 401');
  t.equal(anonymous.body.error.code, 'NOT_AUTHENTICATED', 'its error body is readable');
  t.match(anonymous.wwwAuthenticate ?? '', /^Bearer/, 'WWW-Authenticate is readable from JS');

  // What the server saw: real preflights before every request carrying a token.
  const fromPage = seen.filter((r) => r.origin === pageOrigin);
  const preflights = fromPage.filter((r) => r.method === 'OPTIONS');
  t.ok(preflights.length >= 2, `the browser sent preflights (${preflights.length})`);
  for (const p of preflights) {
    const what = `preflight for ${p.requestMethod} ${p.url.replace(id, '{id}')}`;
    t.equal(p.status, 204, `${what} -> 204`);
    t.ok(p.requestHeaders.includes('authorization'), `${what} asks for Authorization`);
  }
  t.ok(
    preflights.some((p) => p.url === '/api/tasks' && p.requestMethod === 'POST'),
    'a preflight for POST /api/tasks',
  );
  t.ok(
    preflights.some((p) => p.url === `/api/tasks/${id}` && p.requestMethod === 'PATCH'),
    'a preflight for PATCH /api/tasks/{id}',
  );
  const actual = fromPage.filter((r) => r.method !== 'OPTIONS');
  t.same(
    actual.map((r) => `${r.method} ${r.url.replace(id, '{id}')} ${r.status}`),
    [
      'POST /api/tasks 201',
      'GET /api/tasks 200',
      'PATCH /api/tasks/{id} 200',
      'GET /api/tasks/{id} 200',
      'DELETE /api/tasks/{id} 204',
      'GET /api/tasks/{id} 404',
      'GET /api/tasks 401',
    ],
    'every call reached the server, with the page\'s Origin',
  );
  for (const r of actual.filter((r) => r.authorization)) {
    const at = seen.indexOf(r);
    t.ok(
      seen.some((p, i) => i < at && p.method === 'OPTIONS' && p.origin === pageOrigin && p.url === r.url),
      `${r.method} ${r.url.replace(id, '{id}')} came after a preflight for its URL`,
    );
  }
  t.same(external, [], 'nothing was requested outside loopback');
});

t.test('the same page on an unlisted origin is blocked by the browser', { skip }, async (t) => {
  const allowed = await servePage(t, CLIENT_PAGE);
  const evil = await servePage(t, CLIENT_PAGE);
  const { app, sql } = await build(t, { corsOrigins: [allowed] });
  const seen = recordRequests(app.server);
  const api = await listen(app);
  const { page, messages } = await open(t, `${evil}/`);
  const bearer = token('browser-user');

  const created = await call(page, { api, token: bearer, method: 'POST', path: '/api/tasks', body: { title: 'must not exist' } });
  t.equal('error' in created && created.error.name, 'TypeError', 'POST: fetch rejects with a TypeError');
  const listed = await call(page, { api, token: bearer, method: 'GET', path: '/api/tasks' });
  t.equal('error' in listed && listed.error.name, 'TypeError', 'GET: fetch rejects with a TypeError');
  // A simple request (no token, so no preflight) is served, but its answer is withheld.
  const simple = await call(page, { api, token: null, method: 'GET', path: '/api/tasks' });
  t.equal('error' in simple && simple.error.name, 'TypeError', 'a simple GET is unreadable too');

  t.equal(await taskCount(sql), 0, 'no task was created');
  const fromEvil = seen.filter((r) => r.origin === evil);
  t.ok(fromEvil.some((r) => r.method === 'OPTIONS' && r.requestMethod === 'POST'), 'the API was reachable: it saw the preflight');
  t.same(
    fromEvil.filter((r) => r.method !== 'OPTIONS').map((r) => `${r.method} ${r.url} ${r.authorization ? 'with' : 'without'} token`),
    ['GET /api/tasks without token'],
    'no request carrying a token got past its preflight',
  );
  t.ok(
    messages.some((m) => /blocked by CORS policy/.test(m)),
    'the browser says CORS blocked it',
  );

  // Control: the very same page and calls on the allowed origin work.
  const control = await page.goto(`${allowed}/`);
  t.equal(control?.status(), 200, 'the page reloaded from the allowed origin');
  const ok = answered(await call(page, { api, token: bearer, method: 'GET', path: '/api/tasks' }), 'GET from the allowed origin');
  t.equal(ok.status, 200, 'from the allowed origin the same call is answered');
});

t.test('/docs: authorize with a token, then execute GET /api/tasks', { skip }, async (t) => {
  const { app, api: inject } = await build(t);
  const task = await inject.createTask('browser-user', 'Shown in the docs');
  const recorded = recordRequests(app.server);
  const base = await listen(app);
  const bearer = token('browser-user');
  const { page, messages, external } = await open(t, `${base}/docs`);

  await page.locator('.auth-wrapper button.authorize').click();
  const dialog = page.locator('.modal-ux');
  await dialog.locator('input[aria-label="auth-bearer-value"]').fill(bearer);
  await dialog.locator('button.modal-btn.authorize[type="submit"]').click();
  await dialog.locator('button.btn-done').waitFor();
  t.match(await dialog.textContent(), /Authorized/, 'the dialog says Authorized');
  await dialog.locator('button.btn-done').click();
  await dialog.waitFor({ state: 'detached' });

  const operation = page
    .locator('.opblock.opblock-get')
    .filter({ has: page.locator('.opblock-summary-path[data-path="/api/tasks"]') });
  t.equal(await operation.count(), 1, 'one GET /api/tasks operation');
  t.match(await operation.getAttribute('id'), /listTasks$/, 'it is listTasks');
  await operation.locator('.opblock-summary-control').click();
  const tryItOut = operation.locator('button.try-out__btn');
  await tryItOut.waitFor();
  // With tryItOutEnabled the editor is already open and the button reads "Cancel".
  if (/try it out/i.test((await tryItOut.textContent()) ?? '')) await tryItOut.click();
  const execute = async (): Promise<{ status: string | undefined; body: string; curl: string }> => {
    await operation.locator('button.execute').click();
    const status = operation.locator('.live-responses-table tbody .response-col_status').first();
    await status.waitFor();
    const body = (await operation.locator('.live-responses-table tbody .response-col_description').first().textContent()) ?? '';
    const curl = (await operation.locator('.curl-command').first().textContent()) ?? '';
    const answer = { status: (await status.textContent())?.trim(), body, curl };
    await operation.locator('button.btn-clear').click();
    await status.waitFor({ state: 'detached' });
    return answer;
  };

  // As it opens: Try it out fills every parameter with its example from openapi.yaml.
  const asOpened = await execute();
  t.match(asOpened.curl, `Bearer ${bearer}`, 'the call carried the token');
  t.equal(asOpened.status, '200', 'Execute with the prefilled examples answers 200');

  // The plain call: no cursor and no filters (the status, sort and limit examples stay: pending, position, 20).
  for (const name of ['cursor', 'q', 'due_before', 'due_after']) await operation.locator(`tr[data-param-name="${name}"] input`).fill('');
  await operation.locator('tr[data-param-name="has_due"] select').selectOption('');
  const plain = await execute();
  t.equal(plain.status, '200', 'Execute without a cursor: the live response is a 200');
  t.match(plain.body, task.id, 'the response shows the task');
  t.notMatch(plain.curl, 'cursor=', 'no cursor was sent');
  t.ok(
    recorded.some((r) => r.method === 'GET' && r.url.startsWith('/api/tasks') && r.authorization && r.status === 200),
    'the server answered an authorized GET /api/tasks with 200',
  );
  // Leave the 200 on screen for the screenshot.
  await operation.locator('button.execute').click();
  await operation.locator('.live-responses-table tbody .response-col_status').first().waitFor();

  const artifacts = join(import.meta.dirname, '..', '..', 'artifacts');
  mkdirSync(artifacts, { recursive: true });
  await page.screenshot({ path: join(artifacts, 'docs.png'), fullPage: true });

  t.same(
    messages.filter((m) => m.startsWith('pageerror:')),
    [],
    'no uncaught error in the page',
  );
  // No network here: anything external would fail, but must not matter to the docs.
  if (external.length > 0) t.comment(`/docs tried to load from outside loopback: ${external.join(', ')}`);
});

/**
 * A frontend's retries, concurrent edits and live updates: an Idempotency-Key on a
 * create, a conditional PATCH with the ETag it read (then a stale one), and the
 * change stream read with fetch and a stream reader (EventSource cannot send headers).
 */
const SYNC_PAGE = `<!doctype html>
<html lang="en">
<meta charset="utf-8">
<title>todo sync client</title>
<link rel="icon" href="data:,">
<script>
  window.call = async function (api, token, method, path, headers, body) {
    const init = { method, headers: { Authorization: 'Bearer ' + token, ...headers } };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const res = await fetch(api + path, init);
    const text = await res.text();
    return {
      status: res.status,
      etag: res.headers.get('ETag'),
      replayed: res.headers.get('Idempotent-Replayed'),
      body: text === '' ? null : JSON.parse(text),
    };
  };
  window.events = [];
  window.openStream = async function (api, token) {
    const res = await fetch(api + '/api/tasks/changes/stream', { headers: { Authorization: 'Bearer ' + token } });
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    (async () => {
      let buffer = '';
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        buffer += value;
        let end;
        while ((end = buffer.indexOf('\\n\\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = block.split('\\n').find((line) => line.startsWith('data: '));
          if (data) window.events.push(JSON.parse(data.slice(6)));
        }
      }
    })();
    return { status: res.status, type: res.headers.get('Content-Type') };
  };
</script>
<h1>todo sync client</h1>
</html>`;

t.test('from another origin: a safe retry, conditional edits with ETags, and the live change stream', { skip }, async (t) => {
  const pageOrigin = await servePage(t, SYNC_PAGE);
  const { app, api: inject, sql } = await build(t, { corsOrigins: [pageOrigin] });
  const seen = recordRequests(app.server);
  const api = await listen(app);
  const { page } = await open(t, `${pageOrigin}/`);
  const bearer = token('browser-user');
  const send = (method: string, path: string, headers: Record<string, string> = {}, body?: unknown) =>
    page.evaluate(([a, tk, m, p, h, b]) => (globalThis as any).call(a, tk, m, p, h, b), [api, bearer, method, path, headers, body] as const);

  const first = await send('POST', '/api/tasks', { 'Idempotency-Key': 'browser-key-1' }, { title: 'Retried' });
  const retry = await send('POST', '/api/tasks', { 'Idempotency-Key': 'browser-key-1' }, { title: 'Retried' });
  t.equal(first.status, 201);
  t.equal(retry.status, 201);
  t.equal(retry.replayed, 'true', 'Idempotent-Replayed is readable from JS');
  t.equal(retry.body.id, first.body.id, 'the retry replays the same task');
  t.equal(await taskCount(sql), 1, 'one task in the database');

  const id: string = first.body.id;
  const read = await send('GET', `/api/tasks/${id}`);
  t.match(read.etag, /^"[!#-~]+"$/, 'the ETag is readable from JS (Access-Control-Expose-Headers)');
  const ok = await send('PATCH', `/api/tasks/${id}`, { 'If-Match': read.etag }, { status: 'completed' });
  t.equal(ok.status, 200, 'a PATCH with the current ETag succeeds');
  t.not(ok.etag, read.etag, 'and answers with the new ETag');
  const stale = await send('PATCH', `/api/tasks/${id}`, { 'If-Match': read.etag }, { title: 'lost update' });
  t.equal(stale.status, 412, 'the same ETag again is stale: 412');
  t.equal(stale.body.error.code, 'PRECONDITION_FAILED');
  t.ok(
    seen.some((r) => r.method === 'OPTIONS' && r.requestMethod === 'PATCH' && r.requestHeaders.includes('if-match') && r.status === 204),
    'the preflight allowed If-Match',
  );

  const opened = await page.evaluate(([a, tk]) => (globalThis as any).openStream(a, tk), [api, bearer] as const);
  t.same(opened, { status: 200, type: 'text/event-stream; charset=utf-8' });
  await page.waitForFunction(() => (globalThis as any).events.length >= 1);
  const created = await inject.createTask('browser-user', 'From another client');
  await page.waitForFunction(
    (taskId) => (globalThis as any).events.some((e: any) => e.changes.some((c: any) => c.type === 'upsert' && c.task.id === taskId)),
    created.id,
    { timeout: 5000 },
  );
  t.pass('the page saw the task another client created, through the stream');
});
