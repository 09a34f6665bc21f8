/**
 * Crafted archives (issue 7, "Hostile archives"): each one fails closed with a clear message,
 * writes nothing anywhere (the whole temp tree is listed before and after), and the good model
 * already in place stays as it was.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { BootError } from '../../src/errors.ts';
import { MARKER_FILE, ModelStore, type StoreOptions } from '../../src/store/model-store.ts';
import { craftZip, deflatedZeros, fakeModelFiles, fakeModelZip, listTree, type CraftEntry } from '../helpers/zip-craft.ts';

const MB = 1024 * 1024;
const stamp = `${process.pid}-${Date.now()}`;
/** Absolute targets outside the temp tree: checked separately, since listing / is not practical. */
const outsideAbs = path.join(os.tmpdir(), `zip-abs-${stamp}`);
const outsideDeep = path.join(os.tmpdir(), `zip-deep-${stamp}`);

let tmp: string;
let store: ModelStore;
let goodSha: string;

function options(root: string): StoreOptions {
  return {
    root,
    s3: { region: 'us-east-1', forcePathStyle: true },
    download: { retries: 0, backoffMs: 1, timeoutMs: 1000 },
    limits: { maxEntries: 10, maxUncompressedBytes: 50 * MB, maxEntryBytes: 20 * MB },
  };
}

beforeEach(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'store-hostile-'));
  await mkdir(path.join(tmp, 'src'));
  const good = fakeModelZip();
  goodSha = createHash('sha256').update(good).digest('hex');
  await writeFile(path.join(tmp, 'src', 'good.zip'), good);
  store = new ModelStore(options(path.join(tmp, 'models')));
  const placed = await store.ensure({ name: 'm', source: path.join(tmp, 'src', 'good.zip'), sha256: goodSha });
  expect(placed.fetched).toBe(true);
});

afterEach(async () => {
  store.close();
  await rm(tmp, { recursive: true, force: true });
});

/** Runs `ensure` on `zip` for the model in place and checks it failed closed with `message`. */
async function expectRefused(zip: Buffer, message: RegExp, opts: { step?: string; sha256?: string } = {}): Promise<void> {
  const file = path.join(tmp, 'src', 'evil.zip');
  await writeFile(file, zip);
  const before = await listTree(tmp);
  const err = await store.ensure({ name: 'm', source: file, sha256: opts.sha256 }).then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(BootError);
  const boot = err as BootError;
  expect(boot.model).toBe('m');
  expect(boot.step).toBe(opts.step ?? 'unpacking');
  expect(boot.message).toMatch(/^model "m" failed at \w+: /);
  expect(boot.message).toMatch(message);
  if (process.env.SHOW_MESSAGES) console.log(boot.message);
  // Nothing written, nothing left behind, nothing outside.
  expect(await listTree(tmp)).toEqual(before);
  expect(existsSync(outsideAbs)).toBe(false);
  expect(existsSync(outsideDeep)).toBe(false);
  // The good model is still in place, complete.
  const dir = path.join(tmp, 'models', 'm');
  expect(JSON.parse(await readFile(path.join(dir, MARKER_FILE), 'utf8')).sha256).toBe(goodSha);
  expect(await readFile(path.join(dir, 'config.json'), 'utf8')).toBe(fakeModelFiles()['config.json']);
  // ...and still served from cache.
  expect(await store.ensure({ name: 'm', source: path.join(tmp, 'src', 'good.zip'), sha256: goodSha })).toMatchObject({ fetched: false });
}

/** A good model's entries plus one hostile entry. */
function withEntry(entry: CraftEntry): Buffer {
  const files = Object.entries(fakeModelFiles()).map(([name, data]): CraftEntry => ({ name, data }));
  return craftZip([...files, entry]);
}

describe('zip-slip and unsafe names', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['parent folder', '../x', /unsafe entry name.*\.\.\/x/],
    ['parent after a folder', 'a/../../x', /invalid relative path|parent folder/],
    ['sibling model folder', '../m-evil/x', /invalid relative path|parent folder/],
    ['deep escape', `${'../'.repeat(12)}${outsideDeep.slice(1)}`, /invalid relative path|parent folder/],
    ['absolute path', outsideAbs, /absolute path/],
    ['backslash traversal', '..\\x', /invalid characters|backslash/],
    ['backslash inside', 'onnx\\model.onnx', /invalid characters|backslash/],
    ['drive letter', 'C:/x', /absolute path|drive letter/],
    ['dot segment', 'a/./b', /"\." segment/],
    ['empty segment', 'a//b', /empty or "\." segment/],
  ];
  test.each(cases)('%s (%s) is refused', async (_label, name, message) => {
    await expectRefused(withEntry({ name, data: 'pwned' }), message);
  });
});

