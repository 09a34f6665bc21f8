/**
 * A small raw zip writer for tests: local file headers, central directory, end record, deflate
 * from node:zlib. Unlike a real zip library it writes whatever it is told (names with `..` or
 * backslashes, symlink modes, sizes that lie), which is what hostile-archive tests need.
 */
import { createHash } from 'node:crypto';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import path from 'node:path';
import { createDeflateRaw, crc32, deflateRawSync } from 'node:zlib';

export interface Compressed {
  /** Bytes as stored in the archive. */
  data: Buffer;
  /** Real uncompressed size and CRC-32. */
  size: number;
  crc: number;
  method: 0 | 8;
}

export interface CraftEntry {
  /** Written byte for byte (UTF-8), unchecked. A name ending in `/` is a folder. */
  name: string;
  data?: Buffer | string | Compressed;
  /** Deflate (default) or store. Ignored when `data` is already Compressed. */
  method?: 'deflate' | 'store';
  /** Unix mode with type bits, e.g. 0o120777 for a symlink. Default 0o100644, or 0o040755 for folders. */
  mode?: number;
  /** Uncompressed size to write in both headers instead of the real one (a lying header). */
  declaredSize?: number;
}

const UTF8_FLAG = 0x0800;
const MADE_BY_UNIX = (3 << 8) | 20;

export function craftZip(entries: CraftEntry[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const c = compress(e);
    const name = Buffer.from(e.name, 'utf8');
    const size = e.declaredSize ?? c.size;
    const mode = e.mode ?? (e.name.endsWith('/') ? 0o040755 : 0o100644);

    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(UTF8_FLAG, 6);
    local.writeUInt16LE(c.method, 8);
    local.writeUInt16LE(0, 10); // time
    local.writeUInt16LE((2024 - 1980) << 9 | 1 << 5 | 1, 12); // date 2024-01-01
    local.writeUInt32LE(c.crc >>> 0, 14);
    local.writeUInt32LE(c.data.length, 18);
    local.writeUInt32LE(size, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(0, 28);
    locals.push(local, name, c.data);

    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(MADE_BY_UNIX, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(UTF8_FLAG, 8);
    central.writeUInt16LE(c.method, 10);
    central.writeUInt16LE(0, 12);
    central.writeUInt16LE((2024 - 1980) << 9 | 1 << 5 | 1, 14);
    central.writeUInt32LE(c.crc >>> 0, 16);
    central.writeUInt32LE(c.data.length, 20);
    central.writeUInt32LE(size, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt16LE(0, 30); // extra
    central.writeUInt16LE(0, 32); // comment
    central.writeUInt16LE(0, 34); // disk
    central.writeUInt16LE(0, 36); // internal attributes
    central.writeUInt32LE((mode << 16) >>> 0, 38);
    central.writeUInt32LE(offset, 42);
    centrals.push(central, name);

    offset += local.length + name.length + c.data.length;
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(0, 4);
  end.writeUInt16LE(0, 6);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  end.writeUInt16LE(0, 20);
  return Buffer.concat([...locals, cd, end]);
}

function compress(e: CraftEntry): Compressed {
  if (e.data !== undefined && typeof e.data === 'object' && !Buffer.isBuffer(e.data)) return e.data;
  const raw = typeof e.data === 'string' ? Buffer.from(e.data, 'utf8') : (e.data ?? Buffer.alloc(0));
  if (e.method === 'store' || e.name.endsWith('/')) return { data: raw, size: raw.length, crc: crc32(raw), method: 0 };
  return { data: deflateRawSync(raw), size: raw.length, crc: crc32(raw), method: 8 };
}

/** `bytes` zeros, deflated chunk by chunk (a zip bomb's payload without holding it in memory). */
export async function deflatedZeros(bytes: number): Promise<Compressed> {
  const chunk = Buffer.alloc(1024 * 1024);
  const deflate = createDeflateRaw({ level: 9 });
  const out: Buffer[] = [];
  deflate.on('data', (b: Buffer) => out.push(b));
  const done = new Promise<void>((resolve, reject) => {
    deflate.on('end', resolve);
    deflate.on('error', reject);
  });
  let crc = 0;
  for (let left = bytes; left > 0; left -= chunk.length) {
    const part = left >= chunk.length ? chunk : chunk.subarray(0, left);
    crc = crc32(part, crc);
    if (!deflate.write(part)) await new Promise((r) => deflate.once('drain', r));
  }
  deflate.end();
  await done;
  return { data: Buffer.concat(out), size: bytes, crc, method: 8 };
}

/** The files of a fake model folder: enough for the store and readManifest, not for ONNX Runtime. */
export function fakeModelFiles(gateway: Record<string, unknown> = {}): Record<string, string | Buffer> {
  return {
    'config.json': JSON.stringify({ architectures: ['BertForSequenceClassification'], max_position_embeddings: 128, id2label: { 0: 'neg', 1: 'pos' } }),
    'tokenizer.json': JSON.stringify({ version: '1.0', model: { type: 'WordPiece', vocab: { '[UNK]': 0 } } }),
    'gateway.json': JSON.stringify({ name: 'fake', version: '1', task: 'text-classification', output: 'softmax', description: 'test fixture', ...gateway }),
    'model.onnx': Buffer.from('not really onnx: placeholder bytes for the store tests'),
  };
}

/** A well-formed model zip; `top` puts everything under one folder, as `zip -r m.zip m/` does. */
export function fakeModelZip(opts: { top?: string; files?: Record<string, string | Buffer> } = {}): Buffer {
  const files = opts.files ?? fakeModelFiles();
  const prefix = opts.top ? `${opts.top}/` : '';
  const entries: CraftEntry[] = opts.top ? [{ name: prefix }] : [];
  for (const [name, data] of Object.entries(files)) entries.push({ name: prefix + name, data });
  return craftZip(entries);
}

/** Every path under `dir` with its kind and content hash, sorted: compare before and after a failure. */
export async function listTree(dir: string): Promise<string[]> {
  const out: string[] = [];
  async function walk(rel: string): Promise<void> {
    for (const d of await readdir(path.join(dir, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${d.name}` : d.name;
      const full = path.join(dir, r);
      const st = await lstat(full);
      if (st.isSymbolicLink()) out.push(`${r} -> ${await readlink(full)}`);
      else if (st.isDirectory()) {
        out.push(`${r}/`);
        await walk(r);
      } else out.push(`${r} ${st.size} ${createHash('sha1').update(await readFile(full)).digest('hex').slice(0, 12)}`);
    }
  }
  await walk('');
  return out.sort();
}
