/**
 * Compatibility suite: every model family users bring (test/compat/families.ts), booted as a user would boot it
 * (from a zip made by publish-model, and from the plain export folder), must give the token ids of
 * @huggingface/transformers for the same tokenizer.json, exact QA offsets under unicode, embeddings equal to
 * the pooling recomputed here from a direct onnxruntime-node run of the same graph, and cross-encoder and
 * classifier scores equal to that direct run. The reference path never goes through the gateway's tokenizer,
 * pooling or post-processing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import fc from 'fast-check';
import { copyFileSync, mkdirSync, mkdtempSync, existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { AutoTokenizer, env, type PreTrainedTokenizer } from '@huggingface/transformers';
import { TextTokenizer } from '../../src/inference/tokenizer.ts';
import { packFolder } from '../../scripts/publish-model.ts';
import { buildApp, testConfig } from '../helpers/app.ts';
import { readZip } from '../helpers/unzip.ts';
import { unicodeText } from '../fixtures/arbitraries.ts';
import { FAMILIES, PARITY_TEXTS, type Family } from './families.ts';

let root: string;
let app: FastifyInstance;
const folderOf = (f: Family) => join(root, 'exports', f.id);
const zipOf = (f: Family) => join(root, 'zips', `${f.id}.zip`);
const refs = new Map<string, PreTrainedTokenizer>();
const sessions = new Map<string, ort.InferenceSession>();
const family = (id: string) => FAMILIES.find((f) => f.id === id)!;

async function post(url: string, payload: unknown) {
  const res = await app.inject({ method: 'POST', url, payload: payload as object });
  return { status: res.statusCode, body: res.json() };
}

/** transformers.js ids of a text (or pair), special tokens included. */
function refIds(f: Family, text: string, pair?: string): number[] {
  const tok = refs.get(f.id)!;
  const enc = tok(text, { text_pair: pair });
  return (enc.input_ids.tolist() as bigint[][])[0].map(Number);
}

/** A direct onnxruntime-node run of the family's graph on one row of ids (type ids: the reference tokenizer's, or zeros). */
async function refRun(f: Family, ids: number[], typeIds?: number[]): Promise<Record<string, ort.Tensor>> {
  const s = sessions.get(f.id)!;
  const dims = [1, ids.length];
  const feeds: Record<string, ort.Tensor> = {
    input_ids: new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), dims),
    attention_mask: new ort.Tensor('int64', new BigInt64Array(ids.length).fill(1n), dims),
  };
  if (s.inputNames.includes('token_type_ids')) feeds.token_type_ids = new ort.Tensor('int64', BigInt64Array.from((typeIds ?? new Array(ids.length).fill(0)).map(BigInt)), dims);
  return s.run(feeds);
}

/** Pooling recomputed here, as sentence-transformers does it (mean over the tokens, or the first), then L2. */
function pooled(hidden: ort.Tensor, how: 'mean' | 'cls'): number[] {
  const [, seq, dim] = hidden.dims as number[];
  const h = hidden.data as Float32Array;
  const v = new Array<number>(dim).fill(0);
  for (let t = 0; t < (how === 'cls' ? 1 : seq); t++) for (let d = 0; d < dim; d++) v[d] += h[t * dim + d];
  const n = how === 'cls' ? 1 : seq;
  const mean = v.map((x) => x / n);
  const norm = Math.sqrt(mean.reduce((s, x) => s + x * x, 0));
  return mean.map((x) => x / norm);
}

