import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AutoModel, AutoTokenizer, env, pipeline, type Tensor } from '@huggingface/transformers';
import { TextTokenizer } from '../../src/inference/tokenizer.ts';
import { buildApp, demoZip, testConfig } from '../helpers/app.ts';
import { unzipTo } from '../helpers/unzip.ts';

/**
 * The gateway against transformers.js (the Hugging Face pipelines in JS) on the same demo models: same
 * token ids, embeddings and classification scores within 1e-4. transformers.js reads a model folder with
 * the ONNX graph under onnx/, so each zip is unpacked into that layout.
 */
const TEXTS = [
  'A man is playing a guitar.',
  'Déjà vu: the café’s naïve façade!',
  'command-line utility to monitor network traffic and bandwidth usage',
  'a puzzle game with colourful blocks — 3 levels, 100% free',
  'Library for numerical linear algebra (BLAS/LAPACK) and statistics; fast.',
  'emoji 🙂 and CJK 漢字 mixed with   spaces\tand tabs',
];

let root: string;

describe('parity with transformers.js', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'tjs-'));
    for (const name of ['sts-demo', 'classify-demo']) await unzipTo(demoZip(name), join(root, name), { 'model.onnx': 'onnx/model.onnx' });
    env.allowRemoteModels = false;
    env.allowLocalModels = true;
    env.localModelPath = `${root}/`;
    app = await buildApp(testConfig({ models: ['sts-demo', 'classify-demo'].map((name) => ({ name, source: demoZip(name) })), cache: { embeddingBytes: 0, resultBytes: 0 } }));
  });
  afterAll(async () => app?.close());

  it('gives the same token ids for the same tokenizer.json', async () => {
    const ours = await TextTokenizer.fromFile(join(root, 'sts-demo', 'tokenizer.json'), { maxLength: 512 });
    const theirs = await AutoTokenizer.from_pretrained('sts-demo');
    for (const text of TEXTS) {
      const a = (await ours.encode(text)).ids;
      const b = (theirs(text).input_ids.tolist() as bigint[][])[0].map(Number);
      expect(a, text).toEqual(b);
    }
  });

  it("gives the same sentence embeddings within 1e-4 (the graph's sentence_embedding, L2-normalised)", async () => {
    // sts-demo 3 pools inside its graph (sentence_embedding, as sentence-transformers exports with their pooling do):
    // transformers.js' feature-extraction pipeline reads only token outputs, so its user runs the model and normalises.
    // (Mean pooling of last_hidden_state against sentence-transformers: test/compat/compat.test.ts.)
    const tokenizer = await AutoTokenizer.from_pretrained('sts-demo');
    const model = await AutoModel.from_pretrained('sts-demo', { dtype: 'fp32' });
    const out = (await model(tokenizer(TEXTS, { padding: true, truncation: true }))) as Record<string, Tensor>;
    const theirs = out.sentence_embedding.normalize(2, -1);
    await model.dispose();
    const dim = theirs.dims[1];
    const res = await app.inject({ method: 'POST', url: '/v1/embeddings', payload: { input: TEXTS, model: 'sts-demo' } });
    const ours: number[][] = res.json().data.map((d: { embedding: number[] }) => d.embedding);
    let max = 0;
    ours.forEach((v, i) => {
      expect(v).toHaveLength(dim);
      v.forEach((x, j) => (max = Math.max(max, Math.abs(x - (theirs.data as Float32Array)[i * dim + j]))));
    });
    expect(max).toBeLessThan(1e-4);
  });

  it('gives the same classification scores within 1e-4, labels from id2label', async () => {
    const classifier = await pipeline('text-classification', 'classify-demo', { dtype: 'fp32' });
    const res = await app.inject({ method: 'POST', url: '/v1/classify', payload: { inputs: TEXTS, model: 'classify-demo' } });
    const preds: { labels: { label: string; score: number }[] }[] = res.json().predictions;
    for (const [i, text] of TEXTS.entries()) {
      const theirs = (await classifier(text, { top_k: null })) as { label: string; score: number }[];
      const ours = Object.fromEntries(preds[i].labels.map((l) => [l.label, l.score]));
      expect(Object.keys(ours).sort()).toEqual(theirs.map((t) => t.label).sort());
      for (const t of theirs) expect(Math.abs(ours[t.label] - t.score), `${text} ${t.label}`).toBeLessThan(1e-4);
      expect(preds[i].labels[0].label).toBe(theirs[0].label);
    }
  });
});
