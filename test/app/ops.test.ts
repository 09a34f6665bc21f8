import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApp, DEMO_MODELS, LAZY_DEMO_MODELS, testConfig } from '../helpers/app.ts';

describe('ops endpoints', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await buildApp(testConfig(), { boot: false });
  });
  afterAll(async () => app?.close());

  it('answers live at once and ready only after every required model is ready', async () => {
    expect((await app.inject('/health/live')).statusCode).toBe(200);
    const before = await app.inject('/health/ready');
    expect(before.statusCode).toBe(503);
    expect(before.headers['retry-after']).toBeDefined();
    expect(before.json()).toMatchObject({ status: 'starting', models: Object.fromEntries(DEMO_MODELS.map((m) => [m, 'pending'])) });
    // A request for a model that is not ready yet is a 503 with Retry-After, not a 404.
    for (const payload of [{ input: 'x', model: 'sts-demo' }, { input: 'x' }]) {
      const early = await app.inject({ method: 'POST', url: '/v1/embeddings', payload });
      expect(early.statusCode).toBe(503);
      expect(early.json().error.code).toBe('not_ready');
      expect(early.headers['retry-after']).toBeDefined();
    }

    await app.models.boot();
    const after = await app.inject('/health/ready');
    expect(after.statusCode).toBe(200);
    // The lazy int8 variants are listed as available: readiness never waits for them.
    expect(after.json()).toEqual({ status: 'ready', models: Object.fromEntries([...DEMO_MODELS.map((m) => [m, 'ready']), ...LAZY_DEMO_MODELS.map((m) => [m, 'available'])]) });
  });

  it('lists every model with task, version, sha256, warm-up timings and batch invariance', async () => {
    const res = await app.inject('/v1/models');
    expect(res.statusCode).toBe(200);
    const { data } = res.json();
    expect(data.map((m: { name: string }) => m.name)).toEqual([...DEMO_MODELS, ...LAZY_DEMO_MODELS]);
    for (const m of data) {
      if ((LAZY_DEMO_MODELS as readonly string[]).includes(m.name)) {
        expect(m.state).toBe('available');
        continue;
      }
      expect(m.state).toBe('ready');
      expect(m.sha256).toMatch(/^[a-f0-9]{64}$/);
      expect(m.version).toBeTruthy();
      expect(m.max_length).toBeGreaterThan(16);
      expect(m.timings).toHaveProperty('fetch');
      expect(m.timings).toHaveProperty('warmup');
      expect(m.warmup.shapes.length).toBe(2);
      expect(m.warmup.batch_invariance_max_diff).toBeLessThanOrEqual(1e-4);
    }
    const tasks = Object.fromEntries(data.map((m: { name: string; task: string }) => [m.name, m.task]));
    expect(tasks).toEqual({
      'qa-demo': 'question-answering',
      'sts-demo': 'sentence-similarity',
      'essay-demo': 'essay-scoring',
      'essay-demo-bands': 'essay-scoring',
      'classify-demo': 'text-classification',
      'retrieve-demo': 'sentence-similarity',
      'rerank-demo': 'text-ranking',
      // Lazy models are not opened before their first request, so their task is not known yet.
      'qa-demo-int8': undefined,
      'retrieve-demo-int8': undefined,
      'rerank-demo-int8': undefined,
    });
    const defaults = data.filter((m: { default: boolean }) => m.default).map((m: { name: string }) => m.name);
    expect(defaults).toEqual(['qa-demo', 'sts-demo', 'essay-demo', 'classify-demo', 'rerank-demo']);
    const one = await app.inject('/v1/models/classify-demo');
    expect(one.json().labels.length).toBeGreaterThan(2);
    const missing = await app.inject('/v1/models/nope');
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error.message).toContain('qa-demo');
  });

  it('keeps a well-formed x-request-id, makes one otherwise, and reports timings on inference responses', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/embeddings', headers: { 'x-request-id': 'abc-123' }, payload: { input: 'hello' } });
    expect(res.statusCode).toBe(200);
    expect(res.headers['x-request-id']).toBe('abc-123');
    for (const h of ['x-tokenize-time', 'x-queue-time', 'x-inference-time', 'x-total-time']) expect(Number(res.headers[h])).toBeGreaterThanOrEqual(0);
    expect(Number(res.headers['x-inference-time'])).toBeGreaterThan(0);
    const bad = await app.inject({ url: '/health/live', headers: { 'x-request-id': 'has spaces and ;' } });
    expect(bad.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('exposes Prometheus metrics for requests, errors by code, timings, batch sizes and models', async () => {
    await app.inject({ method: 'POST', url: '/v1/classify', payload: { inputs: 'x', model: 'nope' } });
    expect((await app.inject('/no/such/route')).statusCode).toBe(404);
    const text = (await app.inject('/metrics')).body;
    // Each route counts under its own URL pattern (once per request), unknown URLs under one label.
    expect(text).toMatch(/gateway_requests_total\{route="\/v1\/classify",method="POST",status="404"\} 1\n/);
    expect(text).toMatch(/gateway_requests_total\{route="unmatched",method="GET",status="404"\} 1\n/);
    expect(text).toMatch(/gateway_requests_total\{route="\/v1\/embeddings",method="POST",status="200"\} \d+/);
    expect(text).toMatch(/gateway_errors_total\{code="model_not_found"\} [1-9]/);
    expect(text).toMatch(/gateway_batch_size_count\{model="sts-demo"\} [1-9]/);
    expect(text).toMatch(/gateway_inference_seconds_count\{model="sts-demo"\} [1-9]/);
    expect(text).toMatch(/gateway_queue_seconds_count\{model="sts-demo"\} [1-9]/);
    expect(text).toMatch(/gateway_tokenize_seconds_count\{model="sts-demo"\} [1-9]/);
    expect(text).toMatch(/gateway_models_loaded 7/);
    expect(text).toMatch(/gateway_queue_depth\{model="qa-demo"\} 0/);
  });

  it('serves the OpenAPI document and Swagger UI', async () => {
    const doc = (await app.inject('/docs/json')).json();
    expect(doc.openapi).toMatch(/^3\./);
    for (const p of ['/v1/qa', '/v1/qa/batch', '/v1/similarity', '/v1/similarity/batch', '/v1/similarity/file', '/v1/embeddings', '/v1/essays/score', '/v1/classify', '/models/{name}', '/v1/models', '/health/ready', '/metrics']) {
      expect(doc.paths).toHaveProperty([p]);
    }
    const ui = await app.inject('/docs/');
    expect(ui.statusCode).toBe(200);
    expect(ui.body).toContain('swagger');
  });

  it('answers unknown routes with the one error body (under /v2, the Open Inference Protocol\'s own)', async () => {
    const res = await app.inject('/v3/nothing');
    expect(res.statusCode).toBe(404);
    expect(res.json()).toEqual({ error: { code: 'route_not_found', message: expect.stringContaining('/v3/nothing') } });
    const v2 = await app.inject('/v2/nothing');
    expect(v2.statusCode).toBe(404);
    expect(v2.json()).toEqual({ error: expect.stringContaining('/v2/nothing') });
  });
});

describe('error handler', () => {
  it('turns an unexpected error into a 500 with no internals, and a GatewayError into its status', async () => {
    const { GatewayError } = await import('../../src/errors.ts');
    const app = await buildApp(testConfig({ models: [] }), {
      routes: (a) => {
        a.get('/boom', async () => {
          throw new Error('secret internal detail at /srv/x.ts:12');
        });
        a.get('/busy', async () => {
          throw new GatewayError('overloaded', 'full', { retryAfter: 2 });
        });
      },
    });
    const boom = await app.inject('/boom');
    expect(boom.statusCode).toBe(500);
    expect(boom.json().error.code).toBe('internal_error');
    expect(boom.body).not.toContain('secret');
    expect(boom.body).not.toContain('/srv/');
    const busy = await app.inject('/busy');
    expect(busy.statusCode).toBe(503);
    expect(busy.headers['retry-after']).toBe('2');
    expect(busy.json()).toEqual({ error: { code: 'overloaded', message: 'full' } });
    await app.close();
  });
});
