import fp from 'fastify-plugin';
import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import { GatewayError, type ErrorCode } from '../../errors.ts';

/** The one place where error codes become HTTP statuses (../shared/API.md, "Errors"). */
export const HTTP_STATUS: Record<ErrorCode, number> = {
  invalid_request: 400,
  unauthorized: 401,
  forbidden: 403,
  model_not_found: 404,
  not_found: 404,
  route_not_found: 404,
  conflict: 409,
  too_large: 413,
  unsupported_media_type: 415,
  unprocessable_input: 422,
  wrong_task: 422,
  rate_limited: 429,
  not_ready: 503,
  overloaded: 503,
  draining: 503,
  deadline_exceeded: 503,
  inference_failed: 503,
  degraded: 503,
  model_error: 500,
  internal_error: 500,
};

export interface ErrorBody {
  error: { code: ErrorCode; message: string; details?: unknown };
}

const BY_STATUS: Record<number, ErrorCode> = {
  400: 'invalid_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'route_not_found',
  413: 'too_large',
  415: 'unsupported_media_type',
  422: 'unprocessable_input',
  429: 'rate_limited',
  503: 'not_ready',
};

interface ValidationIssue {
  instancePath?: string;
  message?: string;
  params?: Record<string, unknown>;
  keyword?: string;
}

/** Turns a schema validation failure into one sentence naming the field, like `body.question: must be string`. */
export function describeValidation(context: string | undefined, issues: ValidationIssue[]): string {
  const parts = issues.slice(0, 3).map((e) => {
    const missing = e.params?.requiredProperties ?? e.params?.missingProperty;
    const base = `${context ?? 'body'}${(e.instancePath ?? '').replace(/\//g, '.')}`;
    if (missing) return `${base}: missing required field ${[missing].flat().map((m) => `"${m}"`).join(', ')}`;
    return `${base}: ${e.message ?? 'is invalid'}`;
  });
  return parts.join('; ') || 'request does not match the schema';
}

export function toGatewayError(err: FastifyError | GatewayError | Error, ctx: { bodyLimit?: number } = {}): GatewayError {
  if (err instanceof GatewayError) return err;
  const fe = err as FastifyError & { validation?: ValidationIssue[]; validationContext?: string };
  if (fe.validation) return new GatewayError('invalid_request', describeValidation(fe.validationContext, fe.validation));
  switch (fe.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new GatewayError('too_large', ctx.bodyLimit ? `request body is over the limit of ${ctx.bodyLimit} bytes` : 'request body is over the size limit', { details: { limit: ctx.bodyLimit } });
    case 'FST_REQ_FILE_TOO_LARGE':
      return new GatewayError('too_large', ctx.bodyLimit ? `uploaded file is over the limit of ${ctx.bodyLimit} bytes` : 'uploaded file is over the size limit', { details: { limit: ctx.bodyLimit } });
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new GatewayError('unsupported_media_type', 'unsupported content type; send application/json (or multipart/form-data for file uploads)');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new GatewayError('invalid_request', 'body is empty; send a JSON object');
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new GatewayError('invalid_request', 'body is not valid JSON');
  }
  if (err instanceof SyntaxError) return new GatewayError('invalid_request', 'body is not valid JSON');
  const status = fe.statusCode ?? 500;
  const code = BY_STATUS[status];
  if (code && status < 500) return new GatewayError(code, fe.message);
  if (status === 429) return new GatewayError('rate_limited', 'rate limit reached; retry later', { retryAfter: 1 });
  return new GatewayError('internal_error', 'internal error; the request id is in the x-request-id header');
}

/**
 * Routes of the Open Inference Protocol (KServe v2), whose errors have the protocol's own body: /v2 itself,
 * /v2/health/..., /v2/models/... and anything else under /v2 that is no route (Cohere's /v2/rerank is not one
 * of them: it keeps the gateway's body).
 */
export const V2_ROUTE = /^\/v2(\/?(\?|$)|\/(health|models)(\/|\?|$)|\/(?!rerank(\/|\?|$)))/;

/** The KServe v2 error body: `{ "error": "<message>" }` (the status and Retry-After are the gateway's). */
export interface V2ErrorBody {
  error: string;
}

export function sendError(reply: FastifyReply, e: GatewayError): FastifyReply {
  reply.server.metrics?.errors.inc({ code: e.code });
  const body: ErrorBody | V2ErrorBody = V2_ROUTE.test(reply.request.url)
    ? { error: e.message }
    : { error: { code: e.code, message: e.message, ...(e.details === undefined ? {} : { details: e.details }) } };
  const status = HTTP_STATUS[e.code];
  if (e.retryAfter !== undefined && (status === 429 || status === 503)) reply.header('retry-after', String(Math.max(1, Math.ceil(e.retryAfter))));
  return reply.status(status).send(body);
}

const ROUTINE_REFUSALS = new Set<ErrorCode>(['overloaded', 'draining']);

/** One error body on every route; no internals on 5xx (they are logged with the request id instead). */
async function errorsPlugin(app: FastifyInstance) {
  app.setErrorHandler((err: FastifyError | GatewayError, request, reply) => {
    const e = toGatewayError(err, { bodyLimit: app.config?.server.bodyLimitBytes });
    const status = HTTP_STATUS[e.code];
    if (e.code === 'internal_error') request.log.error({ err }, 'unhandled error');
    // Refusals by design (queue full, draining) are in the access log line and gateway_errors_total; a warn
    // line for each would double the log exactly when the event loop can least afford it (4x overload).
    else if (status >= 500 && !ROUTINE_REFUSALS.has(e.code)) request.log.warn({ code: e.code, msg: e.message, cause: (e.cause as Error | undefined)?.message }, 'request failed');
    return sendError(reply, e);
  });
  app.setNotFoundHandler((request, reply) =>
    sendError(reply, new GatewayError('route_not_found', `no route ${request.method} ${request.url.split('?')[0]}; see /docs`)),
  );
}

export default fp(errorsPlugin, { name: 'errors' });
