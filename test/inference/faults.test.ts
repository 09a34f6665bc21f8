import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp, demoZip, testConfig } from '../helpers/app.ts';
import { unzipTo } from '../helpers/unzip.ts';

/**
 * Faults while serving: an inference worker that dies mid-run (as a native crash would) or a run that
 * throws. Caused through the worker's fault hook: a real ONNX Runtime segfault cannot be provoked on demand.
 */
describe('inference faults', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await buildApp(testConfig({ models: [{ name: 'sts-demo', source: demoZip('sts-demo') }] }));
  });
  afterAll(async () => app?.close());

  const embed = (input: string) => app.inject({ method: 'POST', url: '/v1/embeddings', payload: { input } });

  it('answers 503 to the request a dying worker had, replaces the worker, and serves the same answers again', async () => {
    const before = (await embed('before the crash')).json().data[0].embedding;
    const restarts = app.models.pool.restarts;
    await app.models.pool.injectFault('exit');
    const hit = await embed('this one dies with its worker');
    expect(hit.statusCode).toBe(503);
    expect(hit.json().error.code).toBe('inference_failed');
    expect(hit.headers['retry-after']).toBe('1');
    // The surviving worker serves while the replacement loads its models.
    expect((await embed('served meanwhile')).statusCode).toBe(200);
    await expect.poll(() => app.models.pool.idleCount(), { timeout: 30_000 }).toBe(app.config.inference.workers);
    expect(app.models.pool.restarts).toBe(restarts + 1);
    const after = await embed('before the crash');
    expect(after.statusCode).toBe(200);
    expect(after.json().data[0].embedding).toEqual(before);
    const metrics = (await app.inject('/metrics')).body;
    expect(metrics).toMatch(/gateway_worker_restarts \d+/);
    expect(metrics).toMatch(/gateway_errors_total\{code="inference_failed"\} [1-9]/);
  });

  it('fails only the request whose run threw in the session, with a 500 that does not invite a retry, and keeps serving', async () => {
    await app.models.pool.injectFault('throw');
    const hit = await embed('this run throws');
    expect(hit.statusCode).toBe(500);
    expect(hit.json().error.code).toBe('model_error');
    expect(hit.headers['retry-after']).toBeUndefined();
    expect(hit.json().error.message).not.toContain('injected');
    const next = await embed('the next one is fine');
    expect(next.statusCode).toBe(200);
    expect(app.models.pool.idleCount()).toBe(app.config.inference.workers);
  });
});

describe('a pool whose replacement workers cannot load their models', () => {
  it('stops replacing after three failed starts and readiness says why, while the surviving worker serves', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sts-folder-'));
    await unzipTo(demoZip('sts-demo'), dir);
    const app = await buildApp(testConfig({ models: [{ name: 'sts-demo', source: dir }] }));
    try {
      expect((await app.inject('/health/ready')).statusCode).toBe(200);
      // The model's graph disappears from disk: a replacement worker can no longer load it.
      rmSync(join(dir, 'model.onnx'));
      await app.models.pool.injectFault('exit');
      await app.inject({ method: 'POST', url: '/v1/embeddings', payload: { input: 'this one dies with its worker' } });
      await expect.poll(() => app.models.pool.broken, { timeout: 30_000 }).toBeDefined();
      const restarts = app.models.pool.restarts;
      await new Promise((r) => setTimeout(r, 300));
      expect(app.models.pool.restarts).toBe(restarts);
      expect(restarts).toBe(3);
      const ready = await app.inject('/health/ready');
      expect(ready.statusCode).toBe(503);
      expect(ready.json()).toMatchObject({ status: 'unhealthy', reason: expect.stringContaining('inference workers cannot start') });
      expect((await app.inject({ method: 'POST', url: '/v1/embeddings', payload: { input: 'still served by the other worker' } })).statusCode).toBe(200);
    } finally {
      await app.close();
    }
  });
});
