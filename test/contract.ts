/**
 * The contract-conformance net: every response a test receives is checked
 * against openapi.yaml (documented status, content type, headers, body schema).
 */
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { HTTP_METHODS, loadSpec, routeTable, type OpenApiDocument } from '../src/contract/spec.ts';
import type { OpenAPIV3 } from 'openapi-types';

export const spec: OpenApiDocument = loadSpec();

const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats.default(ajv);
ajv.addSchema(spec as object, 'openapi.json');

const pointer = (...parts: string[]) => parts.map((p) => p.replace(/~/g, '~0').replace(/\//g, '~1')).join('/');

interface ResponseObject {
  $ref?: string;
  content?: Record<string, { schema?: unknown }>;
  headers?: Record<string, unknown>;
}

const routes = routeTable(spec);

/** The spec's path template for a concrete URL (query string ignored). */
export function templateFor(url: string): string | undefined {
  const path = url.split('?')[0] ?? '';
  return routes.find((r) => r.pattern.test(path))?.template;
}

const cache = new Map<string, ValidateFunction>();
function validator(ref: string): ValidateFunction {
  let v = cache.get(ref);
  if (!v) {
    v = ajv.compile({ $ref: ref });
    cache.set(ref, v);
  }
  return v;
}

/**
 * A change stream's body: blocks separated by a blank line, each a `: keep-alive`
 * comment or an `event: changes` whose `data` is a ChangePage and whose `id` is that
 * page's `next_since`.
 */
function eventStreamProblems(body: string): string[] {
  const problems: string[] = [];
  const validate = validator('openapi.json#/components/schemas/ChangePage');
  for (const block of body.split('\n\n')) {
    const lines = block.split('\n').filter((line) => line !== '');
    if (lines.length === 0 || lines.every((line) => line.startsWith(':'))) continue;
    const data = lines.find((line) => line.startsWith('data: '));
    const id = lines.find((line) => line.startsWith('id: '))?.slice(4);
    if (lines.length !== 3 || lines[1] !== 'event: changes' || id === undefined || data === undefined) {
      problems.push(`an event that is not "id", "event: changes" and "data": ${block.slice(0, 100)}`);
      continue;
    }
    let page: unknown;
    try {
      page = JSON.parse(data.slice(6));
    } catch {
      problems.push(`event data is not JSON: ${data.slice(0, 100)}`);
      continue;
    }
    if (!validate(page)) problems.push(`event data is not a ChangePage: ${ajv.errorsText(validate.errors)}`);
    else if ((page as { next_since: string }).next_since !== id) problems.push(`event id ${id.slice(0, 80)} is not its next_since`);
  }
  return problems;
}

interface HeaderObject {
  $ref?: string;
  required?: boolean;
  schema?: unknown;
}

/** Required headers are present, and every documented header that is present matches its schema. */
function headerProblems(res: Received, headers: Record<string, unknown>): string[] {
  const problems: string[] = [];
  for (const [name, value] of Object.entries(headers)) {
    let header = value as HeaderObject;
    let ref = '';
    if (header.$ref) {
      const key = header.$ref.split('/').pop()!;
      header = spec.components.headers?.[key] as HeaderObject;
      ref = `openapi.json#/${pointer('components', 'headers', key, 'schema')}`;
    }
    const sent = res.headers[name.toLowerCase()];
    if (sent === undefined) {
      if (header.required) problems.push(`${res.statusCode} lacks the ${name} header`);
      continue;
    }
    if (!ref || !header.schema) continue;
    const schema = header.schema as { type?: string };
    const text = String(sent);
    const typed = schema.type === 'integer' || schema.type === 'number' ? Number(text) : text;
    const validate = validator(ref);
    if (!validate(typed)) problems.push(`${name}: ${text} does not match its schema: ${ajv.errorsText(validate.errors)}`);
  }
  return problems;
}

export interface Received {
  method: string;
  url: string;
  statusCode: number;
  headers: Record<string, unknown>;
  body: string;
}

/** Problems with a response, as sentences; empty when it conforms. */
export function contractProblems(res: Received): string[] {
  const problems: string[] = [];
  const template = templateFor(res.url);
  const method = res.method.toLowerCase();
  const contentType = String(res.headers['content-type'] ?? '');

  const operation = template ? (spec.paths[template]?.[method as OpenAPIV3.HttpMethods] as { responses?: Record<string, ResponseObject> } | undefined) : undefined;
  let schemaRef: string;
  let documented: ResponseObject | undefined;

  if (!operation || !HTTP_METHODS.includes(method as never)) {
    // Outside the contract's operations (unknown route, wrong method): the error body still applies.
    if (res.statusCode < 400) return [`${res.method} ${res.url} answered ${res.statusCode} but is not in openapi.yaml`];
    schemaRef = 'openapi.json#/components/schemas/Error';
  } else {
    documented = operation.responses?.[String(res.statusCode)];
    if (!documented) return [`${res.method} ${template} answered ${res.statusCode}, which openapi.yaml does not list`];
    let responsePath = `openapi.json#/${pointer('paths', template!, method, 'responses', String(res.statusCode))}`;
    if (documented.$ref) {
      const name = documented.$ref.split('/').pop()!;
      documented = spec.components.responses?.[name] as ResponseObject;
      responsePath = `openapi.json#/${pointer('components', 'responses', name)}`;
    }
    if (!documented.content) {
      if (res.body !== '') problems.push(`${res.statusCode} must have an empty body, got ${res.body.slice(0, 100)}`);
      return [...problems, ...headerProblems(res, documented.headers ?? {})];
    }
    schemaRef = `${responsePath}/${pointer('content', 'application/json', 'schema')}`;
    problems.push(...headerProblems(res, documented.headers ?? {}));
    if (documented.content['text/event-stream'] && contentType.startsWith('text/event-stream')) {
      return [...problems, ...eventStreamProblems(res.body)];
    }
    if (documented.content['text/html'] && contentType.startsWith('text/html')) {
      // A page for a browser (GET /): documented as a string; it must at least be one.
      if (!/^<!doctype html>/i.test(res.body)) problems.push(`a text/html body that is not an HTML document: ${res.body.slice(0, 100)}`);
      return problems;
    }
  }

  if (!contentType.startsWith('application/json')) problems.push(`content-type is "${contentType}", not application/json`);
  let body: unknown;
  try {
    body = JSON.parse(res.body);
  } catch {
    return [...problems, `body is not JSON: ${res.body.slice(0, 100)}`];
  }
  const validate = validator(schemaRef);
  if (!validate(body)) {
    problems.push(`body does not match ${schemaRef}: ${ajv.errorsText(validate.errors)}; body: ${res.body.slice(0, 300)}`);
  }
  return problems;
}
