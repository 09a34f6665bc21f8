/**
 * The semantic cache with the real demo models: hits only at or above the threshold, never across model versions,
 * contexts or collection versions; bounded; a TTL that hits do not extend; Cache-Control: no-cache; metrics.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp, demoZip, testConfig } from '../helpers/app.ts';
import { craftZip } from '../helpers/zip-craft.ts';
import { readZip } from '../helpers/unzip.ts';

const CONTEXT = 'The nginx package provides a small, powerful, scalable web and proxy server. It is maintained by the Debian Nginx Maintainers.';
const OTHER = 'The curl package is a command line tool for transferring data. It is maintained by the Debian curl Maintainers.';

let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

async function start(semantic: Record<string, unknown>) {
  app = await buildApp(testConfig({ models: ['qa-demo', 'sts-demo', 'classify-demo'].map((name) => ({ name, source: demoZip(name) })), cache: { semantic: { enabled: true, tasks: ['question-answering', 'text-classification', 'essay-scoring'], ...semantic } } }));
  return app;
}

const qa = async (question: string, context = CONTEXT, headers: Record<string, string> = {}) => {
  const r = await app!.inject({ method: 'POST', url: '/v1/qa', headers, payload: { question, context } });
  return { cache: r.headers['x-cache'], similarity: r.headers['x-cache-similarity'] ? Number(r.headers['x-cache-similarity']) : undefined, body: r.json() };
};

describe('semantic cache', () => {
  it('leaves QA out by default (its measured precision is too low) while classification is answered from it', async () => {
    await start({ threshold: 0.99, tasks: undefined });
    expect(app!.config.cache.semantic.tasks).toEqual(['text-classification', 'essay-scoring']);
    await qa('Who maintains the nginx package?');
    expect((await qa('Who maintains the nginx package')).cache).toBe('miss');
    const classify = async (text: string) => (await app!.inject({ method: 'POST', url: '/v1/classify', payload: { inputs: text } })).headers['x-cache'];
    expect(await classify('A puzzle game with colorful blocks.')).toBe('miss');
    expect(await classify('A puzzle game with colorful blocks')).toBe('semantic');
  });

  it('answers a near-duplicate question about the same context from the cache, with the similarity; not a different question', async () => {
    // sts-demo 2.0.0 (cased) puts these at: without the question mark 0.997; "Who is maintaining" 0.970, "What does
    // ... provide" 0.970 (lexically alike, which is why QA is out of the default tasks).
    await start({ threshold: 0.99 });
    const first = await qa('Who maintains the nginx package?');
    expect(first.cache).toBe('miss');
    expect((await qa('Who maintains the nginx package?')).cache).toBe('hit');
    const near = await qa('Who maintains the nginx package');
    expect(near.cache).toBe('semantic');
    expect(near.similarity).toBeGreaterThanOrEqual(0.99);
    expect(near.body.answers).toEqual(first.body.answers);
    // Alike, but under the threshold: computed.
    const below = await qa('Who is maintaining the nginx package?');
    expect(below.cache).toBe('miss');
    expect((await qa('What does the nginx package provide?')).cache).toBe('miss');
    const metrics = (await app!.inject('/metrics')).body;
    expect(metrics).toMatch(/gateway_semantic_cache_lookups_total\{result="hit"\} 1/);
    expect(metrics).toMatch(/gateway_semantic_cache_lookups_total\{result="miss"\} [3-9]/);
    expect(metrics).toMatch(/gateway_semantic_cache_nearest_miss_similarity_bucket\{le="0.99"\} [1-9]/);
  });

  it('never answers across contexts, and Cache-Control: no-cache computes', async () => {
    await start({ threshold: 0.9 });
    await qa('Who maintains the package?', CONTEXT);
    const other = await qa('Who maintains the package?', OTHER);
    expect(other.cache).toBe('miss');
    expect(other.body.answers[0].answer).toMatch(/curl/);
    const fresh = await qa('Who maintains the package', CONTEXT, { 'cache-control': 'no-cache' });
    expect(fresh.cache).toBe('miss');
    expect((await qa('Who maintains the package', CONTEXT)).cache).not.toBe('miss');
  });

  it('never answers across model versions', async () => {
    await start({ threshold: 0.9 });
    const classify = async (inputs: string) => {
      const r = await app!.inject({ method: 'POST', url: '/v1/classify', payload: { inputs } });
      return { cache: r.headers['x-cache'], label: r.json().predictions[0].label, version: r.json().model_version };
    };
    const v1 = await classify('a puzzle game with colourful blocks');
    expect((await classify('a puzzle game with colorful blocks')).cache).toBe('semantic');
    const files = await readZip(demoZip('classify-demo'));
    const g = JSON.parse(files['gateway.json'].toString());
    files['gateway.json'] = Buffer.from(JSON.stringify({ ...g, version: '3.0.0', labels: [...g.labels].reverse() }));
    const zip = join(mkdtempSync(join(tmpdir(), 'sem-v2-')), 'classify-v2.zip');
    writeFileSync(zip, craftZip(Object.entries(files).map(([name, data]) => ({ name, data }))));
    expect((await app!.inject({ method: 'PUT', url: '/v1/models/classify-demo', payload: { source: zip } })).statusCode).toBe(202);
    await expect.poll(async () => (await app!.inject('/v1/models/classify-demo')).json().version, { timeout: 60_000 }).toMatch(/^3\.0\.0/);
    const v2 = await classify('a puzzle game with colorful blocks');
    expect(v2.cache).toBe('miss');
    expect(v2.version).not.toBe(v1.version);
    expect(v2.label).not.toBe(v1.label);
  }, 90_000);

  it('is bounded in entries (least recently used out first) and its TTL counts from insertion, not refreshed by hits', async () => {
    await start({ threshold: 0.99, maxEntries: 2, ttlMs: 1500 });
    await qa('Who maintains the nginx package?');
    await qa('What does the nginx package provide?');
    await qa('Which server does the package provide?');
    // The first entry went out when the third came in.
    expect((await qa('Who maintains the nginx package')).cache).toBe('miss');
    expect(app!.caches.semantic!.stats().entries).toBeLessThanOrEqual(2);
    const t0 = Date.now();
    await qa('Who wrote the nginx package?', OTHER);
    expect((await qa('Who wrote the nginx package', OTHER)).cache).toBe('semantic');
    await new Promise((r) => setTimeout(r, Math.max(0, t0 + 1700 - Date.now())));
    // Hit at ~0 ms, expired at 1.5 s all the same.
    expect((await qa('Who wrote the nginx package ?', OTHER)).cache).toBe('miss');
  });

  it('answers a collection question like an earlier one only for the same collection version', async () => {
    await start({ threshold: 0.99 });
    const post = (url: string, payload: unknown) => app!.inject({ method: 'POST', url, payload: payload as object });
    await post('/v1/collections', { name: 'c' });
    await post('/v1/collections/c/documents', { documents: [{ id: 'nginx', text: CONTEXT }] });
    const ask = async (question: string) => (await post('/v1/collections/c/qa', { question })).headers['x-cache'];
    expect(await ask('Who maintains the nginx package?')).toBe('miss');
    expect(await ask('Who maintains the nginx package')).toBe('semantic');
    await post('/v1/collections/c/documents', { documents: [{ id: 'curl', text: OTHER }] });
    expect(await ask('Who maintains the nginx package')).toBe('miss');
  });
});
