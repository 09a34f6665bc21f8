import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { BoundedCache } from '../../src/services/caches.ts';
import { buildApp, demoZip, testConfig } from '../helpers/app.ts';

describe('BoundedCache', () => {
  it('evicts least recently used entries past its byte budget and counts hits and misses', () => {
    const c = new BoundedCache<{ n: number }>(300, () => 100);
    c.set('a', { n: 1 });
    c.set('b', { n: 2 });
    c.set('c', { n: 3 });
    expect(c.get('a')).toEqual({ n: 1 }); // a is now the most recent
    c.set('d', { n: 4 }); // evicts b
    expect(c.get('b')).toBeUndefined();
    expect(c.get('c')).toEqual({ n: 3 });
    expect(c.stats()).toEqual({ hits: 2, misses: 1, bytes: 300, entries: 3 });
  });

  it('is off with a zero budget', () => {
    const c = new BoundedCache<{ n: number }>(0, () => 1);
    c.set('a', { n: 1 });
    expect(c.get('a')).toBeUndefined();
  });
});

describe('caches in the app', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await buildApp(
      testConfig({
        models: ['sts-demo', 'qa-demo', 'classify-demo'].map((name) => ({ name, source: demoZip(name) })),
      }),
    );
  });
  afterAll(async () => app?.close());

  const post = (url: string, payload: object) => app.inject({ method: 'POST', url, payload });

  it('shares sentence embeddings across the embeddings, similarity and batch routes', async () => {
    const first = await post('/v1/embeddings', { input: ['the cat sat', 'a dog barked'] });
    const misses = app.caches.embeddings.stats().misses;
    const hits = app.caches.embeddings.stats().hits;
    const sim = await post('/v1/similarity', { sentence_1: 'the cat sat', sentence_2: 'a dog barked' });
    expect(app.caches.embeddings.stats().hits).toBe(hits + 2);
    expect(app.caches.embeddings.stats().misses).toBe(misses);
    expect(Number(sim.headers['x-inference-time'])).toBe(0);
    const [a, b] = first.json().data.map((d: { embedding: number[] }) => d.embedding);
    const cos = a.reduce((s: number, x: number, i: number) => s + x * b[i], 0);
    expect(sim.json().score).toBeCloseTo(cos, 5);
    const again = await post('/v1/embeddings', { input: ['the cat sat', 'a dog barked'] });
    expect(again.json()).toEqual(first.json());
  });

  it('marks embeddings answered from the embedding cache (x-cache), and computes them under Cache-Control: no-cache', async () => {
    const body = { input: ['no-cache one', 'no-cache two'] };
    expect((await post('/v1/embeddings', body)).headers['x-cache']).toBe('miss');
    expect((await post('/v1/embeddings', body)).headers['x-cache']).toBe('hit');
    expect((await post('/v1/embeddings', { input: ['no-cache one', 'no-cache three'] })).headers['x-cache']).toBe('miss');
    const misses = app.caches.embeddings.stats().misses;
    const hits = app.caches.embeddings.stats().hits;
    const fresh = await app.inject({ method: 'POST', url: '/v1/embeddings', payload: body, headers: { 'cache-control': 'no-cache' } });
    expect(fresh.headers['x-cache']).toBe('miss');
    expect(Number(fresh.headers['x-inference-time'])).toBeGreaterThan(0);
    expect(app.caches.embeddings.stats()).toMatchObject({ hits, misses });
    expect(fresh.json().data).toEqual((await post('/v1/embeddings', body)).json().data);
  });

  it('says which version answered: x-model-version when a model ran, model_version in the body always', async () => {
    const version = (await app.inject('/v1/models/sts-demo')).json().version;
    const miss = await post('/v1/embeddings', { input: 'a version header' });
    const hit = await post('/v1/embeddings', { input: 'a version header' });
    expect(miss.headers['x-cache']).toBe('miss');
    expect(hit.headers['x-cache']).toBe('hit');
    expect(miss.headers['x-model-version']).toBe(version);
    expect(hit.headers['x-model-version']).toBeUndefined();
    for (const r of [miss, hit]) expect(r.json().model_version).toBe(version);
    const q = { question: 'Who wrote it?', context: 'It was written by the Debian team.' };
    const qaVersion = (await app.inject('/v1/models/qa-demo')).json().version;
    expect((await post('/v1/qa', q)).headers['x-model-version']).toBe(qaVersion);
    const qaHit = await post('/v1/qa', q);
    expect(qaHit.headers['x-cache']).toBe('hit');
    expect(qaHit.json().model_version).toBe(qaVersion);
  });

  it('answers repeated QA and classification from the result cache with identical bodies', async () => {
    const q = { question: 'Who maintains it?', context: 'The tool is maintained by the Debian team.', top_k: 2 };
    const r1 = await post('/v1/qa', q);
    const hits = app.caches.results.stats().hits;
    const r2 = await post('/v1/qa', q);
    expect(app.caches.results.stats().hits).toBe(hits + 1);
    expect(r2.json()).toEqual(r1.json());
    expect(Number(r2.headers['x-inference-time'])).toBe(0);
    // Different options are a different key.
    await post('/v1/qa', { ...q, top_k: 1 });
    expect(app.caches.results.stats().hits).toBe(hits + 1);

    const c1 = await post('/v1/classify', { inputs: ['an editor', 'a game'] });
    const c2 = await post('/v1/classify', { inputs: ['a game', 'a new text'] });
    expect(c2.json().predictions[0]).toEqual(c1.json().predictions[1]);
    const metrics = (await app.inject('/metrics')).body;
    expect(metrics).toMatch(/gateway_cache_hits\{cache="results"\} [1-9]/);
    expect(metrics).toMatch(/gateway_cache_bytes\{cache="embeddings"\} [1-9]/);
  });
});
