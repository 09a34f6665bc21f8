import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApp, testConfig } from '../helpers/app.ts';

/**
 * Batch invariance through the whole stack: a text's outputs are the same alone and padded into a batch
 * of longer texts (the warm-up checks one row per model; this checks every demo model's task route).
 */
describe('batch invariance', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await buildApp(testConfig({ cache: { embeddingBytes: 0, resultBytes: 0 } }));
  });
  afterAll(async () => app?.close());

  const short = 'a small text editor';
  const longer = Array.from({ length: 12 }, (_, i) => `${short} with plugin number ${i} for the terminal and syntax highlighting`);
  const post = (url: string, payload: object) => app.inject({ method: 'POST', url, payload }).then((r) => r.json());
  const maxDiff = (a: number[], b: number[]) => Math.max(...a.map((x, i) => Math.abs(x - b[i])));

  it('embeddings', async () => {
    const alone = (await post('/v1/embeddings', { input: short })).data[0].embedding;
    const batched = (await post('/v1/embeddings', { input: [...longer, short] })).data[12].embedding;
    expect(maxDiff(alone, batched)).toBeLessThan(1e-5);
  });

  it('classification scores', async () => {
    const alone = (await post('/v1/classify', { inputs: short })).predictions[0].labels;
    const batched = (await post('/v1/classify', { inputs: [...longer, short] })).predictions[12].labels;
    const byLabel = (xs: { label: string; score: number }[]) => Object.fromEntries(xs.map((x) => [x.label, x.score]));
    const a = byLabel(alone);
    const b = byLabel(batched);
    expect(Object.keys(b).sort()).toEqual(Object.keys(a).sort());
    for (const k of Object.keys(a)) expect(Math.abs(a[k] - b[k])).toBeLessThan(1e-5);
  });

  it('essay scores of both essay models', async () => {
    for (const model of ['essay-demo', 'essay-demo-bands']) {
      const alone = (await post('/v1/essays/score', { essay: short, model })).raw;
      const batched = (await post('/v1/essays/score', { essays: [...longer, short], model })).results[12].raw;
      expect(Math.abs(alone - batched)).toBeLessThan(1e-5);
    }
  });

  it('QA answers and scores', async () => {
    const item = { question: 'What does the editor have?', context: `${short} with syntax highlighting.` };
    const alone = (await post('/v1/qa', { ...item, top_k: 3 })).answers;
    const batch = await post('/v1/qa/batch', { items: [...longer.map((c) => ({ question: 'Which plugin?', context: c.repeat(3) })), item], top_k: 3 });
    const batched = batch.results[12].answers;
    expect(batched.map((a: { start: number; end: number }) => [a.start, a.end])).toEqual(alone.map((a: { start: number; end: number }) => [a.start, a.end]));
    expect(maxDiff(alone.map((a: { score: number }) => a.score), batched.map((a: { score: number }) => a.score))).toBeLessThan(1e-5);
  });
});
