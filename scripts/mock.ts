/**
 * `npm run mock`: a mock of the API from openapi.yaml alone (Stoplight Prism), for
 * frontend work before the backend runs: no database, no real auth (any
 * `Authorization: Bearer <anything>` is accepted; none is a 401). Each operation
 * answers with its documented example; pick another with `Prefer: code=404` or
 * `Prefer: example=expired`.
 *
 * Prism answers a request it refuses (no token, an invalid body or parameter, an unknown
 * route) with the status it chooses (422 where the operation documents one) and the Error
 * schema's one example, NOT_FOUND. A team writing its error handling against that would
 * learn the wrong codes, so a thin layer in front of Prism answers those as the server
 * does: 401 NOT_AUTHENTICATED with its challenge, 400 VALIDATION_ERROR naming the fields,
 * 404 NOT_FOUND, 405 METHOD_NOT_ALLOWED with Allow (test/clients/mock.test.ts compares
 * the two).
 *
 *   npm run mock [-- --port 4010 --host 127.0.0.1]
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createServer, request as forward, type IncomingMessage, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadSpec, operationAt, parameterNames, routeTable, SPEC_PATH } from '../src/contract/spec.ts';
import { freePort } from '../src/dev/embedded.ts';
import { methodNotAllowed, noRoute, notAuthenticated, unsupportedMediaType, type ApiError } from '../src/errors.ts';
import { boundedUrl } from '../src/plugins/request-log.ts';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '4010' },
    host: { type: 'string', default: '127.0.0.1' },
  },
});

interface Violation {
  location?: string[];
  code?: string | number;
  message?: string;
}

const WHERE: Record<string, string> = { body: 'body', query: 'query', path: 'path', header: 'header' };

type Answer = { status: number; body: object; headers: Record<string, string> };

/** The server's own error, as the mock sends it. */
const answer = (error: ApiError): Answer => ({ status: error.statusCode, headers: error.headers, body: error.toBody() });

/** The server's answer to a request Prism refused, from Prism's `sl-violations`. */
function asTheServerAnswers(status: number, violations: Violation[], req: IncomingMessage): Answer {
  if (violations.some((v) => /^Supported content types/.test(v.message ?? ''))) return answer(unsupportedMediaType(req.headers['content-type']));
  if (status === 401 || violations.some((v) => v.code === 401)) return answer(notAuthenticated());
  const details = violations.slice(0, 20).map((v) => {
    const [, part = 'body', ...path] = v.location ?? [];
    const extra = /found '([^']+)'/.exec(v.message ?? '')?.[1];
    const field = extra ?? path.join('.');
    const message = extra ? 'is not an allowed field' : (v.message ?? 'is invalid').replace(/^Request (body|query|path|header) (property |parameter )?(\S+ )?/, '');
    return { in: WHERE[part] ?? 'body', field, message };
  });
  const first = details[0];
  return {
    status: 400,
    headers: {},
    body: { error: { code: 'VALIDATION_ERROR', message: first ? `${first.field || 'body'} ${first.message}.` : 'The request is invalid.', details } },
  };
}

/** Prism's own errors (application/problem+json: no route, no method) in the contract's Error body. */
function problemAsError(status: number, req: IncomingMessage): Answer {
  const path = (req.url ?? '/').split('?')[0] ?? '/';
  const methods = routeOf(path)?.methods;
  if (status === 405 && methods !== undefined) return answer(methodNotAllowed(req.method ?? 'GET', methods));
  return answer(noRoute(req.method ?? 'GET', boundedUrl(path)));
}

const spec = loadSpec();
const routes = routeTable(spec);
const routeOf = (path: string) => routes.find((r) => r.pattern.test(path));

const prismPort = await freePort();
const prism = join(dirname(createRequire(import.meta.url).resolve('@stoplight/prism-cli/package.json')), 'dist', 'index.js');
const child = spawn(process.execPath, [prism, 'mock', SPEC_PATH, '--host', '127.0.0.1', '--port', String(prismPort)], { stdio: ['ignore', 'pipe', 'inherit'] });
child.stdout.on('data', (chunk: Buffer) => {
  // Prism's own lines, with the address that clients use.
  process.stdout.write(chunk.toString().replaceAll(`http://127.0.0.1:${prismPort}`, `http://${values.host}:${values.port}`));
});

/** Query parameters the operation does not declare: the server refuses them (Prism lets them through). */
function unknownQuery(req: IncomingMessage): string[] {
  const url = new URL(req.url ?? '/', 'http://mock');
  const template = routeOf(url.pathname)?.template;
  const op = template === undefined ? undefined : operationAt(spec, template, req.method ?? 'GET');
  if (template === undefined || op === undefined) return [];
  const declared = new Set(parameterNames(spec, template, op, 'query'));
  return [...new Set(url.searchParams.keys())].filter((name) => !declared.has(name));
}

const proxy = createServer((req: IncomingMessage, res: ServerResponse) => {
  const unknown = unknownQuery(req);
  if (unknown.length > 0 && req.headers.authorization !== undefined) {
    const details = unknown.slice(0, 20).map((field) => ({ in: 'query', field, message: 'is not a known query parameter' }));
    // Prism's CORS headers, so that a browser app can read this answer too.
    res.writeHead(400, {
      'content-type': 'application/json',
      'x-request-id': randomUUID(),
      'access-control-allow-origin': '*',
      'access-control-allow-credentials': 'true',
      'access-control-expose-headers': '*',
    });
    res.end(JSON.stringify({ error: { code: 'VALIDATION_ERROR', message: `${unknown[0]} is not a known query parameter.`, details } }));
    req.resume();
    return;
  }
  const upstream = forward({ host: '127.0.0.1', port: prismPort, method: req.method, path: req.url, headers: req.headers }, (answer) => {
    const status = answer.statusCode ?? 502;
    const violations = answer.headers['sl-violations'];
    const problem = /problem\+json/.test(String(answer.headers['content-type'] ?? ''));
    const refused = typeof violations === 'string' && status >= 400 ? asTheServerAnswers(status, JSON.parse(violations) as Violation[], req) : problem ? problemAsError(status, req) : undefined;
    if (!refused) {
      res.writeHead(status, answer.headers);
      answer.pipe(res);
      return;
    }
    answer.resume();
    const headers = { ...answer.headers };
    delete headers['content-length'];
    delete headers['sl-violations'];
    delete headers['www-authenticate'];
    res.writeHead(refused.status, { ...headers, ...refused.headers, 'content-type': 'application/json' });
    res.end(JSON.stringify(refused.body));
  });
  upstream.on('error', () => {
    if (!res.headersSent) res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '1' });
    res.end(JSON.stringify({ error: { code: 'SERVICE_UNAVAILABLE', message: 'The mock is starting; try again shortly.', details: null } }));
  });
  req.pipe(upstream);
});
proxy.listen(Number(values.port), values.host);

for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => {
  proxy.close();
  process.exit(code ?? (signal ? 1 : 0));
});