describe('special entries', () => {
  test('a symlink entry is refused before anything follows it', async () => {
    const zip = craftZip([
      { name: 'config.json', data: '{}' },
      { name: 'link', data: '/etc', mode: 0o120777 },
      { name: 'link/passwd', data: 'pwned' },
    ]);
    await expectRefused(zip, /"link" is a symbolic link/);
  });

  test('a symlink folder entry is refused', async () => {
    await expectRefused(withEntry({ name: 'onnx/', mode: 0o120755 }), /"onnx\/" is a symbolic link/);
  });

  test('a fifo entry is refused', async () => {
    await expectRefused(withEntry({ name: 'pipe', data: '', mode: 0o010644 }), /not a regular file/);
  });

  test('a duplicate name is refused', async () => {
    await expectRefused(withEntry({ name: 'config.json', data: '{"evil":true}' }), /duplicate entry "config\.json"/);
  });

  test('a file and a folder with the same name are refused', async () => {
    await expectRefused(withEntry({ name: 'model.onnx/x', data: 'x' }), /inside "model\.onnx", which is a file/);
  });
});

describe('sizes and counts', () => {
  test('a zip bomb whose header lies about its size stops at the declared size', async () => {
    const zeros = await deflatedZeros(200 * MB);
    expect(zeros.data.length).toBeLessThan(MB); // 200 MB of zeros in a few hundred KB
    await expectRefused(withEntry({ name: 'bomb.bin', data: zeros, declaredSize: 1000 }), /"bomb\.bin" expands past the 1000 bytes its header declares/);
  });

  test('an entry that declares more than the per-file limit is refused unread', async () => {
    const zeros = await deflatedZeros(25 * MB);
    await expectRefused(withEntry({ name: 'big.bin', data: zeros }), /"big\.bin" declares 26214400 bytes, over the per-file limit of 20971520/);
  });

  test('entries that together expand past the total limit are stopped as they are written', async () => {
    const zeros = await deflatedZeros(15 * MB);
    const entries: CraftEntry[] = [1, 2, 3, 4].map((i) => ({ name: `part${i}.bin`, data: zeros }));
    await expectRefused(craftZip(entries), /archive expands past the total limit of 52428800 bytes \(at entry "part4\.bin"\)/);
  });

  test('too many entries are refused', async () => {
    const entries: CraftEntry[] = Array.from({ length: 11 }, (_, i) => ({ name: `f${i}.txt`, data: 'x' }));
    await expectRefused(craftZip(entries), /too many entries: the archive declares 11, the limit is 10/);
  });
});

describe('integrity', () => {
  test('a sha256 mismatch names both hashes', async () => {
    const other = fakeModelZip({ files: fakeModelFiles({ version: '2' }) });
    const actual = createHash('sha256').update(other).digest('hex');
    const wanted = 'ab'.repeat(32);
    await expectRefused(other, new RegExp(`sha256 mismatch for .*evil\\.zip: expected ${wanted}, got ${actual}`), { step: 'verifying', sha256: wanted });
  });

  test('a malformed configured sha256 is refused before reading anything', async () => {
    await expectRefused(fakeModelZip(), /configured sha256 "xyz" is not 64 hex digits/, { step: 'verifying', sha256: 'xyz' });
  });

  test('a truncated zip is refused', async () => {
    const zip = fakeModelZip({ files: fakeModelFiles({ version: '3' }) });
    await expectRefused(zip.subarray(0, Math.floor(zip.length / 2)), /not a readable zip \(truncated or corrupt\?\)/);
  });

  test('a corrupt deflate stream is refused', async () => {
    const zip = Buffer.from(fakeModelZip({ files: { ...fakeModelFiles(), 'model.onnx': Buffer.alloc(4096, 7) } }));
    // Flip bytes inside the first entry's compressed data (after its 30-byte header and name).
    for (let i = 45; i < 60; i += 1) zip[i] ^= 0xff;
    await expectRefused(zip, /corrupt or truncated|invalid|unreadable|too many bytes|not enough bytes|crc/i);
  });

  test('a file that is not a zip is refused', async () => {
    await expectRefused(Buffer.from('this is not a zip file at all'), /not a readable zip/);
  });
});
