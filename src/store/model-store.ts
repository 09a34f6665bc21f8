/**
 * The model store: makes a model's folder present and complete under `root`, from S3, a local
 * zip or a local folder. Downloads into `root/.staging/`, verifies, unpacks safely, then swaps
 * the finished folder into `root/<name>` with renames on one filesystem, so a reader sees the
 * old complete folder or the new complete folder, and a failure leaves the old one untouched.
 */
import { lstat, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import path from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { BootError } from '../errors.ts';
import {
  copyLocalFile,
  createS3Client,
  downloadS3Object,
  FetchError,
  headS3Object,
  MAX_BACKOFF_MS,
  parseS3Url,
  sha256File,
  type DownloadOptions,
  type RetryInfo,
  type S3Location,
  type S3Options,
  type Written,
} from './fetch.ts';
import { unpackZip, type UnpackLimits } from './unpack.ts';

export interface StoreLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export interface StoreOptions {
  /** Cache folder for unpacked models, e.g. var/models. Nothing is ever written outside it. */
  root: string;
  /** Credentials come from the AWS SDK's default chain (environment...), never from here. */
  s3: S3Options;
  download: DownloadOptions;
  limits: UnpackLimits;
  logger?: StoreLogger;
}

export interface ModelSource {
  name: string;
  /** Folder under the root to unpack into; the model's name when omitted (a new version of a running model gets its own). */
  folder?: string;
  /** `s3://bucket/key.zip`, a local `.zip` path, or a local folder already unpacked. */
  source: string;
  /** Hex sha256 of the zip. When given, the download must match it and a cached copy with it is reused. */
  sha256?: string;
}

export type StoreStep = 'downloading' | 'verifying' | 'unpacking';

export interface Ensured {
  /** Absolute path of the model folder. */
  dir: string;
  /** sha256 of the zip the folder came from; null for a local folder source. */
  sha256: string | null;
  /** True when this call downloaded and unpacked; false when the folder was already there. */
  fetched: boolean;
  /**
   * What identifies this content: the zip's sha256, or for a local folder a sha256 of its path and file list
   * (paths, sizes, modification times), so two folders, or one folder edited in place, never share a cache entry.
   */
  digest: string;
}

/** Recommended defaults; the gateway's config schema owns the real ones. */
export const DEFAULT_DOWNLOAD: DownloadOptions = { retries: 4, backoffMs: 500, timeoutMs: 30_000 };
export const DEFAULT_LIMITS: UnpackLimits = {
  maxEntries: 1_000,
  maxUncompressedBytes: 2 * 1024 ** 3,
  maxEntryBytes: 2 * 1024 ** 3,
};

/** Written into a model folder before it is moved into place: its presence means "complete". */
export const MARKER_FILE = '.gateway-store.json';
const STAGING = '.staging';
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const SHA256_RE = /^[0-9a-f]{64}$/;

interface Marker {
  source: string;
  sha256: string;
  etag?: string;
  bytes: number;
  files: number;
  unpackedBytes: number;
  unpackedAt: string;
}

export class ModelStore {
  private readonly root: string;
  private s3Client?: S3Client;
  /** One ensure per model name at a time, so two callers never race on the same folder. */
  private readonly queue = new Map<string, Promise<unknown>>();

  constructor(private readonly opts: StoreOptions) {
    this.root = path.resolve(opts.root);
  }

  /** Makes the model's folder present and complete; returns where it is. Calls onStep as it goes. */
  ensure(src: ModelSource, onStep?: (step: StoreStep) => void): Promise<Ensured> {
    const folder = src.folder ?? src.name;
    const prev = this.queue.get(folder) ?? Promise.resolve();
    const run = prev.catch(() => undefined).then(() => this.ensureNow(src, onStep));
    this.queue.set(folder, run);
    void run.catch(() => undefined).finally(() => {
      if (this.queue.get(folder) === run) this.queue.delete(folder);
    });
    return run;
  }

  /** Frees an unpacked model folder under the root (never anything outside it, such as a local folder source). */
  async remove(dir: string): Promise<boolean> {
    const abs = path.resolve(dir);
    if (path.dirname(abs) !== this.root || !NAME_RE.test(path.basename(abs))) return false;
    await rm(abs, { recursive: true, force: true });
    return true;
  }

  /** Folders of model versions added at run time (`<name>.r<n>`) that no running model uses: left by an earlier process. */
  async sweepVersions(inUse: Set<string>): Promise<string[]> {
    const removed: string[] = [];
    for (const entry of await readdir(this.root).catch(() => [] as string[])) {
      if (!/\.r\d+$/.test(entry) || inUse.has(path.join(this.root, entry))) continue;
      await rm(path.join(this.root, entry), { recursive: true, force: true }).catch(() => undefined);
      removed.push(entry);
    }
    return removed;
  }

  /** Releases the S3 client's sockets. */
  close(): void {
    this.s3Client?.destroy();
    this.s3Client = undefined;
  }

  private get s3(): S3Client {
    this.s3Client ??= createS3Client(this.opts.s3, this.opts.download);
    return this.s3Client;
  }

  private async ensureNow(src: ModelSource, onStep?: (step: StoreStep) => void): Promise<Ensured> {
    const { name } = src;
    const fail = (step: string, message: string, cause?: unknown): never => {
      throw new BootError(name, step, message, { cause });
    };
    const folder = src.folder ?? name;
    if (!NAME_RE.test(folder)) {
      fail('downloading', `model name must match ${NAME_RE} to be used as a folder name`);
    }
    const expected = src.sha256?.trim().toLowerCase();
    if (expected !== undefined && !SHA256_RE.test(expected)) {
      fail('verifying', `configured sha256 "${src.sha256}" is not 64 hex digits`);
    }

    const s3 = src.source.startsWith('s3://') ? parseS3Url(src.source) : null;
    if (src.source.startsWith('s3://') && !s3) fail('downloading', `bad S3 source "${src.source}"; expected s3://bucket/key.zip`);
    if (!s3 && /^[a-z][a-z0-9+.-]*:\/\//i.test(src.source)) {
      fail('downloading', `unsupported source "${src.source}"; use s3://bucket/key.zip, a local .zip or a local folder`);
    }

    let localZip: string | undefined;
    if (!s3) {
      const abs = path.resolve(src.source);
      const st = await stat(abs).catch((err: unknown) => fail('downloading', `source not found: ${abs}`, err));
      if (st.isDirectory()) {
        this.log('info', { model: name, source: abs }, 'model is a local folder; nothing to fetch');
        const digest = await folderDigest(abs).catch((err: unknown) => fail('downloading', `cannot read ${abs}: ${(err as Error).message}`, err));
        return { dir: abs, sha256: null, fetched: false, digest };
      }
      if (!st.isFile()) fail('downloading', `source is neither a file nor a folder: ${abs}`);
      localZip = abs;
    }

    const finalDir = path.join(this.root, folder);
    const current = await readMarker(finalDir);
    const cached = (sha256: string): Ensured => {
      this.log('info', { model: name, dir: finalDir, sha256 }, 'model already unpacked with this content; not fetching');
      return { dir: finalDir, sha256, fetched: false, digest: sha256 };
    };

    // Is what is in place already the wanted content?
    let localHash: Written | undefined;
    let remoteEtag: string | undefined;
    if (expected !== undefined) {
      if (current?.sha256 === expected) return cached(expected);
    } else if (localZip) {
      onStep?.('verifying');
      const t = performance.now();
      localHash = await sha256File(localZip).catch((err: unknown) => fail('verifying', `cannot read ${localZip}: ${(err as Error).message}`, err));
      this.log('info', { model: name, step: 'verifying', durationMs: ms(t), bytes: localHash.bytes }, 'hashed local zip');
      if (current?.sha256 === localHash.sha256) return cached(localHash.sha256);
    } else if (s3) {
      onStep?.('downloading');
      const head = await headS3Object(this.s3, s3, this.opts.download, this.onRetry(name, 'HEAD')).catch((err: unknown) =>
        fail('downloading', `${src.source}: ${(err as Error).message}`, err),
      );
      remoteEtag = head.etag;
      if (current && current.source === src.source && head.etag !== undefined && current.etag === head.etag && current.bytes === head.size) {
        return cached(current.sha256);
      }
    }

    const staging = path.join(this.root, STAGING);
    let work: string;
    try {
      await mkdir(staging, { recursive: true });
      await this.sweepStaging(staging);
      // '@' cannot occur in a model name, so the prefix never matches another model's folders.
      work = await mkdtemp(path.join(staging, `${folder}@`));
    } catch (err) {
      throw new BootError(name, 'downloading', `cannot create a staging folder in ${staging}: ${(err as Error).message}`, { cause: err });
    }
    let step: StoreStep = 'downloading';
    try {
      const zipPath = path.join(work, 'model.zip');
      const outDir = path.join(work, 'model');
      const { limits } = this.opts;
      // A zip is never much bigger than what it expands to; stop a runaway download early.
      const maxZipBytes = Math.ceil(limits.maxUncompressedBytes * 1.01) + limits.maxEntries * 1024 + 1024 ** 2;

      onStep?.(step);
      let t = performance.now();
      let got: Written & { etag?: string; attempts?: number; resumed?: number };
      if (s3) {
        got = await downloadS3Object(this.s3, s3, zipPath, { ...this.opts.download, maxBytes: maxZipBytes }, this.onRetry(name, 'GET'));
      } else {
        got = await copyLocalFile(localZip as string, zipPath, maxZipBytes);
      }
      this.log('info', { model: name, step, source: src.source, durationMs: ms(t), bytes: got.bytes, attempts: got.attempts, resumed: got.resumed }, 'downloaded');

      step = 'verifying';
      onStep?.(step);
      t = performance.now();
      const want = expected ?? localHash?.sha256;
      if (want !== undefined && got.sha256 !== want) {
        const what = expected !== undefined ? 'sha256 mismatch' : 'file changed while being read';
        throw new BootError(name, step, `${what} for ${src.source}: expected ${want}, got ${got.sha256}`);
      }
      this.log('info', { model: name, step, durationMs: ms(t), sha256: got.sha256, pinned: expected !== undefined }, 'verified');

      step = 'unpacking';
      onStep?.(step);
      t = performance.now();
      await mkdir(outDir);
      const unpacked = await unpackZip(zipPath, outDir, limits);
      await rm(zipPath, { force: true });
      const content = await contentRoot(outDir);
      const marker: Marker = {
        source: src.source,
        sha256: got.sha256,
        etag: got.etag ?? remoteEtag,
        bytes: got.bytes,
        files: unpacked.files,
        unpackedBytes: unpacked.bytes,
        unpackedAt: new Date().toISOString(),
      };
      await writeFile(path.join(content, MARKER_FILE), `${JSON.stringify(marker, null, 2)}\n`);
      await install(content, finalDir, path.join(work, 'previous'));
      this.log('info', { model: name, step, durationMs: ms(t), files: unpacked.files, bytes: unpacked.bytes, dir: finalDir }, 'unpacked and moved into place');
      return { dir: finalDir, sha256: got.sha256, fetched: true, digest: got.sha256 };
    } catch (err) {
      if (err instanceof BootError) throw err;
      const detail = err instanceof FetchError ? `${src.source}: ${err.message}` : (err as Error).message;
      throw new BootError(name, step, detail, { cause: err });
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }

  /**
   * Removes staging folders left by a process that died mid-download (an OOM kill in a crash
   * loop would otherwise fill the disk). A live one always has a file written within the stall
   * timeout plus the longest backoff, so anything untouched far longer than that is dead, even
   * when several gateways share the root.
   */
  private async sweepStaging(staging: string): Promise<void> {
    const { timeoutMs } = this.opts.download;
    const staleMs = Math.max(10 * 60_000, 3 * (timeoutMs + MAX_BACKOFF_MS));
    for (const entry of await readdir(staging).catch(() => [] as string[])) {
      const full = path.join(staging, entry);
      const newest = await newestMtime(full).catch(() => Date.now());
      if (Date.now() - newest > staleMs) {
        await rm(full, { recursive: true, force: true }).catch(() => undefined);
        this.log('warn', { folder: full, idleMs: Date.now() - newest }, 'removed a stale staging folder left by an interrupted download');
      }
    }
  }

  private onRetry(model: string, request: string): (info: RetryInfo) => void {
    return (info) => this.log('warn', { model, step: 'downloading', request, ...info }, 'S3 request failed; retrying');
  }

  private log(level: 'info' | 'warn', obj: object, msg: string): void {
    this.opts.logger?.[level](obj, msg);
  }
}

/** Zips made with `zip -r m.zip m/` hold one top folder with the model files inside: use that. */
async function contentRoot(dir: string): Promise<string> {
  const entries = await readdir(dir, { withFileTypes: true });
  if (entries.length !== 1 || !entries[0].isDirectory()) return dir;
  const inner = path.join(dir, entries[0].name);
  const names = await readdir(inner);
  return names.includes('config.json') || names.includes('gateway.json') ? inner : dir;
}

/**
 * Moves `ready` to `target`. If `target` exists it is first moved aside to `aside` (inside the
 * staging folder, deleted by the caller) and put back if the second rename fails.
 */
async function install(ready: string, target: string, aside: string): Promise<void> {
  await mkdir(path.dirname(target), { recursive: true });
  try {
    await rename(ready, target);
    return;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOTEMPTY' && code !== 'EEXIST' && code !== 'ENOTDIR' && code !== 'EISDIR') throw err;
  }
  await rename(target, aside);
  try {
    await rename(ready, target);
  } catch (err) {
    await rename(aside, target).catch(() => undefined);
    throw err;
  }
}

/** Latest modification time of `p` or anything below it (links are not followed). */
async function newestMtime(p: string): Promise<number> {
  const st = await lstat(p);
  let newest = st.mtimeMs;
  if (st.isDirectory()) {
    for (const child of await readdir(p)) newest = Math.max(newest, await newestMtime(path.join(p, child)));
  }
  return newest;
}

/** sha256 of a folder's place and file list: its absolute path, then relative path, size and modification time of every file. */
export async function folderDigest(root: string): Promise<string> {
  const lines: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const entry of await readdir(path.join(root, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory()) await walk(r);
      else if (entry.isFile()) {
        const st = await stat(path.join(root, r));
        lines.push(`${r}\t${st.size}\t${st.mtimeMs}`);
      }
    }
  };
  await walk('');
  return createHash('sha256').update([path.resolve(root), ...lines.sort()].join('\n')).digest('hex');
}

async function readMarker(dir: string): Promise<Marker | null> {
  try {
    const m = JSON.parse(await readFile(path.join(dir, MARKER_FILE), 'utf8')) as Partial<Marker>;
    if (typeof m.sha256 !== 'string' || typeof m.source !== 'string' || typeof m.bytes !== 'number') return null;
    return m as Marker;
  } catch {
    return null;
  }
}

function ms(since: number): number {
  return Math.round(performance.now() - since);
}

export type { DownloadOptions, S3Options, S3Location, UnpackLimits };
