/**
 * What a team gets when it imports openapi.yaml into Postman (openapi-to-postmanv2, the
 * converter behind Postman's import): a usable base URL, and with "Example" parameter
 * generation, requests that the server accepts as they come, optional parameters and
 * headers included (a missing task is a 404, never a 400). With the converter's default
 * ("Schema"), every generated title is one the server accepts.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import t from 'tap';
import { SPEC_PATH } from '../../src/contract/spec.ts';
import { build } from '../helper.ts';

interface PostmanRequest {
  method: string;
  header?: Array<{ key: string; value: string; disabled?: boolean }>;
  url: { path?: string[]; query?: Array<{ key: string; value: string; disabled?: boolean }>; variable?: Array<{ key: string; value: string }> };
  body?: { raw?: string };
}
interface Item {
  name: string;
  item?: Item[];
  request?: PostmanRequest;
}
interface Collection {
  item: Item[];
  variable?: Array<{ key: string; value: string }>;
}

async function convert(options: Record<string, string>): Promise<Collection> {
  // The converter ships no types; its callback API is typed and wrapped once here.
  const converter = createRequire(import.meta.url)('openapi-to-postmanv2') as {
    convertV2: (input: object, options: object, cb: (err: Error | null, res: { result: boolean; reason?: string; output: Array<{ data: Collection }> }) => void) => void;
  };
  return new Promise((resolve, reject) =>
    converter.convertV2({ type: 'string', data: readFileSync(SPEC_PATH, 'utf8') }, options, (err, res) => {
      if (err || !res.result || !res.output[0]) return reject(err ?? new Error(res.reason));
      resolve(res.output[0].data);
    }),
  );
}

const requests = (items: Item[]): Array<[string, PostmanRequest]> =>
  items.flatMap((i) => (i.item ? requests(i.item) : i.request ? [[i.name, i.request] as [string, PostmanRequest]] : []));

t.test('imported with "Example" parameter generation, every request is one the server accepts', async (t) => {
  const collection = await convert({ parametersResolution: 'Example' });
  t.same(collection.variable?.find((v) => v.key === 'baseUrl')?.value, 'http://localhost:8000', 'the base URL is the local server');
  const { api } = await build(t);
  const sent = requests(collection.item);
  t.ok(sent.length >= 15, `${sent.length} requests`);
  for (const [name, r] of sent) {
    const headers = Object.fromEntries((r.header ?? []).filter((h) => !h.disabled).map((h) => [h.key.toLowerCase(), h.value]));
    if (headers.accept === 'text/event-stream') continue; // never ends; its parameters are the change feed's (below)
    const vars = Object.fromEntries((r.url.variable ?? []).map((v) => [v.key, v.value]));
    const path = '/' + (r.url.path ?? []).map((p) => (p.startsWith(':') ? (vars[p.slice(1)] ?? p) : p)).join('/');
    const query = (r.url.query ?? []).filter((q) => !q.disabled).map((q) => `${encodeURIComponent(q.key)}=${encodeURIComponent(q.value)}`);
    const url = query.length > 0 ? `${path}?${query.join('&')}` : path;
    const res = await api.request(r.method, url, { as: 'alice', headers, ...(r.body?.raw !== undefined && { payload: r.body.raw }) });
    t.ok([200, 201, 204, 304, 404].includes(res.statusCode), `${name}: ${r.method} ${url.slice(0, 120)} -> ${res.statusCode} ${res.statusCode >= 400 ? res.body.slice(0, 200) : ''}`);
  }
});

t.test('imported with the default ("Schema") generation, the generated titles are valid', async (t) => {
  const { api } = await build(t);
  for (let i = 0; i < 3; i++) {
    const collection = await convert({});
    for (const [name, r] of requests(collection.item)) {
      const body = r.body?.raw ? (JSON.parse(r.body.raw) as Record<string, unknown>) : undefined;
      if (typeof body?.title !== 'string') continue;
      const res = await api.post('/api/tasks', { as: 'alice', payload: { title: body.title } });
      t.equal(res.statusCode, 201, `${name}: title ${JSON.stringify(body.title)} -> ${res.statusCode}`);
    }
  }
});