const maxDiff = (a: number[], b: number[]) => {
  expect(a).toHaveLength(b.length);
  return Math.max(...a.map((x, i) => Math.abs(x - b[i])));
};
const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'compat-'));
  mkdirSync(join(root, 'zips'));
  for (const f of FAMILIES) {
    await f.write(folderOf(f));
    await packFolder(folderOf(f), zipOf(f));
    // transformers.js reads a tokenizer folder with a tokenizer_config.json naming the class.
    const ref = join(root, 'ref', f.id);
    mkdirSync(ref, { recursive: true });
    copyFileSync(join(folderOf(f), 'tokenizer.json'), join(ref, 'tokenizer.json'));
    writeFileSync(join(ref, 'tokenizer_config.json'), JSON.stringify({ tokenizer_class: f.tokenizerClass, model_max_length: f.maxLength }));
    sessions.set(f.id, await ort.InferenceSession.create(join(folderOf(f), 'model.onnx')));
  }
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.localModelPath = `${join(root, 'ref')}/`;
  for (const f of FAMILIES) refs.set(f.id, await AutoTokenizer.from_pretrained(f.id));
  const models = FAMILIES.flatMap((f) => [
    { name: `${f.id}-folder`, source: folderOf(f), required: true },
    { name: `${f.id}-zip`, source: zipOf(f), required: true },
  ]);
  app = await buildApp(testConfig({ models, cache: { embeddingBytes: 0, resultBytes: 0 } }));
}, 240_000);
afterAll(async () => {
  await app?.close();
  for (const s of sessions.values()) await s.release();
});

describe.each(FAMILIES.map((f) => [f.id, f] as const))('%s', (_id, f) => {
  it('boots from its export folder and from a zip made by publish-model, reading the window its library uses', async () => {
    for (const variant of ['folder', 'zip']) {
      const s = (await app.inject(`/v1/models/${f.id}-${variant}`)).json();
      expect(s, `${f.id}-${variant}`).toMatchObject({ state: 'ready', task: f.task, max_length: f.maxLength });
    }
    // The zip holds every file the gateway reads from the folder.
    const packed = Object.keys(await readZip(zipOf(f)));
    for (const file of ['tokenizer.json', 'model.onnx', 'config.json', 'gateway.json', 'modules.json', '1_Pooling/config.json', 'sentence_bert_config.json', 'tokenizer_config.json']) {
      if (existsSync(join(folderOf(f), file))) expect(packed, file).toContain(file);
    }
  });

  it('gives the token ids of @huggingface/transformers on 22 texts (and pairs)', async () => {
    const ours = await TextTokenizer.fromFile(join(folderOf(f), 'tokenizer.json'), { maxLength: 100_000 });
    expect(PARITY_TEXTS.length).toBeGreaterThanOrEqual(20);
    for (const text of PARITY_TEXTS) expect((await ours.encode(text)).ids, text).toEqual(refIds(f, text));
    for (let i = 0; i + 1 < PARITY_TEXTS.length; i += 3) {
      const [a, b] = [PARITY_TEXTS[i], PARITY_TEXTS[i + 1]];
      expect((await ours.encodePairIds(a, b, { names: ['a', 'b'] })).ids, `${a} | ${b}`).toEqual(refIds(f, a, b));
    }
  });
});

