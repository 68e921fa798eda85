import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { build, type Built, type Test } from '../helper.ts';

async function scrape(built: Built): Promise<string> {
  const address = built.app.metrics.address();
  if (!address) throw new Error('metrics are not served');
  const res = await fetch(`http://127.0.0.1:${address.port}/metrics`);
  if (res.status !== 200) throw new Error(`metrics answered ${res.status}`);
  return res.text();
}

/** The value of one sample (a metric name with its labels, as Prometheus prints them). */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** A JWKS endpoint on loopback with no keys, counting its fetches. */
async function emptyJwks(t: Test): Promise<string> {
  const server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"keys":[]}'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`;
}

t.test('Prometheus metrics on their own port: requests, latency, pool, JWKS fetches, rate limits', async (t) => {
  const jwksUrl = await emptyJwks(t);
  const built = await build(t, { metricsPort: 0, rateLimitPerMinute: 2, jwksUrl, jwksMinRefetchIntervalMs: 0 });
  const { api } = built;
  await api.get('/api/tasks', { as: 'alice' });
  await api.post('/api/tasks', { as: 'alice', payload: { title: 'x' } });
  await api.get('/api/tasks', { as: 'alice' }); // over the limit of 2
  await api.get('/nowhere/1');
  await api.get('/nowhere/2');
  const b64 = (v: object) => Buffer.from(JSON.stringify(v)).toString('base64url');
  await api.get('/api/tasks', { token: `${b64({ alg: 'EdDSA', kid: 'k1' })}.${b64({ sub: 'a', exp: 9e9 })}.c2ln` });

  const text = await scrape(built);
  const requests = (labels: string) => sample(text, `todo_api_http_requests_total{${labels}}`);
  t.equal(requests('operation="listTasks",method="GET",status="200"'), 1, 'a served list');
  t.equal(requests('operation="createTask",method="POST",status="201"'), 1, 'a create');
  t.equal(requests('operation="listTasks",method="GET",status="429"'), 1, 'a refused list');
  t.equal(requests('operation="listTasks",method="GET",status="401"'), 1, 'a refused token');
  t.equal(requests('operation="unknown_route",method="GET",status="404"'), 2, 'unknown routes share one series');
  t.equal(sample(text, 'todo_api_http_request_duration_seconds_count{operation="createTask",method="POST",status="201"}'), 1, 'latency histogram');
  t.ok(text.includes('todo_api_http_request_duration_seconds_bucket{le="0.05",operation="createTask",method="POST",status="201"}'), 'with buckets');
  t.equal(sample(text, 'todo_api_rate_limited_total{limit="user"}'), 1, 'rate-limit rejections');
  t.equal(sample(text, 'todo_api_jwks_fetches_total{outcome="ok"}'), 1, 'JWKS fetches');
  for (const name of ['process_cpu_seconds_total', 'nodejs_heap_size_used_bytes', 'nodejs_eventloop_lag_seconds', 'process_resident_memory_bytes']) {
    t.ok((sample(text, name) ?? -1) >= 0, `default metric ${name}`);
  }
  t.match(text, /^# TYPE nodejs_gc_duration_seconds histogram$/m, 'GC pauses');
  t.equal(sample(text, 'todo_api_db_pool_max'), 10, 'pool size');
  t.ok((sample(text, 'todo_api_db_connections{state="active"}') ?? 0) >= 1, 'pool connections in use (the scrape itself is one)');

  const other = await fetch(`http://127.0.0.1:${built.app.metrics.address()?.port}/`);
  t.equal(other.status, 404, 'only /metrics is served there');
  await other.text();
});

t.test('metrics are off by default: no port is opened', async (t) => {
  const built = await build(t);
  t.equal(built.app.metrics.address(), undefined);
});
