/**
 * Boot loads each model as soon as its own download is done: a model listed first is ready (and served)
 * while a later one is still downloading from a slow S3 server, instead of every load waiting for the
 * slowest download. The slow server is a real S3 server (s3rver) behind a proxy that holds the GET.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApp, demoZip, testConfig } from '../helpers/app.ts';
import { startFaultProxy, startS3, upload, useS3rverCredentials, type FaultProxy, type S3Server } from '../helpers/s3.ts';

useS3rverCredentials();

let s3: S3Server;
let proxy: FaultProxy;
let release: () => void;
const gate = new Promise<void>((resolve) => (release = resolve));

beforeAll(async () => {
  s3 = await startS3(['models']);
  await upload(s3.client, 'models', 'sts/v1.zip', readFileSync(demoZip('sts-demo')));
  proxy = await startFaultProxy(s3.port, [], () => gate);
});

afterAll(async () => {
  release();
  await proxy?.close();
  await s3?.close();
});

describe('boot order', () => {
  it('warms and serves a model listed first while a later one is still downloading', async () => {
    const app: FastifyInstance = await buildApp(
      testConfig({
        // A store folder of its own: `store` here replaces testConfig's whole section, private folder included.
        store: { dir: mkdtempSync(join(tmpdir(), 'boot-order-')), s3: { endpoint: proxy.endpoint } },
        models: [
          { name: 'classify-demo', source: demoZip('classify-demo') },
          { name: 'sts-demo', source: 's3://models/sts/v1.zip' },
        ],
      }),
      { boot: false },
    );
    try {
      const booted = app.models.boot();
      const deadline = Date.now() + 60_000;
      while (app.models.status('classify-demo')?.state !== 'ready' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(app.models.status('classify-demo')?.state).toBe('ready');
      // The download is still held by the proxy: sts-demo cannot have arrived yet.
      expect(app.models.status('sts-demo')?.state).toBe('downloading');
      expect(proxy.gets()).toBe(1);
      // By name: the default model of each task is assigned once boot is over.
      const served = await app.inject({ method: 'POST', url: '/v1/classify', payload: { inputs: 'a text editor for the terminal', model: 'classify-demo' } });
      expect(served.statusCode).toBe(200);
      expect((await app.inject('/health/ready')).statusCode).toBe(503);

      release();
      await booted;
      expect(app.models.status('sts-demo')?.state).toBe('ready');
      expect((await app.inject('/health/ready')).statusCode).toBe(200);
    } finally {
      await app.close();
    }
  });
});
