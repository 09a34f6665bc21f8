/**
 * Evaluate a QA model exactly as the gateway serves it: src/inference/tokenizer.ts encodePairWindows (the model's
 * max_length, stride 64 = limits.qaStride), onnxruntime-node with one intra-op thread, src/tasks/qa.ts answerSpans
 * (softmax over [CLS] + context per window, p_start * p_end, spans widened to whole words, max_answer_length 30).
 * EM/F1 with the official SQuAD normalisation (lower-case, ASCII punctuation and English articles removed), best over
 * the gold answers.
 *
 * No-answer: null = min over windows of p_start[CLS] * p_end[CLS] (the null answer answerSpans offers with
 * handleImpossibleAnswer), best = the best non-empty span; na_prob = null / (null + best); the empty answer wins iff
 * na_prob > t (the gateway's rule for gateway.json `no_answer_threshold`). The threshold is chosen on the answerable
 * questions plus their generated negatives with SQuAD 2.0's best-threshold procedure.
 *
 * usage: node --import tsx scripts/train/eval_qa.ts (--zip models/qa-demo.zip | --dir folder-with-model.onnx-and-tokenizer.json)
 *          [--max-length 256] [--pairs .work/qa/dev.jsonl] [--neg .work/qa/dev_neg.jsonl] [--threshold t] [--limit n]
 *          [--max-answer-length 30] [--out result.json] [--predictions preds.jsonl]
 *          [--model other.onnx] [--tokenizer tokenizer.json] [--gateway gateway.json] (override the folder's files)
 * pairs files: JSONL rows { id, q, c, golds: string[] } (golds empty = unanswerable), written by data_qa.py.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { TextTokenizer, type EncodedWindow } from '../../src/inference/tokenizer.ts';
import { answerSpans, type QaWindow } from '../../src/tasks/qa.ts';
import { readZip } from '../../test/helpers/unzip.ts';
import { emF1, normalizeAnswer } from '../squad-metrics.ts';

export interface Pair {
  id: string;
  q: string;
  c: string;
  golds: string[];
}

/** int64 input tensors of windows, padded to the longest (the three standard inputs). */
export function feeds(ws: Pick<EncodedWindow, 'ids' | 'attentionMask' | 'typeIds'>[]): Record<string, ort.Tensor> {
  const t = Math.max(...ws.map((w) => w.ids.length));
  const ids = new BigInt64Array(ws.length * t);
  const att = new BigInt64Array(ws.length * t);
  const typ = new BigInt64Array(ws.length * t);
  ws.forEach((w, i) =>
    w.ids.forEach((v, j) => {
      ids[i * t + j] = BigInt(v);
      att[i * t + j] = BigInt(w.attentionMask[j]);
      typ[i * t + j] = BigInt(w.typeIds[j]);
    }),
  );
  const dims = [ws.length, t];
  return { input_ids: new ort.Tensor('int64', ids, dims), attention_mask: new ort.Tensor('int64', att, dims), token_type_ids: new ort.Tensor('int64', typ, dims) };
}

/** p_start[CLS] * p_end[CLS] of one window, as answerSpans computes it (softmax over [CLS] + context tokens). */
function nullScore(w: QaWindow): number {
  const idx = [0];
  for (let i = 0; i < w.sequenceIds.length; i++) if (w.sequenceIds[i] === 1 && i !== 0) idx.push(i);
  const p = (x: ArrayLike<number>) => {
    let m = -Infinity;
    for (const i of idx) m = Math.max(m, x[i]);
    let s = 0;
    for (const i of idx) s += Math.exp(x[i] - m);
    return Math.exp(x[0] - m) / s;
  };
  return p(w.startLogits) * p(w.endLogits);
}

export interface Scored {
  id: string;
  pred: string;
  best: number;
  nul: number;
  naProb: number;
  golds: string[];
  windows: number;
}

export class QaEvaluator {
  private constructor(
    private readonly session: ort.InferenceSession,
    private readonly tok: TextTokenizer,
    private readonly maxAnswerLength: number,
  ) {}

  static async create(modelPath: string, tokenizerPath: string, maxLength: number, maxAnswerLength = 30): Promise<QaEvaluator> {
    const session = await ort.InferenceSession.create(modelPath, { intraOpNumThreads: 1, interOpNumThreads: 1 });
    return new QaEvaluator(session, await TextTokenizer.fromFile(tokenizerPath, { maxLength }), maxAnswerLength);
  }

