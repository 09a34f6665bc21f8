/** ModelStore with local sources: zips, folders, caching by sha256, replacement in place. */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { BootError } from '../../src/errors.ts';
import { MARKER_FILE, ModelStore, type StoreOptions, type StoreStep } from '../../src/store/model-store.ts';
import { fakeModelFiles, fakeModelZip, listTree } from '../helpers/zip-craft.ts';

let tmp: string;
let root: string;
let logs: Array<{ level: string; obj: Record<string, unknown>; msg?: string }>;

function options(): StoreOptions {
  return {
    root,
    s3: { region: 'us-east-1', forcePathStyle: true },
    download: { retries: 0, backoffMs: 1, timeoutMs: 1000 },
    limits: { maxEntries: 100, maxUncompressedBytes: 10 * 1024 * 1024, maxEntryBytes: 10 * 1024 * 1024 },
    logger: {
      info: (obj, msg) => logs.push({ level: 'info', obj: obj as Record<string, unknown>, msg }),
      warn: (obj, msg) => logs.push({ level: 'warn', obj: obj as Record<string, unknown>, msg }),
    },
  };
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

async function writeZip(name: string, zip: Buffer): Promise<string> {
  const file = path.join(tmp, 'src', name);
  await writeFile(file, zip);
  return file;
}

beforeEach(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'store-local-'));
  root = path.join(tmp, 'models');
  await mkdir(path.join(tmp, 'src'));
  logs = [];
});

