/**
 * ModelStore against a real S3 server (s3rver in-process), reached through a proxy that counts
 * requests and can cut or stall response bodies: caching by sha256 and ETag, retries with
 * backoff on resets, stalls and a server that is down, no retry on 404.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { BootError } from '../../src/errors.ts';
import { MARKER_FILE, ModelStore, type StoreOptions } from '../../src/store/model-store.ts';
import { closedPort, startFaultProxy, startS3, upload, useS3rverCredentials, type Fault, type FaultProxy, type S3Server } from '../helpers/s3.ts';
import { fakeModelFiles, fakeModelZip, listTree } from '../helpers/zip-craft.ts';

useS3rverCredentials();

const BUCKET = 'models';
const zip = fakeModelZip();
const zipSha = createHash('sha256').update(zip).digest('hex');
// Incompressible and big enough that "half the body" is a real partial download.
const bigOnnx = randomBytes(300_000);
const bigZip = fakeModelZip({ files: { ...fakeModelFiles({ version: 'big' }), 'model.onnx': bigOnnx } });
const bigSha = createHash('sha256').update(bigZip).digest('hex');

let s3: S3Server;
let tmp: string;
let proxy: FaultProxy | undefined;
let stores: ModelStore[];
let logs: Array<{ level: string; obj: Record<string, unknown>; msg?: string }>;

beforeAll(async () => {
  s3 = await startS3([BUCKET]);
  await upload(s3.client, BUCKET, 'clf/v1.zip', zip);
  await upload(s3.client, BUCKET, 'clf/big.zip', bigZip);
});

afterAll(async () => {
  await s3.close();
});

beforeEach(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'store-s3-'));
  stores = [];
  logs = [];
});

afterEach(async () => {
  for (const s of stores) s.close();
  await proxy?.close();
  proxy = undefined;
  await rm(tmp, { recursive: true, force: true });
  // Never a credential in the logs.
  const text = JSON.stringify(logs);
  expect(text).not.toContain(process.env.AWS_SECRET_ACCESS_KEY);
  expect(text).not.toContain(process.env.AWS_ACCESS_KEY_ID);
});

function makeStore(endpoint: string, download: Partial<StoreOptions['download']> = {}): ModelStore {
  const store = new ModelStore({
    root: path.join(tmp, 'models'),
    s3: { endpoint, region: 'us-east-1', forcePathStyle: true },
    download: { retries: 3, backoffMs: 10, timeoutMs: 2_000, ...download },
    limits: { maxEntries: 100, maxUncompressedBytes: 10 * 1024 * 1024, maxEntryBytes: 10 * 1024 * 1024 },
    logger: {
      info: (obj, msg) => logs.push({ level: 'info', obj: obj as Record<string, unknown>, msg }),
      warn: (obj, msg) => logs.push({ level: 'warn', obj: obj as Record<string, unknown>, msg }),
    },
  });
  stores.push(store);
  return store;
}

async function viaProxy(faults: Fault[] = []): Promise<FaultProxy> {
  proxy = await startFaultProxy(s3.port, faults);
  return proxy;
}

const retries = (): Array<Record<string, unknown>> => logs.filter((l) => l.level === 'warn').map((l) => l.obj);

describe('download from S3', () => {
  test('fetches, verifies and unpacks; a second ensure with the same sha256 sends no request at all', async () => {
    const p = await viaProxy();
    const src = { name: 'clf', source: `s3://${BUCKET}/clf/v1.zip`, sha256: zipSha };
    const first = await makeStore(p.endpoint).ensure(src);
    expect(first).toEqual({ dir: path.join(tmp, 'models', 'clf'), sha256: zipSha, fetched: true, digest: zipSha });
    for (const [name, data] of Object.entries(fakeModelFiles())) {
      expect(await readFile(path.join(first.dir, name))).toEqual(Buffer.from(data));
    }
    expect(p.gets()).toBe(1);

    // Same store, and a new store on the same root (a restart).
    expect(await makeStore(p.endpoint).ensure(src)).toMatchObject({ fetched: false, sha256: zipSha });
    expect(await stores[0].ensure(src)).toMatchObject({ fetched: false });
    expect(p.gets()).toBe(1);
    expect(p.requests).toHaveLength(1);
  });

  test('without a sha256, a HEAD compares the ETag and size with the marker instead of downloading', async () => {
    const p = await viaProxy();
    const src = { name: 'clf', source: `s3://${BUCKET}/clf/v1.zip` };
    expect(await makeStore(p.endpoint).ensure(src)).toMatchObject({ fetched: true, sha256: zipSha });
    const marker = JSON.parse(await readFile(path.join(tmp, 'models', 'clf', MARKER_FILE), 'utf8'));
    expect(marker.etag).toMatch(/^"[0-9a-f]{32}"$/);
    expect(await makeStore(p.endpoint).ensure(src)).toMatchObject({ fetched: false, sha256: zipSha });
    expect(p.gets()).toBe(1);
    expect(p.requests.map((r) => r.split(' ')[0])).toEqual(['HEAD', 'GET', 'HEAD']);
  });

  test('a missing object fails at once with a clear error, no retries', async () => {
    const p = await viaProxy();
    const err = await makeStore(p.endpoint).ensure({ name: 'clf', source: `s3://${BUCKET}/nope.zip`, sha256: zipSha }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BootError);
    expect(err).toMatchObject({ model: 'clf', step: 'downloading' });
    expect((err as Error).message).toMatch(/s3:\/\/models\/nope\.zip: not found \(HTTP 404 NoSuchKey\); check the bucket and key/);
    expect(p.gets()).toBe(1);
    expect(retries()).toEqual([]);
  });

  test('a missing bucket on HEAD (no sha256) fails at once too', async () => {
    const p = await viaProxy();
    const err = await makeStore(p.endpoint).ensure({ name: 'clf', source: 's3://no-such-bucket/m.zip' }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/model "clf" failed at downloading: s3:\/\/no-such-bucket\/m\.zip: not found \(HTTP 404/);
    expect(p.requests).toHaveLength(1);
  });
});

describe('credentials', () => {
  test('none in the default chain: a clear error, no retries, nothing logged about them', async () => {
    const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY, file: process.env.AWS_SHARED_CREDENTIALS_FILE, config: process.env.AWS_CONFIG_FILE };
    delete process.env.AWS_ACCESS_KEY_ID;
    delete process.env.AWS_SECRET_ACCESS_KEY;
    process.env.AWS_SHARED_CREDENTIALS_FILE = path.join(tmp, 'no-credentials');
    process.env.AWS_CONFIG_FILE = path.join(tmp, 'no-config');
    try {
      const p = await viaProxy();
      const err = await makeStore(p.endpoint).ensure({ name: 'clf', source: `s3://${BUCKET}/clf/v1.zip`, sha256: zipSha }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BootError);
      expect((err as Error).message).toMatch(/failed at downloading: .*no AWS credentials/);
      if (process.env.SHOW_MESSAGES) console.log((err as Error).message);
      expect(p.requests).toEqual([]);
      expect(retries()).toEqual([]);
    } finally {
      process.env.AWS_ACCESS_KEY_ID = saved.id;
      process.env.AWS_SECRET_ACCESS_KEY = saved.secret;
      if (saved.file === undefined) delete process.env.AWS_SHARED_CREDENTIALS_FILE;
      else process.env.AWS_SHARED_CREDENTIALS_FILE = saved.file;
      if (saved.config === undefined) delete process.env.AWS_CONFIG_FILE;
      else process.env.AWS_CONFIG_FILE = saved.config;
    }
  });
});

describe('S3 faults', () => {
  test('connection reset mid-body: retried with backoff, then succeeds', async () => {
    const p = await viaProxy(['reset', 'reset']);
    const res = await makeStore(p.endpoint).ensure({ name: 'clf', source: `s3://${BUCKET}/clf/big.zip`, sha256: bigSha });
    expect(res).toMatchObject({ fetched: true, sha256: bigSha });
    expect(p.gets()).toBe(3);
    const r = retries();
    if (process.env.SHOW_MESSAGES) console.log(JSON.stringify(logs), p.requests);
    expect(r.map((x) => x.attempt)).toEqual([1, 2]);
    expect(r.every((x) => /network error|aborted|ECONNRESET|ended after/.test(String(x.reason)))).toBe(true);
    // Exponential: the second delay's range starts where the first one's ends (base 10 ms, jittered to [b/2, b]).
    expect(r[0].delayMs).toBeGreaterThanOrEqual(5);
    expect(r[1].delayMs).toBeGreaterThanOrEqual(10);
    expect((await readFile(path.join(res.dir, 'model.onnx'))).equals(bigOnnx)).toBe(true);
    // Each retry resumed from where the cut body ended, guarded by the first answer's ETag.
    const gets = p.requests.filter((r) => r.startsWith('GET'));
    expect(gets[0]).not.toMatch(/range=/);
    expect(gets[1]).toMatch(/ range=bytes=\d+-$/);
    expect(gets[2]).toMatch(/ range=bytes=\d+-$/);
    expect(logs.find((l) => l.msg === 'downloaded')?.obj).toMatchObject({ attempts: 3, resumed: 2, bytes: bigZip.length });
  });

  test('an object replaced between a cut and the resume is downloaded again from zero, never spliced', async () => {
    await upload(s3.client, BUCKET, 'clf/changing.zip', bigZip);
    const v2 = fakeModelZip({ files: { ...fakeModelFiles({ version: 'v2' }), 'model.onnx': randomBytes(300_000) } });
    proxy = await startFaultProxy(s3.port, ['reset'], async (n) => {
      if (n === 1) await upload(s3.client, BUCKET, 'clf/changing.zip', v2);
    });
    const res = await makeStore(proxy.endpoint).ensure({ name: 'clf', source: `s3://${BUCKET}/clf/changing.zip` });
    expect(res).toMatchObject({ fetched: true, sha256: createHash('sha256').update(v2).digest('hex') });
    expect(retries().map((x) => x.reason)).toEqual([expect.stringMatching(/ECONNRESET/), 'object changed during the download; starting over']);
    const gets = proxy.requests.filter((r) => r.startsWith('GET'));
    expect(gets).toHaveLength(3);
    expect(gets[1]).toMatch(/range=/);
    expect(gets[2]).not.toMatch(/range=/);
  });

  test('a body that stalls mid-stream is abandoned after the timeout and retried', async () => {
    const p = await viaProxy(['stall']);
    const res = await makeStore(p.endpoint, { timeoutMs: 300 }).ensure({ name: 'clf', source: `s3://${BUCKET}/clf/big.zip`, sha256: bigSha });
    expect(res).toMatchObject({ fetched: true, sha256: bigSha });
    expect(p.gets()).toBe(2);
    expect(retries()).toHaveLength(1);
    expect(retries()[0].reason).toMatch(/body stalled: no bytes for 300 ms/);
  });

  test('no answer at all (headers never come) is abandoned after the timeout and retried', async () => {
    const p = await viaProxy(['hang']);
    const res = await makeStore(p.endpoint, { timeoutMs: 300 }).ensure({ name: 'clf', source: `s3://${BUCKET}/clf/big.zip`, sha256: bigSha });
    expect(res).toMatchObject({ fetched: true });
    expect(p.gets()).toBe(2);
    expect(retries().map((x) => x.reason)).toEqual(['no response within 300 ms']);
  });

  test('a 503 SlowDown is retried', async () => {
    const p = await viaProxy(['503', '503']);
    const res = await makeStore(p.endpoint).ensure({ name: 'clf', source: `s3://${BUCKET}/clf/v1.zip`, sha256: zipSha });
    expect(res).toMatchObject({ fetched: true });
    expect(p.gets()).toBe(3);
    expect(retries().map((x) => x.reason)).toEqual([expect.stringMatching(/HTTP 503 SlowDown/), expect.stringMatching(/HTTP 503 SlowDown/)]);
  });

  test('a body that keeps stalling fails after the retries; the good model in place stays', async () => {
    const good = await makeStore(s3.endpoint).ensure({ name: 'clf', source: `s3://${BUCKET}/clf/v1.zip`, sha256: zipSha });
    expect(good.fetched).toBe(true);
    const before = await listTree(tmp);
    const p = await viaProxy(['stall', 'stall']);
    const err = await makeStore(p.endpoint, { timeoutMs: 200, retries: 1 })
      .ensure({ name: 'clf', source: `s3://${BUCKET}/clf/big.zip`, sha256: bigSha })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BootError);
    expect((err as Error).message).toMatch(/failed at downloading: s3:\/\/models\/clf\/big\.zip: body stalled: no bytes for 200 ms \(gave up after 2 attempts\)/);
    expect(p.gets()).toBe(2);
    expect(await listTree(tmp)).toEqual(before);
  });

  test('S3 down (closed port): fails after the configured retries with a clear error; the good model stays', async () => {
    const good = await makeStore(s3.endpoint).ensure({ name: 'clf', source: `s3://${BUCKET}/clf/v1.zip`, sha256: zipSha });
    expect(good.fetched).toBe(true);
    const before = await listTree(tmp);
    const port = await closedPort();
    const err = await makeStore(`http://127.0.0.1:${port}`, { retries: 2 })
      .ensure({ name: 'clf', source: `s3://${BUCKET}/clf/big.zip`, sha256: bigSha })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BootError);
    expect(err).toMatchObject({ model: 'clf', step: 'downloading' });
    expect((err as Error).message).toMatch(/network error: ECONNREFUSED.*\(gave up after 3 attempts\)/);
    expect(retries().map((x) => x.attempt)).toEqual([1, 2]);
    expect(await listTree(tmp)).toEqual(before);
  });

  test('S3 down but the pinned sha256 is already unpacked: no network needed', async () => {
    await makeStore(s3.endpoint).ensure({ name: 'clf', source: `s3://${BUCKET}/clf/v1.zip`, sha256: zipSha });
    const port = await closedPort();
    const res = await makeStore(`http://127.0.0.1:${port}`, { retries: 0 }).ensure({ name: 'clf', source: `s3://${BUCKET}/clf/v1.zip`, sha256: zipSha });
    expect(res).toMatchObject({ fetched: false, sha256: zipSha });
  });
});
