/**
 * Getting a model zip onto local disk: from S3 (retried with backoff, with a timeout that also
 * covers a body stream that stops sending, aws-sdk-js-v3 #4897/#8098) or from a local file.
 * Every byte is hashed as it is written, so verifying needs no second read.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { Transform, Writable, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { GetObjectCommand, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';

export interface S3Options {
  /** e.g. http://127.0.0.1:9000 for MinIO or s3rver; AWS itself when absent. */
  endpoint?: string;
  region: string;
  forcePathStyle: boolean;
}

export interface DownloadOptions {
  /** Attempts after the first one, for network errors, 5xx/429 and stalled or cut bodies. */
  retries: number;
  /** First backoff; doubled each retry (with jitter), capped at MAX_BACKOFF_MS. */
  backoffMs: number;
  /** No response, or no body bytes, for this long: the attempt is abandoned and retried. */
  timeoutMs: number;
}

export const MAX_BACKOFF_MS = 30_000;

export interface S3Location {
  bucket: string;
  key: string;
}

export interface Written {
  bytes: number;
  sha256: string;
}

export interface Downloaded extends Written {
  etag?: string;
  attempts: number;
}

export interface RemoteVersion {
  etag?: string;
  size?: number;
}

export interface RetryInfo {
  attempt: number;
  delayMs: number;
  reason: string;
}

/** A download that failed for good; `retryable` says whether it was still failing after retries. */
export class FetchError extends Error {
  readonly status?: number;
  constructor(
    message: string,
    readonly retryable: boolean,
    opts: { cause?: unknown; status?: number } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'FetchError';
    this.status = opts.status;
  }
}

export function parseS3Url(source: string): S3Location | null {
  const m = /^s3:\/\/([^/]+)\/(.+)$/.exec(source);
  if (!m) return null;
  return { bucket: m[1], key: m[2] };
}

/**
 * One client per store. Credentials come from the SDK's default chain (environment, shared
 * files, instance roles), never from our config. The SDK's own retries are off: ours also
 * cover the body stream, which the SDK's do not.
 */
export function createS3Client(s3: S3Options, download: DownloadOptions): S3Client {
  return new S3Client({
    region: s3.region,
    endpoint: s3.endpoint,
    forcePathStyle: s3.forcePathStyle,
    maxAttempts: 1,
    // s3rver, MinIO and older S3-compatible servers reject the newer default checksum headers.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // Only the connect phase here: our own timer in downloadS3Object covers the wait for headers
    // and every gap in the body, whatever the handler version does with socket timeouts.
    requestHandler: { connectionTimeout: download.timeoutMs },
  });
}

/** ETag and size, to tell whether a cached copy is still current when no sha256 is pinned. */
export async function headS3Object(
  client: S3Client,
  loc: S3Location,
  opts: DownloadOptions,
  onRetry?: (info: RetryInfo) => void,
): Promise<RemoteVersion> {
  const { value } = await withRetries(opts, onRetry, async () => {
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(new StallError(`no answer to HEAD within ${opts.timeoutMs} ms`)), opts.timeoutMs);
    try {
      const res = await client.send(new HeadObjectCommand({ Bucket: loc.bucket, Key: loc.key }), { abortSignal: ac.signal });
      return { etag: res.ETag, size: res.ContentLength };
    } catch (err) {
      throw ac.signal.aborted ? ac.signal.reason : err;
    } finally {
      clearTimeout(timer);
    }
  });
  return value;
}

/** Downloads `loc` to `dest` (created, never overwritten), restarting from zero on each retry. */
export async function downloadS3Object(
  client: S3Client,
  loc: S3Location,
  dest: string,
  opts: DownloadOptions & { maxBytes: number },
  onRetry?: (info: RetryInfo) => void,
): Promise<Downloaded> {
  const { value, attempts } = await withRetries(opts, onRetry, async () => {
    const ac = new AbortController();
    let body: Readable | undefined;
    let timer: NodeJS.Timeout | undefined;
    const arm = (): void => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        const err = new StallError(body ? `body stalled: no bytes for ${opts.timeoutMs} ms` : `no response within ${opts.timeoutMs} ms`);
        ac.abort(err);
        body?.destroy(err);
      }, opts.timeoutMs);
    };
    arm();
    try {
      let res;
      try {
        res = await client.send(new GetObjectCommand({ Bucket: loc.bucket, Key: loc.key }), { abortSignal: ac.signal });
      } catch (err) {
        throw ac.signal.aborted ? ac.signal.reason : err;
      }
      body = res.Body as Readable | undefined;
      if (!body) throw new FetchError('S3 answered without a body', true);
      if (res.ContentLength !== undefined && res.ContentLength > opts.maxBytes) {
        body.destroy();
        throw new FetchError(`object is ${res.ContentLength} bytes, over the limit of ${opts.maxBytes}`, false);
      }
      const hashed = new HashingCounter(opts.maxBytes, arm);
      // 'w': a retry starts the file again from zero.
      await pipeline(body, hashed, createWriteStream(dest, { flags: 'w', mode: 0o600 }));
      if (res.ContentLength !== undefined && hashed.bytes !== res.ContentLength) {
        throw new FetchError(`body ended after ${hashed.bytes} of ${res.ContentLength} bytes`, true);
      }
      return { bytes: hashed.bytes, sha256: hashed.digest(), etag: res.ETag };
    } finally {
      clearTimeout(timer);
    }
  });
  return { ...value, attempts };
}