describe('question answering families', () => {
  const qa = FAMILIES.filter((f) => f.task === 'question-answering');

  it.each(qa.map((f) => [f.id, f] as const))('%s: answers slice the context exactly under unicode, the same from folder and zip', async (_id, f) => {
    await fc.assert(
      fc.asyncProperty(unicodeText({ maxLength: 12 }), unicodeText({ maxLength: 120 }), async (question, context) => {
        fc.pre(question.trim().length > 0 && context.trim().length > 0);
        const [a, b] = await Promise.all(['folder', 'zip'].map((v) => post('/v1/qa', { question, context, model: `${f.id}-${v}`, top_k: 3 })));
        expect(a.status, JSON.stringify(a.body)).toBe(200);
        expect(b.body.answers).toEqual(a.body.answers);
        for (const ans of a.body.answers as { answer: string; start: number; end: number }[]) expect(context.slice(ans.start, ans.end)).toBe(ans.answer);
      }),
      { numRuns: 25, seed: 20261201 },
    );
  });

  it('mbert reads Korean and Chinese with exact offsets', async () => {
    for (const [question, context] of [
      ['수도는 어디입니까?', '대한민국의 수도는 서울이다. 부산은 두 번째로 큰 도시이다.'],
      ['首都是哪里？', '北京是中华人民共和国的首都，上海是最大的城市。'],
    ]) {
      const r = await post('/v1/qa', { question, context, model: 'mbert-qa-zip', top_k: 5 });
      expect(r.status).toBe(200);
      expect(r.body.answers.length).toBeGreaterThan(0);
      for (const a of r.body.answers as { answer: string; start: number; end: number }[]) {
        expect(a.answer.length).toBeGreaterThan(0);
        expect(context.slice(a.start, a.end)).toBe(a.answer);
      }
    }
  });

  it('roberta (one token type, positions from the pad id) answers long contexts in 512-token windows', async () => {
    const context = Array.from({ length: 400 }, (_, i) => `Sentence ${i} mentions item ${i * 7}.`).join(' ');
    const r = await post('/v1/qa', { question: 'Which item does sentence 250 mention?', context, model: 'roberta-qa-folder' });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.windows).toBeGreaterThan(1);
    const a = r.body.answers[0];
    expect(context.slice(a.start, a.end)).toBe(a.answer);
  });
});

describe('sentence embedding families', () => {
  it.each([
    ['minilm-mean', 'mean'],
    ['bge-cls', 'cls'],
  ] as const)('%s: /v1/embeddings equal %s pooling + Normalize recomputed from a direct run, within 1e-5', async (id, how) => {
    const f = family(id);
    for (const variant of ['folder', 'zip']) {
      const r = await post('/v1/embeddings', { input: PARITY_TEXTS, model: `${id}-${variant}` });
      expect(r.status).toBe(200);
      for (const [i, text] of PARITY_TEXTS.entries()) {
        const ids = refIds(f, text);
        const ref = pooled((await refRun(f, ids))['last_hidden_state'], how);
        expect(maxDiff(r.body.data[i].embedding, ref), `${variant}: ${text}`).toBeLessThan(1e-5);
      }
    }
  });

  it("minilm reads sentence-transformers' max_seq_length (256): longer is a 413 naming it, truncate cuts there as the library does", async () => {
    const f = family('minilm-mean');
    const long = Array.from({ length: 300 }, (_, i) => `word${i % 50}`).join(' ');
    expect(refIds(f, long).length).toBeGreaterThan(300);
    const refused = await post('/v1/embeddings', { input: long, model: 'minilm-mean-zip' });
    expect(refused.status).toBe(413);
    expect(refused.body.error.message).toMatch(/takes at most 256/);
    const cut = await post('/v1/embeddings', { input: long, model: 'minilm-mean-zip', truncate: true });
    expect(cut.status).toBe(200);
    // As the Python library cuts (the Rust tokenizer truncates before adding [CLS] … [SEP]); transformers.js'
    // own truncation drops the final [SEP] instead, so the reference is cut here.
    const whole = refIds(f, long);
    const ref = pooled((await refRun(f, [...whole.slice(0, 255), whole[whole.length - 1]]))['last_hidden_state'], 'mean');
    expect(maxDiff(cut.body.data[0].embedding, ref)).toBeLessThan(1e-5);
  });

  it('similarity without a threshold: the cosine, no "similar"; an over-long sentence is a 413 naming its field, truncate is honoured', async () => {
    const r = await post('/v1/similarity', { sentence_1: 'A man plays a guitar.', sentence_2: 'Someone plays an instrument.', model: 'minilm-mean-zip' });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ model: 'minilm-mean-zip', scoring: 'cosine' });
    expect(r.body.similar).toBeUndefined();
    expect(r.body.threshold).toBeUndefined();
    const long = Array.from({ length: 300 }, (_, i) => `word${i % 50}`).join(' ');
    const refused = await post('/v1/similarity', { sentence_1: long, sentence_2: 'short', model: 'minilm-mean-zip' });
    expect(refused.status).toBe(413);
    expect(refused.body.error.message).toMatch(/^sentence_1 is \d+ tokens/);
    expect(refused.body.error.message).toContain('"truncate": true');
    const batch = await post('/v1/similarity/batch', { pairs: [{ sentence_1: 'a', sentence_2: 'b' }, { sentence_1: 'c', sentence_2: long }], model: 'minilm-mean-zip' });
    expect(batch.status).toBe(413);
    expect(batch.body.error.message).toMatch(/^pairs\[1\]\.sentence_2 is/);
    expect((await post('/v1/similarity', { sentence_1: long, sentence_2: 'short', model: 'minilm-mean-zip', truncate: true })).status).toBe(200);
  });

  it('TEI /embed: normalize true by default, false gives the pooled vector unnormalised', async () => {
    const f = family('bge-cls');
    const text = PARITY_TEXTS[1];
    const [on, off] = await Promise.all([post('/embed', { inputs: text, model: 'bge-cls-zip' }), post('/embed', { inputs: [text], normalize: false, model: 'bge-cls-zip' })]);
    expect(on.status).toBe(200);
    const hidden = (await refRun(f, refIds(f, text)))['last_hidden_state'];
    expect(maxDiff(on.body[0], pooled(hidden, 'cls'))).toBeLessThan(1e-5);
    const dim = hidden.dims[2] as number;
    expect(maxDiff(off.body[0], Array.from((hidden.data as Float32Array).subarray(0, dim)))).toBeLessThan(1e-5);
  });
});

