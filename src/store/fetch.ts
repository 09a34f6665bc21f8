/**
 * Getting a model zip onto local disk: from S3 (retried with backoff, with a timeout that also
 * covers a body stream that stops sending, aws-sdk-js-v3 #4897/#8098) or from a local file.
 * Every byte is hashed as it is written, so verifying needs no second read.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { once } from 'node:events';
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
  /** Attempts that continued a partial file with a Range request. */
  resumed: number;
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

/**
 * Downloads `loc` to `dest`. A retry after a cut or stalled body resumes where the file ends
 * (Range, with If-Match on the first answer's ETag so a replaced object starts over from zero);
 * a server that ignores Range (200) also starts over. The sha256 covers the whole file.
 */
export async function downloadS3Object(
  client: S3Client,
  loc: S3Location,
  dest: string,
  opts: DownloadOptions & { maxBytes: number },
  onRetry?: (info: RetryInfo) => void,
): Promise<Downloaded> {
  let etag: string | undefined;
  let resumed = 0;
  const { value, attempts } = await withRetries(opts, onRetry, async () => {
    const have = etag === undefined ? 0 : await fileSize(dest);
    const range = have > 0 ? `bytes=${have}-` : undefined;
    // Hash what is already on disk before the clock starts: the stall timer is for the network.
    const prefix = range ? await hashPrefix(dest, have) : undefined;
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
        const cmd = new GetObjectCommand({ Bucket: loc.bucket, Key: loc.key, Range: range, IfMatch: range ? etag : undefined });
        res = await client.send(cmd, { abortSignal: ac.signal });
      } catch (err) {
        if (ac.signal.aborted) throw ac.signal.reason;
        const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
        if (range && (status === 412 || status === 416)) {
          // 412: If-Match failed, the object was replaced. 416: nothing left to fetch past our end.
          etag = undefined;
          throw new FetchError(`resume refused (HTTP ${status}); starting over`, true, { cause: err });
        }
        throw err;
      }
      body = res.Body as Readable | undefined;
      if (!body) throw new FetchError('S3 answered without a body', true);
      const partial = range !== undefined && res.$metadata.httpStatusCode === 206 && res.ContentRange?.startsWith(`bytes ${have}-`) === true;
      if (partial && res.ETag !== etag) {
        // A server that ignores If-Match: never splice two versions of an object.
        body.destroy();
        etag = undefined;
        throw new FetchError('object changed during the download; starting over', true);
      }
      const offset = partial ? have : 0;
      const total = partial ? Number(res.ContentRange?.split('/')[1]) : res.ContentLength;
      if (total !== undefined && Number.isFinite(total) && total > opts.maxBytes) {
        body.destroy();
        throw new FetchError(`object is ${total} bytes, over the limit of ${opts.maxBytes}`, false);
      }
      etag = res.ETag;
      const hashed = new HashingCounter(opts.maxBytes, arm, partial ? { bytes: offset, hash: prefix as Hash } : undefined);
      if (partial) resumed += 1;
      const out = createWriteStream(dest, { flags: partial ? 'a' : 'w', mode: 0o600 });
      try {
        await pipeline(body, hashed, out);
      } catch (err) {
        // The next attempt measures the file to resume from it: let in-flight writes land first.
        if (!out.closed) await once(out, 'close').catch(() => undefined);
        throw err;
      }
      if (total !== undefined && Number.isFinite(total) && hashed.bytes !== total) {
        throw new FetchError(`body ended after ${hashed.bytes} of ${total} bytes`, true);
      }
      return { bytes: hashed.bytes, sha256: hashed.digest(), etag: res.ETag };
    } finally {
      clearTimeout(timer);
    }
  });
  return { ...value, attempts, resumed };
}

async function fileSize(file: string): Promise<number> {
  try {
    return (await stat(file)).size;
  } catch {
    return 0;
  }
}

/** sha256 state after the first `bytes` of `file` (kept on disk from an earlier attempt). */
async function hashPrefix(file: string, bytes: number): Promise<Hash> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file, { start: 0, end: bytes - 1 })) hash.update(chunk as Buffer);
  return hash;
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
  bytes: number;
  private readonly hash: Hash;
  constructor(
    private readonly maxBytes: number,
    private readonly onData?: () => void,
    /** What a resumed download already has on disk. */
    start?: { bytes: number; hash: Hash },
  ) {
    super();
    this.bytes = start?.bytes ?? 0;
    this.hash = start?.hash ?? createHash('sha256');
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
