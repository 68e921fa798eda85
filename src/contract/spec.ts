import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { fileURLToPath } from 'node:url';

export const SPEC_PATH = fileURLToPath(new URL('../../openapi.yaml', import.meta.url));

/** openapi.yaml as written: the single source of truth for routes, validation and docs. */
export const specText: string = readFileSync(SPEC_PATH, 'utf8');

export interface OpenApiOperation {
  operationId: string;
  security?: Array<Record<string, string[]>>;
  requestBody?: unknown;
  [key: string]: unknown;
}

export interface OpenApiDocument {
  openapi: string;
  info: { title: string; version: string; [key: string]: unknown };
  servers?: Array<{ url: string; description?: string }>;
  security?: Array<Record<string, string[]>>;
  paths: Record<string, Record<string, OpenApiOperation | unknown>>;
  components: Record<string, Record<string, unknown>>;
  [key: string]: unknown;
}

/** A fresh deep copy each call: fastify-openapi-glue and @fastify/swagger annotate what they get. */
export function loadSpec(): OpenApiDocument {
  return parse(specText) as OpenApiDocument;
}

export const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;

/** The operation at a path and method of the spec, if there is one. */
export function operationAt(spec: OpenApiDocument, path: string, method: string): OpenApiOperation | undefined {
  const op = spec.paths[path]?.[method.toLowerCase()];
  return typeof op === 'object' && op !== null && 'operationId' in op ? (op as OpenApiOperation) : undefined;
}

/** Whether the operation needs a bearer token (its own `security`, else the document's). */
export function requiresBearer(spec: OpenApiDocument, op: OpenApiOperation): boolean {
  const requirements = op.security ?? spec.security ?? [];
  // An empty requirement object ({}) would make auth optional; the contract has none.
  return requirements.length > 0 && requirements.every((r) => 'bearerAuth' in r);
}

interface ParameterObject {
  $ref?: string;
  name?: string;
  in?: string;
}

/** The names of the parameters `where` an operation declares (its own and its path's), as the contract spells them. */
export function parameterNames(spec: OpenApiDocument, path: string, op: OpenApiOperation, where: 'header' | 'query'): string[] {
  const pathLevel = (spec.paths[path] as { parameters?: ParameterObject[] } | undefined)?.parameters ?? [];
  const resolve = (p: ParameterObject): ParameterObject =>
    p.$ref ? ((spec.components.parameters?.[p.$ref.split('/').pop() ?? ''] as ParameterObject | undefined) ?? {}) : p;
  return [...pathLevel, ...((op.parameters as ParameterObject[] | undefined) ?? [])]
    .map(resolve)
    .filter((p) => p.in === where && typeof p.name === 'string')
    .map((p) => p.name as string);
}

export interface Route {
  /** The contract's path template, e.g. /api/tasks/{id}. */
  template: string;
  /** Matches a concrete path (without its query) of that template. */
  pattern: RegExp;
  /** The methods it has, upper case (HEAD wherever there is a GET, as Fastify answers it). */
  methods: string[];
}

/** The contract's paths as regular expressions, to find a concrete URL's template and methods. */
export function routeTable(spec: OpenApiDocument): Route[] {
  return Object.entries(spec.paths).map(([template, item]) => ({
    template,
    pattern: new RegExp(`^${template.replace(/[.*+?^${}()|[\]\\]/g, (c) => (c === '{' || c === '}' ? c : `\\${c}`)).replace(/\{[^}]+\}/g, '[^/]+')}/?$`),
    methods: HTTP_METHODS.filter((m) => m in item || (m === 'head' && 'get' in item)).map((m) => m.toUpperCase()),
  }));
}
