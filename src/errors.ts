/**
 * The gateway's one error vocabulary (../shared/API.md, "Errors"). Every layer throws
 * GatewayError; the error handler turns it into `{ error: { code, message, details? } }`.
 */
export const ERROR_STATUS = {
  invalid_request: 400,
  unauthorized: 401,
  model_not_found: 404,
  route_not_found: 404,
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
  internal_error: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export class GatewayError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details?: unknown;
  /** Seconds, sent as Retry-After on 429/503. */
  readonly retryAfter?: number;

  constructor(code: ErrorCode, message: string, opts: { details?: unknown; retryAfter?: number; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'GatewayError';
    this.code = code;
    this.status = ERROR_STATUS[code];
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
