/**
 * The offline-first store in a real browser (Chromium driven by playwright-core), against
 * the real API on another origin (CORS): the package is bundled for the browser with
 * esbuild, served with a page (and a service worker, so that the page also loads offline)
 * from an allowed origin; the page keeps its store in IndexedDB. Offline, it creates three
 * tasks and completes one; reloaded while still offline, it shows them again from IndexedDB;
 * back online, the server has each exactly once, and a second browser's store shows them.
 *
 * The browser is Debian's chromium, found as in browser.test.ts: CHROMIUM_PATH when set (and
 * then only it), otherwise `chromium` on PATH. Without it the test is reported as skipped,
 * with the reason.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { build as bundle } from 'esbuild';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import t from 'tap';
import { build, token, type Test } from '../helper.ts';
import { CHROMIUM, LAUNCH_ARGS } from './chromium.ts';

const skip = CHROMIUM.skip;

const ENTRY = join(import.meta.dirname, '..', '..', 'clients', 'typescript', 'src', 'index.ts');

/** The package as one ES module for browsers (what an app's bundler would make of it). */
async function bundled(): Promise<string> {
  const result = await bundle({ entryPoints: [ENTRY], bundle: true, format: 'esm', platform: 'browser', target: 'es2022', write: false, logLevel: 'silent' });
  return result.outputFiles[0]?.text ?? '';
}

/**
 * The app: a store kept in IndexedDB ('todo'), and what the test asks of it. Waits are on the
 * store's own change events (with a safety timeout); nothing in the page polls.
 */
const PAGE = `<!doctype html>
<html lang="en">
<meta charset="utf-8">
<title>todo offline</title>
<link rel="icon" href="data:,">
<script type="module">
  import { createTodoStore, indexedDbStorage } from '/store.js';
  let store;
  const errors = [];
  const summary = () => ({
    tasks: store.tasks().map(({ id, title, status }) => ({ id, title, status })),
    pending: store.pendingCount,
  });
  function until(ok, what) {
    return new Promise((resolve, reject) => {
      if (ok()) return resolve(summary());
      const timer = setTimeout(() => { stop(); reject(new Error(what + ': not within 10 s: ' + JSON.stringify(summary()))); }, 10000);
      const stop = store.subscribe(() => {
        if (!ok()) return;
        clearTimeout(timer);
        stop();
        resolve(summary());
      });
    });
  }
  window.app = {
    /** Installs the service worker that lets this page load offline, and waits until it controls the page. */
    async installOffline() {
      await navigator.serviceWorker.register('/sw.js');
      await navigator.serviceWorker.ready;
      if (!navigator.serviceWorker.controller) {
        await new Promise((resolve) => navigator.serviceWorker.addEventListener('controllerchange', resolve, { once: true }));
      }
      return Boolean(navigator.serviceWorker.controller);
    },
    async start(api, token) {
      store = createTodoStore({ baseUrl: api, getToken: async () => token, storage: indexedDbStorage('todo'), live: true });
      store.on('error', (e) => errors.push(String(e.error)));
      await store.ready;
      return summary();
    },
    summary,
    errors: () => errors,
    online: () => navigator.onLine,
    create(titles) {
      return titles.map((title) => store.create({ title }).id);
    },
    complete(id) {
      store.update(id, { status: 'completed' });
      return summary();
    },
    /** Resolves when the view holds exactly these titles (any order). */
    showing(titles) {
      const want = [...titles].sort().join('\\n');
      return until(() => store.tasks().map((x) => x.title).sort().join('\\n') === want, 'showing ' + titles.join(', '));
    },
    settled() {
      return until(() => store.pendingCount === 0, 'everything sent');
    },
    saved: () => store.saved(),
  };
</script>
<h1>todo offline</h1>
</html>`;

/** Caches the page and the bundle, and serves them from the cache first (so a reload works offline). */
const SERVICE_WORKER = `
const CACHE = 'todo-app';
self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(['/', '/store.js'])).then(() => self.skipWaiting()));
});
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));
self.addEventListener('fetch', (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== 'GET' || url.origin !== self.location.origin) return;
  event.respondWith(caches.match(event.request).then((hit) => hit || fetch(event.request)));
});
`;

