/**
 * The first hour of a frontend developer: GET / says where to go, and the /docs page
 * reads as prose (no regular expressions as formats, no Markdown backticks in the
 * servers list, the version the package has).
 */
import { readFileSync } from 'node:fs';
import t from 'tap';
import { spec } from '../contract.ts';
import { build } from '../helper.ts';

const PACKAGE_VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

t.test('GET / answers 200 without a token, with links that work', async (t) => {
  const { api, app } = await build(t);
  const res = await api.get('/');
  t.equal(res.statusCode, 200);
  t.same(res.json(), {
    name: 'todo-api',
    version: spec.info.version,
    links: { docs: '/docs', openapi: '/openapi.yaml', health: '/health' },
  });
  for (const [name, url] of Object.entries(res.json().links as Record<string, string>)) {
    let linked = await app.inject({ method: 'GET', url });
    if (linked.statusCode === 302) linked = await app.inject({ method: 'GET', url: String(linked.headers.location) });
    t.equal(linked.statusCode, 200, `${name}: ${url} answers 200`);
  }
});

t.test('/docs: formats in words, not regular expressions; no backticks in the servers list; the package version', async (t) => {
  const { app } = await build(t);
  const res = await app.inject({ method: 'GET', url: '/docs/json' });
  t.equal(res.statusCode, 200);
  const doc = res.json() as Record<string, any>;
  const text = JSON.stringify(doc);

  const title = doc.components.schemas.TaskTitle;
  t.equal(title.pattern, undefined, "the title's pattern is not shown");
  t.match(title.description, /1 to 500 characters/, 'its rules are said in words');
  t.match(title.description, /must not contain NUL or\s+unpaired\s+surrogate/);
  t.equal(doc.components.parameters.TaskId.schema.pattern, undefined, "the id's pattern is not shown");
  t.equal(doc.components.parameters.TaskId.schema.format, 'uuid', 'its format is');
  t.notMatch(text, /"pattern":/, 'no pattern anywhere on the page');

  for (const server of doc.servers as Array<{ url: string; description?: string }>) {
    t.notMatch(`${server.url} ${server.description ?? ''}`, /`/, `server ${server.url}: no backticks`);
  }
  t.equal(doc.info.version, PACKAGE_VERSION, "info.version is package.json's version");

  const yaml = await app.inject({ method: 'GET', url: '/openapi.yaml' });
  t.match(yaml.body, /pattern: '\^\[\^\\u0000\]\*\$'/, 'the contract itself keeps the pattern (validation uses it)');
});

t.test('GET / in a browser is a page with clickable links; JSON for every other client', async (t) => {
  const { api } = await build(t);
  const browser = await api.get('/', { headers: { accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' } });
  t.equal(browser.statusCode, 200);
  t.match(browser.headers['content-type'], /^text\/html; charset=utf-8/);
  for (const href of ['/docs', '/openapi.yaml', '/health']) t.match(browser.body, `<a href="${href}">`, `links to ${href}`);
  t.match(browser.body, /npm run -s token -- --sub alice/, 'and says how to get a token');
  t.match(browser.body, `<title>todo-api ${PACKAGE_VERSION}</title>`);
  t.equal(browser.headers.vary, 'Accept', 'caches keep the two apart');
  for (const accept of [undefined, '*/*', 'application/json', 'text/html;q=0.5, application/json']) {
    const res = await api.get('/', accept === undefined ? {} : { headers: { accept } });
    t.match(res.headers['content-type'], /^application\/json/, `Accept ${accept ?? '(none)'}: JSON`);
    t.equal(res.json().links.docs, '/docs');
  }
  const head = await api.app.inject({ method: 'HEAD', url: '/?from=bookmark', headers: { accept: 'text/html' } });
  t.equal(head.statusCode, 200, 'HEAD / with a query');
  t.match(head.headers['content-type'], /^text\/html/, 'HEAD / in a browser: the headers of the page');
  t.equal(head.headers.vary, 'Accept');
  const health = await api.get('/health', { headers: { accept: 'text/html' } });
  t.match(health.headers['content-type'], /^application\/json/, 'another route stays JSON for a browser');
  t.notOk(String(health.headers.vary ?? '').includes('Accept'), 'and does not vary on Accept');
});
