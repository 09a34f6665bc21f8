/**
 * qa-demo on human-written questions it never saw: the first 30 questions of SQuAD-shifts new_wiki (its development
 * set, ../shared/data/qa-train), asked through POST /v1/qa exactly as a user would. The model is small (see its card:
 * answerable F1 on all of new_wiki), so this asks for a non-trivial number of right or overlapping answers, not for
 * most of them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp, demoZip, testConfig } from '../helpers/app.ts';
import { emF1 } from '../../scripts/squad-metrics.ts';

const DEV = path.resolve(import.meta.dirname, '../../../shared/data/qa-train/squadshifts_new_wiki_v1.0.json');
const N = 30;
// Set well below what the shipped qa-demo gets on these 30 questions (see models/README.md), so a retrained
// model of the same quality still passes while a broken one (random, abstaining, always the first sentence) does not.
const EXACT_AT_LEAST = 5;
const OVERLAP_AT_LEAST = 15;
const MEAN_F1_ABOVE = 0.3;

interface Squad {
  data: { paragraphs: { context: string; qas: { question: string; answers: { text: string }[] }[] }[] }[];
}

const sample = (JSON.parse(fs.readFileSync(DEV, 'utf8')) as Squad).data
  .flatMap((a) => a.paragraphs.flatMap((p) => p.qas.map((q) => ({ question: q.question, context: p.context, golds: q.answers.map((x) => x.text) }))))
  .slice(0, N);

describe('qa-demo on a human-written dev sample through /v1/qa', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await buildApp(testConfig({ models: [{ name: 'qa-demo', source: demoZip('qa-demo') }], cache: { embeddingBytes: 0, resultBytes: 0 } }));
  });
  afterAll(async () => app?.close());

  it(`answers a non-trivial share of the first ${N} new_wiki questions`, async () => {
    let exact = 0;
    let overlap = 0;
    let total = 0;
    for (const item of sample) {
      const res = await app.inject({ method: 'POST', url: '/v1/qa', payload: { question: item.question, context: item.context } });
      expect(res.statusCode, res.body).toBe(200);
      const [best] = res.json().answers as { answer: string; start: number; end: number }[];
      expect(item.context.slice(best.start, best.end)).toBe(best.answer);
      const [em, score] = emF1(best.answer, item.golds);
      exact += em;
      if (score > 0) overlap++;
      total += score;
    }
    expect(exact).toBeGreaterThanOrEqual(EXACT_AT_LEAST);
    expect(overlap).toBeGreaterThanOrEqual(OVERLAP_AT_LEAST);
    expect(total / N).toBeGreaterThan(MEAN_F1_ABOVE);
  });
});
