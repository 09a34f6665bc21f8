/**
 * Safe unzip of a model archive into an empty folder. Archives are untrusted input: names are
 * checked before anything is written, only regular files and folders are created, and sizes are
 * counted as bytes come out of the decompressor, never taken from headers (zip bombs lie).
 */
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import yauzl from 'yauzl';

export interface UnpackLimits {
  /** Most entries (files and folders) an archive may hold. */
  maxEntries: number;
  /** Most bytes all files together may expand to. */
  maxUncompressedBytes: number;
  /** Most bytes one file may expand to. */
  maxEntryBytes: number;
}

export interface UnpackResult {
  files: number;
  bytes: number;
}

/** Thrown for every archive that is refused; the message says which entry and which rule. */
export class UnsafeArchiveError extends Error {
  constructor(message: string, opts: { cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'UnsafeArchiveError';
  }
}

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;

/** Why `name` may not be written, or null when it is a plain relative path. */
export function unsafeEntryName(name: string): string | null {
  if (name.length === 0) return 'empty name';
  if (name.includes('\0')) return 'NUL byte in name';
  if (name.includes('\\')) return 'backslash in name';
  if (name.startsWith('/')) return 'absolute path';
  if (/^[a-zA-Z]:/.test(name)) return 'drive letter';
  const parts = name.replace(/\/$/, '').split('/');
  if (parts.some((p) => p === '..')) return 'parent folder segment (..)';
  if (parts.some((p) => p === '.' || p === '')) return 'empty or "." segment';
  return null;
}

/** File type from the Unix mode in the upper half of the external attributes (0 when absent). */
function unixType(entry: yauzl.Entry): number {
  return ((entry.externalFileAttributes >>> 16) & S_IFMT) >>> 0;
}

/**
 * Unpacks `zipPath` into `dest` (which must exist and be empty). Rejects, before writing it,
 * any entry whose name could land outside `dest` (`..`, absolute, drive letter, backslash),
 * symlinks and other special files, duplicate names, encrypted entries; stops as soon as a
 * file or the total grows past its limit. On error `dest` may hold partial output: the caller
 * owns it and deletes it.
 */
export async function unpackZip(zipPath: string, dest: string, limits: UnpackLimits): Promise<UnpackResult> {
  let zip: yauzl.ZipFile;
  try {
    // strictFileNames: a backslash is an error, not silently turned into a separator.
    zip = await yauzl.openPromise(zipPath, { lazyEntries: true, strictFileNames: true, validateEntrySizes: true, autoClose: true });
  } catch (err) {
    throw new UnsafeArchiveError(`not a readable zip (truncated or corrupt?): ${(err as Error).message}`, { cause: err });
  }
  // Errors are taken from the iterator and the streams; a late one must not crash the process.
  zip.on('error', () => {});
  if (zip.entryCount > limits.maxEntries) {
    zip.close();
    throw new UnsafeArchiveError(`too many entries: the archive declares ${zip.entryCount}, the limit is ${limits.maxEntries}`);
  }

  const root = path.resolve(dest);
  const seen = new Map<string, 'file' | 'dir'>();
  let entries = 0;
  let files = 0;
  let total = 0;

  const iterator = zip.eachEntry();
  try {
    for (;;) {
      let next: IteratorResult<yauzl.Entry>;
      try {
        next = await iterator.next();
      } catch (err) {
        // yauzl validates names (zip-slip) and headers while reading the central directory.
        const msg = (err as Error).message;
        const unsafe = /invalid relative path|absolute path|invalid characters in fileName/.test(msg);
        throw new UnsafeArchiveError(`${unsafe ? 'unsafe entry name' : 'unreadable entry'}: ${msg}`, { cause: err });
      }
      if (next.done) break;
      const entry = next.value;
      entries += 1;
      if (entries > limits.maxEntries) {
        throw new UnsafeArchiveError(`too many entries: more than ${limits.maxEntries}`);
      }

      const name = entry.fileName;
      const why = unsafeEntryName(name);
      if (why) throw new UnsafeArchiveError(`unsafe entry name "${name}": ${why}`);
      const isDir = name.endsWith('/');
      const type = unixType(entry);
      if (type === S_IFLNK) throw new UnsafeArchiveError(`entry "${name}" is a symbolic link; links are not allowed`);
      if (type !== 0 && type !== (isDir ? S_IFDIR : S_IFREG)) {
        throw new UnsafeArchiveError(`entry "${name}" is not a regular ${isDir ? 'folder' : 'file'} (file type 0o${type.toString(8)})`);
      }
      if (entry.isEncrypted()) throw new UnsafeArchiveError(`entry "${name}" is encrypted`);

      const key = name.replace(/\/$/, '');
      const target = path.resolve(root, key);
      const rel = path.relative(root, target);
      if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) {
        throw new UnsafeArchiveError(`unsafe entry name "${name}": resolves outside the model folder`);
      }
      // Every parent must be (or become) a folder, never a file seen earlier, and no name twice.
      const segments = key.split('/');
      for (let i = 1; i < segments.length; i += 1) {
        const parent = segments.slice(0, i).join('/');
        if (seen.get(parent) === 'file') throw new UnsafeArchiveError(`entry "${name}" is inside "${parent}", which is a file`);
        seen.set(parent, 'dir');
      }
      const before = seen.get(key);
      if (before === 'file' || (before === 'dir' && !isDir)) throw new UnsafeArchiveError(`duplicate entry "${key}"`);
      seen.set(key, isDir ? 'dir' : 'file');

      if (isDir) {
        await mkdir(target, { recursive: true });
        continue;
      }
      // Headers are only a hint: refuse early when they already admit to too much, then count.
      if (entry.uncompressedSize > limits.maxEntryBytes) {
        throw new UnsafeArchiveError(`entry "${name}" declares ${entry.uncompressedSize} bytes, over the per-file limit of ${limits.maxEntryBytes}`);
      }
      await mkdir(path.dirname(target), { recursive: true });
      let input;
      try {
        input = await zip.openReadStreamPromise(entry);
      } catch (err) {
        throw new UnsafeArchiveError(`cannot read entry "${name}": ${(err as Error).message}`, { cause: err });
      }
      const counter = new ByteLimit(name, limits, total);
      try {
        // 'wx': never overwrite, never follow a link at the target.
        await pipeline(input, counter, createWriteStream(target, { flags: 'wx', mode: 0o644 }));
      } catch (err) {
        if (err instanceof UnsafeArchiveError) throw err;
        const msg = (err as Error).message;
        if (/too many bytes in the stream/.test(msg)) {
          throw new UnsafeArchiveError(`entry "${name}" expands past the ${entry.uncompressedSize} bytes its header declares (zip bomb?)`, { cause: err });
        }
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new UnsafeArchiveError(`duplicate entry "${key}"`, { cause: err });
        throw new UnsafeArchiveError(`entry "${name}" is corrupt or truncated: ${msg}`, { cause: err });
      }
      total = counter.totalAfter;
      files += 1;
    }
  } finally {
    await iterator.return?.();
    zip.close();
  }
  return { files, bytes: total };
}

/** Passes bytes through and fails the moment a file or the archive grows past its limit. */
class ByteLimit extends Transform {
  private written = 0;
  constructor(
    private readonly name: string,
    private readonly limits: UnpackLimits,
    private readonly totalBefore: number,
  ) {
    super();
  }

  get totalAfter(): number {
    return this.totalBefore + this.written;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.written += chunk.length;
    if (this.written > this.limits.maxEntryBytes) {
      cb(new UnsafeArchiveError(`entry "${this.name}" expands past the per-file limit of ${this.limits.maxEntryBytes} bytes (zip bomb?)`));
    } else if (this.totalAfter > this.limits.maxUncompressedBytes) {
      cb(new UnsafeArchiveError(`archive expands past the total limit of ${this.limits.maxUncompressedBytes} bytes (at entry "${this.name}")`));
    } else {
      cb(null, chunk);
    }
  }
}