describe('the XLM-R cross-encoder (real export)', () => {
  const f = () => family('xlmr-cross-encoder');
  const query = 'web server';
  const docs = ['nginx serves web pages', 'vim edits text', 'a web server', 'curl gets URLs'];
  const reference = async () => Promise.all(docs.map(async (d) => sigmoid(((await refRun(f(), refIds(f(), query, d)))['logits'].data as Float32Array)[0])));

  it('/v1/rerank: scores equal sigmoid of a direct run on the same pair, best first; from folder and zip', async () => {
    const ref = await reference();
    for (const variant of ['folder', 'zip']) {
      const r = await post('/v1/rerank', { query, documents: docs, model: `xlmr-cross-encoder-${variant}`, return_documents: true });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      const results = r.body.results as { index: number; relevance_score: number; document: { text: string } }[];
      expect(results.map((x) => x.index).sort()).toEqual([0, 1, 2, 3]);
      for (const x of results) {
        expect(Math.abs(x.relevance_score - ref[x.index])).toBeLessThan(1e-5);
        expect(x.document.text).toBe(docs[x.index]);
      }
      expect(results.map((x) => x.index)).toEqual(ref.map((score, index) => ({ score, index })).sort((a, b) => b.score - a.score).map((x) => x.index));
    }
  });

  it('TEI /rerank, /v1/similarity and the Hugging Face route give the same scores', async () => {
    const ref = await reference();
    const tei = await post('/rerank', { query, texts: docs, model: 'xlmr-cross-encoder-zip', return_text: true });
    expect(tei.status).toBe(200);
    for (const x of tei.body as { index: number; score: number; text: string }[]) {
      expect(Math.abs(x.score - ref[x.index])).toBeLessThan(1e-5);
      expect(x.text).toBe(docs[x.index]);
    }
    const raw = await post('/rerank', { query, texts: docs, model: 'xlmr-cross-encoder-zip', raw_scores: true });
    for (const x of raw.body as { index: number; score: number }[]) expect(Math.abs(sigmoid(x.score) - ref[x.index])).toBeLessThan(1e-5);
    const sim = await post('/v1/similarity', { sentence_1: query, sentence_2: docs[0], model: 'xlmr-cross-encoder-zip' });
    expect(sim.body).toMatchObject({ scoring: 'cross-encoder' });
    expect(Math.abs(sim.body.score - ref[0])).toBeLessThan(1e-5);
    const hf = await post('/models/xlmr-cross-encoder-zip', { inputs: { text: query, text_pair: docs[2] } });
    expect(hf.status).toBe(200);
    expect(Math.abs(hf.body[0].score - ref[2])).toBeLessThan(1e-5);
  });

  it('a pair over its 62-token window is a 413 naming both lengths; truncate cuts the longer text first', async () => {
    const long = 'web pages and servers '.repeat(10);
    const r = await post('/v1/rerank', { query, documents: [long], model: 'xlmr-cross-encoder-zip' });
    expect(r.status).toBe(413);
    expect(r.body.error.message).toMatch(/^query \(\d+ tokens\) and documents\[0\] \(\d+ tokens\) make \d+ tokens/);
    expect(r.body.error.details).toMatchObject({ fields: ['query', 'documents[0]'], max_tokens: 62 });
    const cut = await post('/v1/rerank', { query, documents: [long], model: 'xlmr-cross-encoder-zip', truncate: true });
    expect(cut.status).toBe(200);
    // Longest first, as the Rust tokenizer's LongestFirst cuts it for sentence-transformers: the short query
    // stays whole and the document gets the rest of the 58 tokens the pair template (<s> q </s></s> d </s>) leaves.
    const q = refIds(f(), query).slice(1, -1);
    const d = refIds(f(), long).slice(1, -1);
    expect(q.length + d.length).toBeGreaterThan(58);
    const ids = [0, ...q, 2, 2, ...d.slice(0, 58 - q.length), 2];
    expect(ids).toHaveLength(62);
    const ref = sigmoid(((await refRun(f(), ids))['logits'].data as Float32Array)[0]);
    expect(Math.abs(cut.body.results[0].relevance_score - ref)).toBeLessThan(1e-5);
  });
});

