import type { onRequestHookHandler, RouteHandlerMethod, RouteOptions } from 'fastify';
import { prepareBody } from '../plugins/json-body.ts';
import { PUBLIC_OPERATIONS, STREAMING_OPERATIONS, toRouteHandler, type Handlers, type OperationId, type StreamingOperation } from './handlers.ts';
import { operationAt, parameterNames, requiresBearer, type OpenApiDocument } from './spec.ts';

export interface BindingOptions {
  /** The handler map: one function per non-streaming operation. */
  handlers: Handlers;
  /** Fastify handlers of the operations that answer with a stream. */
  streams: Record<StreamingOperation, RouteHandlerMethod>;
  /** The onRequest hooks of every operation that needs a token (authentication, then per-user limits). */
  authenticate: onRequestHookHandler[];
  deadlineMs?: number | undefined;
}

/**
 * fastify-openapi-glue's operationResolver: what each operationId of the contract runs.
 * The policy lives here, beside the handler map: public or authenticated (checked against
 * the contract's `security`, so the two cannot drift), a required body's presence and its
 * text checked before validation, the contract's header parameters handed over by name.
 */
export function bindOperations(spec: OpenApiDocument, options: BindingOptions) {
  const streaming = new Set<string>(STREAMING_OPERATIONS);
  const isPublic = new Set<string>(PUBLIC_OPERATIONS);
  return (operationId: string, method: string, path: string): RouteOptions => {
    const op = operationAt(spec, path, method);
    if (!op || !(operationId in options.handlers || streaming.has(operationId))) throw new Error(`No handler for operation ${operationId}`);
    const open = isPublic.has(operationId);
    if (open === requiresBearer(spec, op)) {
      throw new Error(`${operationId}: openapi.yaml and PUBLIC_OPERATIONS disagree on whether it needs a token`);
    }
    const bodyRequired = op.requestBody !== undefined && !('$ref' in op.requestBody) && op.requestBody.required === true;
    // Glue adds the method, URL and schema; a typo in these options is a compile error.
    const route = {
      handler: streaming.has(operationId)
        ? options.streams[operationId as StreamingOperation]
        : toRouteHandler(operationId as Exclude<OperationId, StreamingOperation>, options.handlers, {
            deadlineMs: options.deadlineMs,
            headerNames: parameterNames(spec, path, op, 'header'),
          }),
      ...(op.requestBody !== undefined && { preValidation: prepareBody(bodyRequired) }),
      // onRequest: a request without valid credentials is refused before its body is read.
      ...(open ? {} : { onRequest: options.authenticate }),
    } satisfies Partial<RouteOptions>;
    return route as unknown as RouteOptions; // (glue types it as a whole route)
  };
}