  /** Logits for windows, run in padded batches of up to `batch` windows (the model is batch-invariant). */
  private async logits(ws: EncodedWindow[], batch = 16): Promise<{ start: Float32Array; end: Float32Array }[]> {
    const out: { start: Float32Array; end: Float32Array }[] = [];
    for (let k = 0; k < ws.length; k += batch) {
      const chunk = ws.slice(k, k + batch);
      const t = Math.max(...chunk.map((w) => w.ids.length));
      const res = await this.session.run(feeds(chunk));
      const s = res.start_logits.data as Float32Array;
      const e = res.end_logits.data as Float32Array;
      chunk.forEach((_, i) => out.push({ start: s.slice(i * t, (i + 1) * t), end: e.slice(i * t, (i + 1) * t) }));
    }
    return out;
  }

  async score(pairs: Pair[]): Promise<Scored[]> {
    const all: Scored[] = [];
    for (let k = 0; k < pairs.length; k += 8) {
      const group = pairs.slice(k, k + 8);
      const wins = await Promise.all(group.map((p) => this.tok.encodePairWindows(p.q, p.c, { stride: 64 })));
      const lg = await this.logits(wins.flat());
      let at = 0;
      group.forEach((p, j) => {
        const windows: QaWindow[] = wins[j].map((w) => {
          const l = lg[at++];
          return { offsets: w.offsets, sequenceIds: w.sequenceIds, wordIds: w.wordIds, startLogits: l.start, endLogits: l.end };
        });
        const opts = { topK: 1, maxAnswerLength: this.maxAnswerLength, handleImpossibleAnswer: false };
        const [best] = answerSpans(windows, p.c, opts);
        const nul = Math.min(...windows.map(nullScore));
        // Cross-check the null score against answerSpans' own null answer whenever it ranks first.
        const [first] = answerSpans(windows, p.c, { ...opts, handleImpossibleAnswer: true });
        if (first.answer === '' && Math.abs(first.score - nul) > 1e-9 * Math.max(1, nul)) throw new Error(`null score mismatch on ${p.id}`);
        const b = best?.score ?? 0;
        all.push({ id: p.id, pred: best?.answer ?? '', best: b, nul, naProb: b > 0 ? nul / (nul + b) : 1, golds: p.golds, windows: windows.length });
      });
    }
    return all;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

/**
 * SQuAD 2.0 best-threshold search over na_prob (its find_best_thresh): start from "abstain everywhere", then answer
 * the questions in increasing na_prob; the best prefix gives t (answer iff na_prob <= t). Returns t and the overall
 * F1 and EM there, in percent.
 */
export function bestThreshold(rows: Scored[]): { t: number; f1: number; em: number } {
  const sorted = [...rows].sort((a, b) => a.naProb - b.naProb);
  let f1 = rows.filter((r) => r.golds.length === 0).length;
  let em = f1;
  let best = { t: 0, f1, em };
  sorted.forEach((r, i) => {
    const [e1, f] = emF1(r.pred, r.golds);
    const [e0, f0] = emF1('', r.golds);
    f1 += f - f0;
    em += e1 - e0;
    const tieNext = i + 1 < sorted.length && sorted[i + 1].naProb === r.naProb;
    if (!tieNext && f1 > best.f1) best = { t: r.naProb, f1, em };
  });
  return { t: best.t, f1: (100 * best.f1) / rows.length, em: (100 * best.em) / rows.length };
}

export function summarize(rows: Scored[], t: number) {
  const has = rows.filter((r) => r.golds.length > 0);
  const neg = rows.filter((r) => r.golds.length === 0);
  const mean = (xs: number[]) => (xs.length ? (100 * xs.reduce((a, b) => a + b, 0)) / xs.length : 0);
  const off = has.map((r) => emF1(r.pred, r.golds));
  const on = rows.map((r) => emF1(r.naProb > t ? '' : r.pred, r.golds));
  return {
    n_answerable: has.length,
    n_unanswerable: neg.length,
    answerable_no_answer_off: { em: mean(off.map((x) => x[0])), f1: mean(off.map((x) => x[1])) },
    threshold: t,
    overall_no_answer_on: { em: mean(on.map((x) => x[0])), f1: mean(on.map((x) => x[1])) },
    answerable_no_answer_on: { f1: mean(rows.flatMap((r, i) => (r.golds.length ? [on[i][1]] : []))) },
    unanswerable_abstained: mean(neg.map((r) => Number(r.naProb > t))),
    always_no_answer: { em: mean(rows.map((r) => Number(r.golds.length === 0))), f1: mean(rows.map((r) => Number(r.golds.length === 0))) },
  };
}

const SENT = /(?<=[.!?])\s+/;
/** Baselines on the answerable questions: the first sentence of the context, and the sentence sharing most words with the question. */
export function baselines(pairs: Pair[]) {
  const words = (s: string) => new Set(normalizeAnswer(s).split(' ').filter(Boolean));
  let first = 0;
  let overlap = 0;
  let n = 0;
  for (const p of pairs) {
    if (p.golds.length === 0) continue;
    const sents = p.c.split(SENT).filter((s) => s.trim());
    const qw = words(p.q);
    let best = sents[0] ?? '';
    let bestN = -1;
    for (const s of sents) {
      const w = words(s);
      let k = 0;
      for (const x of w) if (qw.has(x)) k++;
      if (k > bestN) [best, bestN] = [s, k];
    }
    first += emF1(sents[0] ?? '', p.golds)[1];
    overlap += emF1(best, p.golds)[1];
    n++;
  }
  return { first_sentence_f1: (100 * first) / n, best_overlap_sentence_f1: (100 * overlap) / n };
}

export function readPairs(file: string, limit = Infinity): Pair[] {
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .slice(0, limit)
    .map((l) => JSON.parse(l) as Pair)
    .map((p) => ({ ...p, golds: p.golds ?? [] }));
}

/** model.onnx, tokenizer.json and gateway.json of a zip or a folder. */
export async function modelFiles(opts: { zip?: string; dir?: string }): Promise<{ dir: string; gateway: Record<string, unknown> }> {
  let dir = opts.dir;
  if (opts.zip) {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'eval-'));
    for (const [name, data] of Object.entries(await readZip(opts.zip))) fs.writeFileSync(path.join(dir, name), data);
  }
  if (!dir) throw new Error('--zip or --dir is required');
  const gw = path.join(dir, 'gateway.json');
  return { dir, gateway: fs.existsSync(gw) ? (JSON.parse(fs.readFileSync(gw, 'utf8')) as Record<string, unknown>) : {} };
}

