import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import fc from 'fast-check';
import { buildApp, testConfig } from '../helpers/app.ts';

/** What each task route promises, through HTTP, with the real demo models. */
describe('task routes', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await buildApp(testConfig({ cache: { embeddingBytes: 0, resultBytes: 0 } }));
  });
  afterAll(async () => app?.close());
  const post = async (url: string, payload: object) => {
    const res = await app.inject({ method: 'POST', url, payload });
    expect(res.statusCode, res.body).toBe(200);
    return res.json();
  };

  describe('question answering', () => {
    const piece = fc.constantFrom('maintained by', 'the Debian team', 'Café', 'naïve', 'e\u0301te\u0301', '🙂', '👩‍💻', '漢字', '\t', '   ', '\u00a0', 'x86_64', '2.0-1', '—', '\n');
    const context = fc.array(piece, { minLength: 3, maxLength: 60 }).map((xs) => xs.join(' '));

    it('answers are always context.slice(start, end), with accents, emoji, CJK and odd whitespace', async () => {
      await fc.assert(
        fc.asyncProperty(context, fc.integer({ min: 1, max: 5 }), async (ctx, topK) => {
          const { answers } = await post('/v1/qa', { question: 'Who maintains it?', context: ctx, top_k: topK, handle_impossible_answer: true });
          expect(answers.length).toBeGreaterThan(0);
          expect(answers.length).toBeLessThanOrEqual(topK);
          for (const a of answers) expect(ctx.slice(a.start, a.end)).toBe(a.answer);
          // Best first; the empty answer may lead with a lower score (gateway.json's no_answer_threshold said abstain).
          const ranked = answers[0].answer === '' ? answers.slice(1) : answers;
          for (let i = 1; i < ranked.length; i++) expect(ranked[i - 1].score).toBeGreaterThanOrEqual(ranked[i].score);
        }),
        { numRuns: 40, seed: 7 },
      );
    });

    it('reads a long context in overlapping windows and may answer from any of them', async () => {
      const filler = Array.from({ length: 2200 }, (_, i) => `word${i % 89}`).join(' ');
      const ctx = `${filler}. The zsh package is maintained by Debian Zsh Maintainers.`;
      const r = await post('/v1/qa', { question: 'Who maintains the zsh package?', context: ctx, top_k: 5 });
      expect(r.windows).toBeGreaterThan(10);
      for (const a of r.answers) expect(ctx.slice(a.start, a.end)).toBe(a.answer);
    });

    it('finds an answer placed past the first 2,000 words of the context', async () => {
      // Encyclopedic prose of the kind the model read, none of it about the question, then the fact after word 2,000.
      const topics = ['river', 'mountain', 'city', 'painter', 'composer', 'island', 'bridge', 'library', 'museum', 'forest'];
      const filler = Array.from({ length: 250 }, (_, i) => `The ${topics[i % 10]} number ${i} is described in many books.`).join(' ');
      const words = filler.split(/\s+/).length;
      expect(words).toBeGreaterThan(2000);
      const fact = 'The Zanzibar lighthouse was completed in 1883 by Scottish engineers.';
      const ctx = `${filler} ${fact}`;
      const r = await post('/v1/qa', { question: 'When was the Zanzibar lighthouse completed?', context: ctx });
      const [best] = r.answers;
      expect(best.answer).toBe('1883');
      expect(best.start).toBeGreaterThan(ctx.indexOf(fact));
      expect(ctx.slice(best.start, best.end)).toBe(best.answer);
      expect(r.windows).toBeGreaterThan(10);
    });

    it('offers the SQuAD 2.0 empty answer only when asked', async () => {
      const item = { question: 'What is the homepage?', context: 'The package is in the utils section.', top_k: 20 };
      const without = await post('/v1/qa', item);
      expect(without.answers.some((a: { answer: string }) => a.answer === '')).toBe(false);
      const withNull = await post('/v1/qa', { ...item, handle_impossible_answer: true });
      expect(withNull.answers).toContainEqual(expect.objectContaining({ answer: '', start: 0, end: 0 }));
    });

    it('answers a batch in input order, equal to single calls', async () => {
      const items = [
        { question: 'Who maintains it?', context: 'The curl package is maintained by the Debian curl Maintainers.' },
        { question: 'Which section?', context: 'The vim package belongs to the editors section.' },
      ];
      const batch = await post('/v1/qa/batch', { items, top_k: 2 });
      for (const [i, it] of items.entries()) {
        const one = await post('/v1/qa', { ...it, top_k: 2 });
        expect(batch.results[i].answers).toEqual(one.answers);
      }
    });
  });

  describe('sentence similarity', () => {
    it('is symmetric, scores identical sentences 1, and decides similar by the threshold', async () => {
      const a = 'A man is playing a guitar.';
      const b = 'A dog runs along the beach.';
      const ab = await post('/v1/similarity', { sentence_1: a, sentence_2: b });
      const ba = await post('/v1/similarity', { sentence_1: b, sentence_2: a });
      expect(ab.score).toBeCloseTo(ba.score, 6);
      const aa = await post('/v1/similarity', { sentence_1: a, sentence_2: a });
      expect(aa.score).toBeCloseTo(1, 5);
      expect(aa.similar).toBe(true);
      expect(ab.similar).toBe(ab.score >= ab.threshold);
      expect(ab.score).toBeGreaterThanOrEqual(-1);
      expect(ab.score).toBeLessThanOrEqual(1);
    });

    it('batch equals single calls and the uploaded file equals the batch', async () => {
      const pairs = [
        { sentence_1: 'A woman is slicing an onion.', sentence_2: 'A woman is cutting an onion.' },
        { sentence_1: 'A man is playing a flute.', sentence_2: 'A dog runs on the beach.' },
      ];
      const batch = await post('/v1/similarity/batch', { pairs });
      for (const [i, p] of pairs.entries()) expect(batch.results[i].score).toBeCloseTo((await post('/v1/similarity', p)).score, 6);
      const boundary = 'xXboundaryXx';
      const body = `--${boundary}\r\nContent-Disposition: form-data; name="model"\r\n\r\nsts-demo\r\n--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="pairs.json"\r\nContent-Type: application/json\r\n\r\n${JSON.stringify({ pairs })}\r\n--${boundary}--\r\n`;
      const file = await app.inject({ method: 'POST', url: '/v1/similarity/file', headers: { 'content-type': `multipart/form-data; boundary=${boundary}` }, payload: body });
      expect(file.statusCode, file.body).toBe(200);
      expect(file.json()).toEqual(batch);
    });

    it('embeddings are unit vectors; base64 decodes to the same floats; usage counts tokens', async () => {
      const f = await post('/v1/embeddings', { input: ['hello world', 'a cat'] });
      for (const d of f.data) expect(Math.hypot(...d.embedding)).toBeCloseTo(1, 5);
      const b = await post('/v1/embeddings', { input: ['hello world', 'a cat'], encoding_format: 'base64' });
      const buf = Buffer.from(b.data[0].embedding, 'base64');
      const decoded = Array.from(new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4));
      decoded.forEach((x, i) => expect(x).toBeCloseTo(f.data[0].embedding[i], 6));
      expect(f.usage.prompt_tokens).toBeGreaterThanOrEqual(2 * 3);
      expect(f.usage.total_tokens).toBe(f.usage.prompt_tokens);
    });
  });

  describe('essay scoring', () => {
    const essay = 'Public libraries matter. They lend books to everyone, they offer quiet rooms to study, and they host events for neighbours.';
    it('scores on the rubric, on its rounding step, single or list, with either model', async () => {
      for (const model of ['essay-demo', 'essay-demo-bands']) {
        const one = await post('/v1/essays/score', { essay, model });
        expect(one.scale).toEqual({ min: 1, max: 6 });
        expect(one.score).toBeGreaterThanOrEqual(1);
        expect(one.score).toBeLessThanOrEqual(6);
        expect((one.score * 2) % 1).toBe(0);
        expect(one.windows).toBe(1);
        const list = await post('/v1/essays/score', { essays: [essay, essay], model });
        expect(list.results[0]).toEqual({ score: one.score, raw: expect.closeTo(one.raw, 6), scale: one.scale, windows: 1 });
      }
    });

    it('reads a long essay whole, in several windows', async () => {
      const long = Array.from({ length: 40 }, () => essay).join(' ');
      const r = await post('/v1/essays/score', { essay: long });
      expect(r.windows).toBeGreaterThan(1);
    });
  });

  describe('classification', () => {
    it('labels from the model, top_k, softmax scores summing to 1, input order kept', async () => {
      const labels = (await app.inject('/v1/models/classify-demo')).json().labels;
      const all = await post('/v1/classify', { inputs: 'a puzzle game with colourful blocks' });
      expect(all.predictions[0].labels.map((l: { label: string }) => l.label).sort()).toEqual([...labels].sort());
      expect(all.predictions[0].labels.reduce((s: number, l: { score: number }) => s + l.score, 0)).toBeCloseTo(1, 5);
      const top = await post('/v1/classify', { inputs: ['a puzzle game with colourful blocks', 'a text editor for the terminal'], top_k: 2 });
      expect(top.predictions).toHaveLength(2);
      for (const p of top.predictions) expect(p.labels).toHaveLength(2);
      expect(top.predictions[0].labels[0].label).toBe(all.predictions[0].labels[0].label);
      expect(top.predictions[0].labels[0].score).toBeCloseTo(all.predictions[0].labels[0].score, 5);
    });
  });

  describe('Hugging Face shapes', () => {
    it('answers each task in its Inference API shape', async () => {
      const qa = await post('/models/qa-demo', { inputs: { question: 'Who?', context: 'It is maintained by Debian.' } });
      expect(Object.keys(qa).sort()).toEqual(['answer', 'end', 'score', 'start']);
      const sims = await post('/models/sts-demo', { inputs: { source_sentence: 'a', sentences: ['a', 'b'] } });
      expect(sims).toHaveLength(2);
      const vec = await post('/models/sts-demo', { inputs: 'hello' });
      expect(typeof vec[0]).toBe('number');
      const vecs = await post('/models/sts-demo/pipeline/feature-extraction', { inputs: ['hello', 'world'] });
      expect(vecs).toHaveLength(2);
      const cls = await post('/models/classify-demo', { inputs: 'a game', parameters: { top_k: 2 } });
      expect(cls).toHaveLength(1);
      expect(cls[0]).toHaveLength(2);
      const essay = await post('/models/essay-demo', { inputs: 'A short essay.' });
      expect(essay[0][0].label).toBe('score');
    });
  });
});
