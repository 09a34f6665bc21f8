/**
 * The gateway's one error vocabulary (../shared/API.md, "Errors"). Every layer throws GatewayError with a
 * code; the core never knows HTTP. The HTTP status of each code is decided in one place, the error plugin
 * (src/plugins/app/errors.ts), as TEI's router maps its core errors.
 */
export const ERROR_CODES = [
  'invalid_request',
  'unauthorized',
  'forbidden',
  'model_not_found',
  'not_found',
  'route_not_found',
  'conflict',
  'too_large',
  'unsupported_media_type',
  'unprocessable_input',
  'wrong_task',
  'rate_limited',
  'not_ready',
  'overloaded',
  'draining',
  'deadline_exceeded',
  'inference_failed',
  'degraded',
  'model_error',
  'internal_error',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export class GatewayError extends Error {
  readonly code: ErrorCode;
  readonly details?: unknown;
  /** Seconds, sent as Retry-After where the status allows a retry (429, 503). */
  readonly retryAfter?: number;

  constructor(code: ErrorCode, message: string, opts: { details?: unknown; retryAfter?: number; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'GatewayError';
    this.code = code;
    this.details = opts.details;
    this.retryAfter = opts.retryAfter;
  }
}

/** An error of the boot pipeline: names the model, the step and the cause. */
export class BootError extends Error {
  constructor(
    readonly model: string,
    readonly step: string,
    message: string,
    opts: { cause?: unknown } = {},
  ) {
    super(`model "${model}" failed at ${step}: ${message}`, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'BootError';
  }
}