afterEach(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('local zip', () => {
  test('unpacks into root/<name>, deletes the zip, writes a marker, logs each step with its duration', async () => {
    const zip = fakeModelZip();
    const file = await writeZip('m.zip', zip);
    const steps: StoreStep[] = [];
    const store = new ModelStore(options());
    const res = await store.ensure({ name: 'clf', source: file, sha256: sha(zip).toUpperCase() }, (s) => steps.push(s));

    expect(res).toEqual({ dir: path.join(root, 'clf'), sha256: sha(zip), fetched: true, digest: sha(zip) });
    expect(steps).toEqual(['downloading', 'verifying', 'unpacking']);
    for (const [name, data] of Object.entries(fakeModelFiles())) {
      expect(await readFile(path.join(res.dir, name))).toEqual(Buffer.from(data));
    }
    const marker = JSON.parse(await readFile(path.join(res.dir, MARKER_FILE), 'utf8'));
    expect(marker).toMatchObject({ source: file, sha256: sha(zip), bytes: zip.length, files: 4 });
    // Only the model folder and an empty staging folder: the zip copy is gone.
    const tree = await listTree(root);
    expect(tree.filter((p) => !p.startsWith('clf/'))).toEqual(['.staging/']);
    expect(tree.filter((p) => p.endsWith('.zip') || p.includes('.zip '))).toEqual([]);
    expect(await readdir(path.join(root, '.staging'))).toEqual([]);
    const timed = logs.filter((l) => typeof l.obj.durationMs === 'number').map((l) => l.obj.step);
    expect(timed).toEqual(['downloading', 'verifying', 'unpacking']);
  });

  test('a second ensure with the same sha256 does not copy or unpack again, even from a new store', async () => {
    const zip = fakeModelZip();
    const file = await writeZip('m.zip', zip);
    await new ModelStore(options()).ensure({ name: 'clf', source: file, sha256: sha(zip) });
    const before = await listTree(tmp);
    const steps: StoreStep[] = [];
    const again = await new ModelStore(options()).ensure({ name: 'clf', source: file, sha256: sha(zip) }, (s) => steps.push(s));
    expect(again).toEqual({ dir: path.join(root, 'clf'), sha256: sha(zip), fetched: false, digest: sha(zip) });
    expect(steps).toEqual([]);
    expect(await listTree(tmp)).toEqual(before);
  });

  test('without a pinned sha256 the local zip is hashed and compared with the marker', async () => {
    const zip = fakeModelZip();
    const file = await writeZip('m.zip', zip);
    const store = new ModelStore(options());
    expect(await store.ensure({ name: 'clf', source: file })).toMatchObject({ fetched: true, sha256: sha(zip) });
    const steps: StoreStep[] = [];
    expect(await store.ensure({ name: 'clf', source: file }, (s) => steps.push(s))).toMatchObject({ fetched: false, sha256: sha(zip) });
    expect(steps).toEqual(['verifying']);

    // The file changes: the new content replaces the old folder.
    const v2 = fakeModelZip({ files: { ...fakeModelFiles({ version: '2' }), 'extra.txt': 'new' } });
    await writeFile(file, v2);
    expect(await store.ensure({ name: 'clf', source: file })).toMatchObject({ fetched: true, sha256: sha(v2) });
    expect(JSON.parse(await readFile(path.join(root, 'clf', 'gateway.json'), 'utf8')).version).toBe('2');
    expect(existsSync(path.join(root, 'clf', 'extra.txt'))).toBe(true);
  });

  test('a new version replaces the old folder completely; no leftovers of the old one', async () => {
    const v1 = fakeModelZip({ files: { ...fakeModelFiles(), 'old-only.txt': 'old' } });
    const v2 = fakeModelZip({ files: fakeModelFiles({ version: '2' }) });
    const f1 = await writeZip('v1.zip', v1);
    const f2 = await writeZip('v2.zip', v2);
    const store = new ModelStore(options());
    await store.ensure({ name: 'clf', source: f1, sha256: sha(v1) });
    await store.ensure({ name: 'clf', source: f2, sha256: sha(v2) });
    expect(existsSync(path.join(root, 'clf', 'old-only.txt'))).toBe(false);
    expect(JSON.parse(await readFile(path.join(root, 'clf', MARKER_FILE), 'utf8')).sha256).toBe(sha(v2));
    expect(await readdir(path.join(root, '.staging'))).toEqual([]);
  });

  test('a zip with one top folder (zip -r m.zip m/) is unpacked from inside that folder', async () => {
    const zip = fakeModelZip({ top: 'my-model' });
    const res = await new ModelStore(options()).ensure({ name: 'clf', source: await writeZip('m.zip', zip) });
    expect(existsSync(path.join(res.dir, 'config.json'))).toBe(true);
    expect(existsSync(path.join(res.dir, 'my-model'))).toBe(false);
  });

  test('a lone folder without model files (e.g. only onnx/) is kept as it is', async () => {
    const zip = fakeModelZip({ files: { 'onnx/model.onnx': 'x' } });
    const res = await new ModelStore(options()).ensure({ name: 'clf', source: await writeZip('m.zip', zip) });
    expect(existsSync(path.join(res.dir, 'onnx', 'model.onnx'))).toBe(true);
  });

  test('a folder without a marker (an interrupted or foreign one) is replaced', async () => {
    await mkdir(path.join(root, 'clf'), { recursive: true });
    await writeFile(path.join(root, 'clf', 'half-written.onnx'), 'x');
    const zip = fakeModelZip();
    const res = await new ModelStore(options()).ensure({ name: 'clf', source: await writeZip('m.zip', zip), sha256: sha(zip) });
    expect(res.fetched).toBe(true);
    expect(existsSync(path.join(root, 'clf', 'half-written.onnx'))).toBe(false);
  });

  test('concurrent ensures of one model run one after the other; the second finds the first one\'s work', async () => {
    const zip = fakeModelZip();
    const file = await writeZip('m.zip', zip);
    const store = new ModelStore(options());
    const [a, b] = await Promise.all([
      store.ensure({ name: 'clf', source: file, sha256: sha(zip) }),
      store.ensure({ name: 'clf', source: file, sha256: sha(zip) }),
    ]);
    expect([a.fetched, b.fetched]).toEqual([true, false]);
  });
});

describe('staging', () => {
  test('folders left by a dead download are swept; a recent one (maybe another gateway\'s) is kept', async () => {
    const staging = path.join(root, '.staging');
    const dead = path.join(staging, 'other@dead01');
    const live = path.join(staging, 'other@live01');
    await mkdir(path.join(dead, 'model', 'onnx'), { recursive: true });
    await writeFile(path.join(dead, 'model.zip'), 'partial');
    await writeFile(path.join(dead, 'model', 'onnx', 'model.onnx'), 'partial');
    await mkdir(path.join(live, 'model', 'onnx'), { recursive: true });
    const dayAgo = new Date(Date.now() - 24 * 3600_000);
    for (const p of [dead, path.join(dead, 'model.zip'), path.join(dead, 'model'), path.join(dead, 'model', 'onnx'), path.join(dead, 'model', 'onnx', 'model.onnx'), live, path.join(live, 'model')]) {
      await utimes(p, dayAgo, dayAgo);
    }
    await writeFile(path.join(live, 'model', 'onnx', 'model.onnx'), 'being written now');
    const zip = fakeModelZip();
    await new ModelStore(options()).ensure({ name: 'clf', source: await writeZip('m.zip', zip) });
    expect(await readdir(staging)).toEqual(['other@live01']);
    expect(logs.some((l) => l.msg?.includes('stale staging folder') && l.obj.folder === dead)).toBe(true);
  });
});

describe('local folder', () => {
  test('is used where it is: nothing copied, no sha256', async () => {
    const dir = path.join(tmp, 'src', 'unpacked');
    await mkdir(dir);
    for (const [name, data] of Object.entries(fakeModelFiles())) await writeFile(path.join(dir, name), data);
    const steps: StoreStep[] = [];
    const res = await new ModelStore(options()).ensure({ name: 'clf', source: dir }, (s) => steps.push(s));
    expect(res).toEqual({ dir, sha256: null, fetched: false, digest: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(steps).toEqual([]);
    expect(existsSync(root)).toBe(false);
  });

  test('has a digest of its file list: the same folder gives the same one, another folder or an edited file another', async () => {
    const make = async (name: string) => {
      const dir = path.join(tmp, 'src', name);
      await mkdir(dir, { recursive: true });
      for (const [file, data] of Object.entries(fakeModelFiles())) await writeFile(path.join(dir, file), data);
      return dir;
    };
    const [a, b] = [await make('a'), await make('b')];
    const store = new ModelStore(options());
    const digestOf = async (dir: string) => (await store.ensure({ name: 'clf', source: dir })).digest;
    const first = await digestOf(a);
    expect(await digestOf(a)).toBe(first);
    expect(await digestOf(b)).not.toBe(first);
    await writeFile(path.join(a, 'gateway.json'), '{"task":"text-classification","max_length":8,"labels":["x","y","z"]}');
    expect(await digestOf(a)).not.toBe(first);
  });
});

describe('bad sources fail with the model, the step and the cause', () => {
  const cases: Array<[string, { name: string; source: string }, string, RegExp]> = [
    ['missing file', { name: 'clf', source: '/nonexistent/m.zip' }, 'downloading', /source not found: \/nonexistent\/m\.zip/],
    ['unsupported scheme', { name: 'clf', source: 'https://example.com/m.zip' }, 'downloading', /unsupported source "https:\/\/example\.com\/m\.zip"/],
    ['S3 url without key', { name: 'clf', source: 's3://bucket-only' }, 'downloading', /bad S3 source "s3:\/\/bucket-only"/],
    ['name that is a path', { name: '../evil', source: '/x.zip' }, 'downloading', /model name must match/],
    ['hidden name', { name: '.staging', source: '/x.zip' }, 'downloading', /model name must match/],
  ];
  test('a root that cannot be created', async () => {
    await writeFile(path.join(tmp, 'a-file'), 'x');
    const zip = fakeModelZip();
    const store = new ModelStore({ ...options(), root: path.join(tmp, 'a-file', 'models') });
    const err = await store.ensure({ name: 'clf', source: await writeZip('m.zip', zip) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BootError);
    expect((err as Error).message).toMatch(/model "clf" failed at downloading: cannot create a staging folder in .*a-file\/models\/\.staging: ENOTDIR/);
  });

  test.each(cases)('%s', async (_label, src, step, message) => {
    const err = await new ModelStore(options()).ensure(src).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BootError);
    expect(err).toMatchObject({ model: src.name, step });
    expect((err as Error).message).toMatch(message);
    expect(existsSync(root)).toBe(false);
  });
});
