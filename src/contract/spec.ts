import { readFileSync } from 'node:fs';
import type { OpenAPIV3, OpenAPIV3_1 } from 'openapi-types';
import { parse } from 'yaml';
import { fileURLToPath } from 'node:url';

export const SPEC_PATH = fileURLToPath(new URL('../../openapi.yaml', import.meta.url));

/** openapi.yaml as written: the single source of truth for routes, validation and docs. */
export const specText: string = readFileSync(SPEC_PATH, 'utf8');

/** The contract as OpenAPI 3.1 describes it (openapi-types, the type @fastify/swagger uses); ours has paths and components. */
export type OpenApiDocument = OpenAPIV3_1.Document & Required<Pick<OpenAPIV3_1.Document, 'paths' | 'components'>>;
/** Every operation of ours has an operationId: fastify-openapi-glue binds handlers by it. */
export type OpenApiOperation = OpenAPIV3_1.OperationObject & { operationId: string };
type Parameter = OpenAPIV3_1.ParameterObject | OpenAPIV3_1.ReferenceObject;

/** A fresh deep copy each call: fastify-openapi-glue and @fastify/swagger annotate what they get. */
export function loadSpec(): OpenApiDocument {
  const spec = parse(specText) as OpenAPIV3_1.Document;
  if (spec.paths === undefined || spec.components === undefined) throw new Error(`${SPEC_PATH}: paths and components are required here`);
  return spec as OpenApiDocument;
}

export const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;

/** The operation at a path and method of the spec, if there is one. */
export function operationAt(spec: OpenApiDocument, path: string, method: string): OpenApiOperation | undefined {
  const op = spec.paths[path]?.[method.toLowerCase() as OpenAPIV3.HttpMethods];
  return typeof op?.operationId === 'string' ? (op as OpenApiOperation) : undefined;
}

/** Whether the operation needs a bearer token (its own `security`, else the document's). */
export function requiresBearer(spec: OpenApiDocument, op: OpenApiOperation): boolean {
  const requirements = op.security ?? spec.security ?? [];
  // An empty requirement object ({}) would make auth optional; the contract has none.
  return requirements.length > 0 && requirements.every((r) => 'bearerAuth' in r);
}

/** The names of the parameters `where` an operation declares (its own and its path's), as the contract spells them. */
export function parameterNames(spec: OpenApiDocument, path: string, op: OpenApiOperation, where: 'header' | 'query'): string[] {
  const resolve = (p: Parameter): Parameter | undefined => ('$ref' in p ? spec.components.parameters?.[p.$ref.split('/').pop() ?? ''] : p);
  return [...(spec.paths[path]?.parameters ?? []), ...(op.parameters ?? [])]
    .map(resolve)
    .filter((p): p is OpenAPIV3_1.ParameterObject => p !== undefined && !('$ref' in p) && p.in === where)
    .map((p) => p.name);
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
  return Object.entries(spec.paths).map(([template, item = {}]) => ({
    template,
    pattern: new RegExp(`^${template.replace(/[.*+?^${}()|[\]\\]/g, (c) => (c === '{' || c === '}' ? c : `\\${c}`)).replace(/\{[^}]+\}/g, '[^/]+')}/?$`),
    methods: HTTP_METHODS.filter((m) => m in item || (m === 'head' && 'get' in item)).map((m) => m.toUpperCase()),
  }));
}