describe("Optimum's DistilBERT classifier (real export, no gateway.json)", () => {
  it('/v1/classify scores equal softmax of a direct run; labels from id2label; pairs read in the pair template; TEI /predict agrees', async () => {
    const f = family('distilbert-classifier');
    const r = await post('/v1/classify', { inputs: PARITY_TEXTS.slice(0, 8), model: 'distilbert-classifier-zip' });
    expect(r.status).toBe(200);
    for (const [i, text] of PARITY_TEXTS.slice(0, 8).entries()) {
      const logits = Array.from((await refRun(f, refIds(f, text)))['logits'].data as Float32Array);
      const e = logits.map(Math.exp);
      const ref = e.map((x) => x / e.reduce((s, y) => s + y, 0));
      const ours = Object.fromEntries((r.body.predictions[i].labels as { label: string; score: number }[]).map((l) => [l.label, l.score]));
      expect(Object.keys(ours).sort()).toEqual(['NEGATIVE', 'POSITIVE']);
      expect(Math.abs(ours.NEGATIVE - ref[0])).toBeLessThan(1e-5);
      expect(Math.abs(ours.POSITIVE - ref[1])).toBeLessThan(1e-5);
    }
    const [a, b] = ['A man plays a guitar.', 'Someone plays an instrument.'];
    const pair = await post('/v1/classify', { inputs: [{ text: a, text_pair: b }], model: 'distilbert-classifier-folder' });
    expect(pair.status).toBe(200);
    const logits = Array.from((await refRun(f, refIds(f, a, b)))['logits'].data as Float32Array);
    const p1 = 1 / (1 + Math.exp(logits[0] - logits[1]));
    const pos = (pair.body.predictions[0].labels as { label: string; score: number }[]).find((l) => l.label === 'POSITIVE')!;
    expect(Math.abs(pos.score - p1)).toBeLessThan(1e-5);
    const tei = await post('/predict', { inputs: [a, b], model: 'distilbert-classifier-zip' });
    expect(tei.status).toBe(200);
    expect(Math.abs((tei.body as { label: string; score: number }[]).find((l) => l.label === 'POSITIVE')!.score - p1)).toBeLessThan(1e-5);
  });
});