async function main(): Promise<void> {
  const { values: a } = parseArgs({
    options: {
      zip: { type: 'string' },
      dir: { type: 'string' },
      tokenizer: { type: 'string' },
      model: { type: 'string' },
      gateway: { type: 'string' },
      'max-length': { type: 'string' },
      'max-answer-length': { type: 'string', default: '30' },
      pairs: { type: 'string', default: 'scripts/train/.work/qa/dev.jsonl' },
      neg: { type: 'string' },
      threshold: { type: 'string' },
      limit: { type: 'string' },
      out: { type: 'string' },
      predictions: { type: 'string' },
    },
  });
  const { dir, gateway: gw } = await modelFiles({ zip: a.zip, dir: a.dir });
  const gateway = a.gateway ? (JSON.parse(fs.readFileSync(a.gateway, 'utf8')) as Record<string, unknown>) : gw;
  const maxLength = Number(a['max-length'] ?? gateway.max_length ?? 256);
  const limit = a.limit ? Number(a.limit) : Infinity;
  const ev = await QaEvaluator.create(a.model ?? path.join(dir, 'model.onnx'), a.tokenizer ?? path.join(dir, 'tokenizer.json'), maxLength, Number(a['max-answer-length']));
  const pairs = readPairs(a.pairs!, limit);
  const negs = a.neg ? readPairs(a.neg, limit) : [];
  const t0 = performance.now();
  const rows = await ev.score([...pairs, ...negs]);
  const secs = (performance.now() - t0) / 1000;
  await ev.release();
  const stored = typeof gateway.no_answer_threshold === 'number' ? gateway.no_answer_threshold : undefined;
  const best = negs.length ? bestThreshold(rows) : undefined;
  const t = a.threshold !== undefined ? Number(a.threshold) : (stored ?? best?.t ?? 0.5);
  const result = {
    model: a.model ?? a.zip ?? dir,
    max_length: maxLength,
    max_answer_length: Number(a['max-answer-length']),
    pairs: a.pairs,
    negatives: a.neg ?? null,
    seconds: Math.round(secs),
    windows: rows.reduce((s, r) => s + r.windows, 0),
    best_threshold: best ?? null,
    threshold_source: a.threshold !== undefined ? 'argument' : stored !== undefined ? 'gateway.json' : best ? 'best on this set' : 'default 0.5',
    ...summarize(rows, t),
    at_default_threshold_0_5: negs.length ? summarize(rows, 0.5).overall_no_answer_on : null,
    baselines: baselines(pairs),
  };
  const text = JSON.stringify(result, null, 1);
  console.log(text);
  if (a.out) fs.writeFileSync(a.out, text + '\n');
  if (a.predictions) fs.writeFileSync(a.predictions, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