/** Serves the app from a port of its own; returns its origin, http://localhost:<port>. */
async function serveApp(t: Test, script: string): Promise<string> {
  const files: Record<string, [string, string]> = {
    '/': ['text/html; charset=utf-8', PAGE],
    '/store.js': ['text/javascript; charset=utf-8', script],
    '/sw.js': ['text/javascript; charset=utf-8', SERVICE_WORKER],
  };
  const server = createServer((req, res) => {
    const file = req.method === 'GET' ? files[req.url ?? ''] : undefined;
    if (!file) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': file[0], 'cache-control': 'no-store' });
    res.end(file[1]);
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

interface Summary {
  tasks: Array<{ id: string; title: string; status: string }>;
  pending: number;
}

const app = <T>(page: Page, method: string, ...args: unknown[]): Promise<T> =>
  page.evaluate(([m, a]) => (globalThis as any).app[m as string](...(a as unknown[])), [method, args] as const) as Promise<T>;

/** A page of the app in `context`, with its console and errors kept. */
async function openPage(context: BrowserContext, url: string, messages: string[]): Promise<Page> {
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  page.on('console', (m) => messages.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => messages.push(`pageerror: ${e.message}`));
  const res = await page.goto(url);
  if (res === null || !res.ok()) throw new Error(`GET ${url} -> ${res?.status() ?? 'no response'}`);
  return page;
}

t.test('offline in a real browser: three tasks made offline survive a reload from IndexedDB and reach the server exactly once', { skip }, async (t) => {
  const script = await bundled();
  t.notMatch(script, /from\s*["']node:|require\(/, 'the package bundles for the browser without Node modules');
  const appOrigin = await serveApp(t, script);
  const { app: api, sql } = await build(t, { corsOrigins: [appOrigin] });
  await api.listen({ port: 0, host: '127.0.0.1' });
  const apiUrl = `http://127.0.0.1:${(api.server.address() as AddressInfo).port}`;
  const bearer = token('browser-user');
  if (CHROMIUM.path === null) throw new Error(CHROMIUM.skip);
  const browser = await chromium.launch({ executablePath: CHROMIUM.path, args: LAUNCH_ARGS, timeout: 20_000 });
  t.teardown(() => browser.close());
  const messages: string[] = [];

  const context = await browser.newContext();
  const page = await openPage(context, `${appOrigin}/`, messages);
  t.ok(await app<boolean>(page, 'installOffline'), 'a service worker controls the page (so that it loads offline)');
  await app<Summary>(page, 'start', apiUrl, bearer);
  // The store follows the change stream through CORS: a task made elsewhere shows.
  const elsewhere = await createTask(apiUrl, bearer, 'made elsewhere');
  await app(page, 'showing', ['made elsewhere']);
  t.pass('the store follows the server across origins');

  await context.setOffline(true);
  t.equal(await app<boolean>(page, 'online'), false, 'the browser is offline');
  const ids = await app<string[]>(page, 'create', ['milk', 'bread', 'eggs']);
  const offline = await app<Summary>(page, 'complete', ids[1]);
  t.same(
    offline.tasks.map((x) => `${x.title}:${x.status}`).sort(),
    ['bread:completed', 'eggs:pending', 'made elsewhere:pending', 'milk:pending'],
    'offline: the three tasks show at once, one completed',
  );
  t.equal(offline.pending, 4, 'four mutations queued');
  // IndexedDB commits a few milliseconds after each mutation; an app reloading itself waits for that.
  await app(page, 'saved');

  // Reloaded while still offline: the page comes from the service worker, the store from IndexedDB.
  const reloaded = await page.reload();
  t.ok(reloaded?.ok(), 'the page reloads offline');
  const restored = await app<Summary>(page, 'start', apiUrl, bearer);
  t.same(restored, offline, 'after the reload, still offline: the same tasks and the same queue, from IndexedDB');
  t.equal(await countOnServer(sql), 1, 'nothing reached the server yet');

  await context.setOffline(false);
  await app(page, 'settled');
  t.pass('back online: the queue is sent');
  const server = await listOnServer(apiUrl, bearer);
  t.same(
    server.map((x) => `${x.title}:${x.status}`).sort(),
    ['bread:completed', 'eggs:pending', 'made elsewhere:pending', 'milk:pending'],
    'the server has each task exactly once, one completed',
  );
  t.same(server.filter((x) => x.id !== elsewhere).map((x) => x.id).sort(), [...ids].sort(), 'with the ids the store gave them offline');
  t.equal(await countOnServer(sql), 4, 'four rows in the database');

  // Another browser (its own IndexedDB): its store shows them, from the server.
  const second = await browser.newContext();
  const other = await openPage(second, `${appOrigin}/`, messages);
  const fresh = await app<Summary>(other, 'start', apiUrl, bearer);
  t.equal(fresh.pending, 0, 'the second store starts with nothing queued');
  const shown = await app<Summary>(other, 'showing', ['made elsewhere', 'milk', 'bread', 'eggs']);
  t.same(
    shown.tasks.map((x) => `${x.id}:${x.title}:${x.status}`).sort(),
    server.map((x) => `${x.id}:${x.title}:${x.status}`).sort(),
    "a second browser's store shows them",
  );
  t.same([...(await app<string[]>(page, 'errors')), ...(await app<string[]>(other, 'errors'))], [], "no store reported an 'error'");
  t.same(
    messages.filter((m) => m.startsWith('pageerror:')),
    [],
    'no uncaught error in the pages',
  );
  await Promise.all([page.close(), other.close()]);
});

async function createTask(api: string, bearer: string, title: string): Promise<string> {
  const res = await fetch(`${api}/api/tasks`, { method: 'POST', headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' }, body: JSON.stringify({ title }) });
  if (res.status !== 201) throw new Error(`POST /api/tasks -> ${res.status}`);
  return ((await res.json()) as { id: string }).id;
}

async function listOnServer(api: string, bearer: string): Promise<Array<{ id: string; title: string; status: string }>> {
  const res = await fetch(`${api}/api/tasks?limit=100`, { headers: { authorization: `Bearer ${bearer}` } });
  return ((await res.json()) as { items: Array<{ id: string; title: string; status: string }> }).items;
}

async function countOnServer(sql: Awaited<ReturnType<typeof build>>['sql']): Promise<number> {
  const [row] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM tasks`;
  return row?.n ?? -1;
}