/** Copies a local file to `dest`, hashing on the way. */
export async function copyLocalFile(src: string, dest: string, maxBytes: number): Promise<Written> {
  const hashed = new HashingCounter(maxBytes);
  await pipeline(createReadStream(src), hashed, createWriteStream(dest, { flags: 'wx', mode: 0o600 }));
  return { bytes: hashed.bytes, sha256: hashed.digest() };
}

export async function sha256File(file: string): Promise<Written> {
  const hashed = new HashingCounter(Number.POSITIVE_INFINITY);
  const discard = new Writable({ write: (_chunk, _enc, cb) => cb() });
  await pipeline(createReadStream(file), hashed, discard);
  return { bytes: hashed.bytes, sha256: hashed.digest() };
}

class StallError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StallError';
  }
}

/** Passes bytes through, hashing and counting them; calls `onData` on each chunk (the stall timer). */
class HashingCounter extends Transform {
  bytes = 0;
  private readonly hash = createHash('sha256');
  constructor(
    private readonly maxBytes: number,
    private readonly onData?: () => void,
  ) {
    super();
  }

  digest(): string {
    return this.hash.digest('hex');
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.onData?.();
    this.bytes += chunk.length;
    if (this.bytes > this.maxBytes) {
      cb(new FetchError(`download passed the limit of ${this.maxBytes} bytes`, false));
      return;
    }
    this.hash.update(chunk);
    cb(null, chunk);
  }
}

const NETWORK_CODES = new Set([
  'ECONNRESET', 'ECONNREFUSED', 'ECONNABORTED', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN',
  'EHOSTUNREACH', 'ENETUNREACH', 'ENETDOWN', 'EHOSTDOWN', 'ERR_STREAM_PREMATURE_CLOSE', 'UND_ERR_SOCKET',
]);

/** Whether another attempt may help, and a one-line reason that never holds credentials. */
export function classify(err: unknown): { retryable: boolean; reason: string; status?: number } {
  const e = err as { name?: string; message?: string; code?: string; $metadata?: { httpStatusCode?: number } };
  if (err instanceof FetchError) return { retryable: err.retryable, reason: err.message, status: err.status };
  if (err instanceof StallError) return { retryable: true, reason: err.message };
  const status = e.$metadata?.httpStatusCode;
  if (status !== undefined) {
    const what = `HTTP ${status} ${e.name ?? ''}`.trim();
    if (status >= 500 || status === 429 || status === 408) return { retryable: true, reason: `${what}: ${e.message}`, status };
    if (status === 404) return { retryable: false, reason: `not found (${what}); check the bucket and key`, status };
    if (status === 403) return { retryable: false, reason: `access denied (${what}); check the credentials and the bucket policy`, status };
    return { retryable: false, reason: `${what}: ${e.message}`, status };
  }
  if (e.name === 'CredentialsProviderError') {
    return { retryable: false, reason: `no AWS credentials: ${e.message} (set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or another source of the default chain)` };
  }
  const code = e.code ?? (e as { cause?: { code?: string } }).cause?.code;
  if (
    (code && NETWORK_CODES.has(code)) ||
    e.name === 'TimeoutError' ||
    e.message === 'aborted' ||
    /socket hang up|premature close/i.test(e.message ?? '')
  ) {
    return { retryable: true, reason: `network error: ${code ?? e.name}: ${e.message}` };
  }
  return { retryable: false, reason: `${e.name ?? 'Error'}: ${e.message ?? String(err)}` };
}

async function withRetries<T>(
  opts: DownloadOptions,
  onRetry: ((info: RetryInfo) => void) | undefined,
  attempt: () => Promise<T>,
): Promise<{ value: T; attempts: number }> {
  for (let n = 1; ; n += 1) {
    try {
      return { value: await attempt(), attempts: n };
    } catch (err) {
      const { retryable, reason, status } = classify(err);
      if (!retryable) throw new FetchError(reason, false, { cause: err, status });
      if (n > opts.retries) {
        throw new FetchError(`${reason} (gave up after ${n} attempt${n === 1 ? '' : 's'})`, true, { cause: err, status });
      }
      const base = Math.min(MAX_BACKOFF_MS, opts.backoffMs * 2 ** (n - 1));
      const delayMs = Math.round(base / 2 + (Math.random() * base) / 2);
      onRetry?.({ attempt: n, delayMs, reason });
      await sleep(delayMs);
    }
  }
}
