/**
 * Evaluate rerank-demo / retrieve-demo on SquadShifts new_wiki dev as the gateway would run them: the gateway's
 * tokenizer (src/inference/tokenizer.ts), onnxruntime-node with one intra-op thread, the gateway's pooling and
 * normalisation (src/tasks/similarity.ts). Gold = the paragraph the question was written on.
 *
 * rerank:   BM25's top K (default 20) paragraphs over all 1,581 dev paragraphs are re-ordered by the cross-encoder's
 *           logit for (question, paragraph) in the pair template (a paragraph longer than the window: the best of its
 *           windows, stride 64; almost every new_wiki paragraph fits in one). MRR@10 and recall@1/5 against BM25's own
 *           order of the same candidates.
 * retrieve: every paragraph and question embedded alone (texts cut at max_length tokens), pooled as gateway.json says,
 *           L2-normalised, cosine; recall@5/20 and MRR@10 over all 1,581 paragraphs, against BM25 and the hybrid of
 *           both by reciprocal rank fusion (k = 60, each list's top 100).
 *
 * usage: node --import tsx scripts/train/eval_rank.ts rerank|retrieve (--zip z | --dir d) [--dev .work/ret/dev.json]
 *          [--k 20] [--limit n] [--out result.json] [--model other.onnx] [--tokenizer t.json] [--gateway g.json]
 *          [--keyword-weights 0.5,0.6,0.7] (retrieve: the hybrid with BM25 weighted w, the model 1 - w)
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { TextTokenizer } from '../../src/inference/tokenizer.ts';
import { l2Normalize, POOLING_POST, type Pooling } from '../../src/tasks/similarity.ts';
import { applyPost } from '../../src/inference/post-process.ts';
import { reciprocalRankFusion, RRF_K } from '../../src/collections/fusion.ts';
import { feeds, modelFiles } from './eval_qa.ts';

interface Dev {
  paras: string[];
  qs: { id: string; q: string; pid: number; bm25: number[] }[];
}

export function rankMetrics(ranked: number[][], gold: number[]) {
  let mrr = 0;
  const hits = { 1: 0, 5: 0, 20: 0, 100: 0 };
  ranked.forEach((r, i) => {
    const at = r.indexOf(gold[i]);
    if (at >= 0 && at < 10) mrr += 1 / (at + 1);
    for (const k of [1, 5, 20, 100] as const) if (at >= 0 && at < k) hits[k]++;
  });
  const n = ranked.length;
  return { 'mrr@10': mrr / n, 'recall@1': hits[1] / n, 'recall@5': hits[5] / n, 'recall@20': hits[20] / n, 'recall@100': hits[100] / n };
}

/** The gateway's reciprocal rank fusion (src/collections/fusion.ts, k = 60) of each list's top `depth`, weighted. */
export function rrf(lists: number[][], depth = 100, weights?: number[]): number[] {
  return reciprocalRankFusion(lists.map((l) => l.slice(0, depth)), String, RRF_K, weights).map((f) => f.item);
}

/** Cross-encoder logits of (query, passage) pairs: the best window of each pair. */
export async function pairScores(session: ort.InferenceSession, tok: TextTokenizer, pairs: [string, string][], batch = 16): Promise<number[]> {
  const wins = await Promise.all(pairs.map(([q, p]) => tok.encodePairWindows(q, p, { stride: 64 })));
  const flat = wins.flatMap((ws, i) => ws.map((w) => ({ w, i })));
  flat.sort((a, b) => a.w.ids.length - b.w.ids.length);
  const best = new Array<number>(pairs.length).fill(-Infinity);
  for (let k = 0; k < flat.length; k += batch) {
    const chunk = flat.slice(k, k + batch);
    const out = (await session.run(feeds(chunk.map((c) => c.w)))).logits.data as Float32Array;
    chunk.forEach((c, j) => (best[c.i] = Math.max(best[c.i], out[j])));
  }
  return best;
}

/** Pooled, L2-normalised embeddings of texts cut at the model's window (a graph's own `sentence_embedding`, as the gateway takes it, else its token vectors pooled). */
export async function embedTexts(session: ort.InferenceSession, tok: TextTokenizer, texts: string[], pooling: Pooling, batch = 32): Promise<Float32Array[]> {
  const wins = await Promise.all(texts.map((t) => tok.encodeTruncated(t)));
  const order = wins.map((_, i) => i).sort((a, b) => wins[a].ids.length - wins[b].ids.length);
  const out = new Array<Float32Array>(texts.length);
  for (let k = 0; k < order.length; k += batch) {
    const idx = order.slice(k, k + batch);
    const f = feeds(idx.map((i) => wins[i]));
    const fetch = session.outputNames.includes('sentence_embedding') ? 'sentence_embedding' : 'last_hidden_state';
    const h = (await session.run(f, [fetch]))[fetch];
    const post = fetch === 'sentence_embedding' ? 'none' : POOLING_POST[pooling];
    const { data, dims } = applyPost(h.data as Float32Array, h.dims, post, f.attention_mask.data as BigInt64Array);
    idx.forEach((i, j) => (out[i] = l2Normalize(data.slice(j * dims[1], (j + 1) * dims[1]))));
  }
  return out;
}

async function main(): Promise<void> {
  const { values: a, positionals } = parseArgs({
    allowPositionals: true,
    options: { zip: { type: 'string' }, dir: { type: 'string' }, model: { type: 'string' }, tokenizer: { type: 'string' }, gateway: { type: 'string' }, dev: { type: 'string', default: 'scripts/train/.work/ret/dev.json' }, k: { type: 'string', default: '20' }, limit: { type: 'string' }, out: { type: 'string' }, 'keyword-weights': { type: 'string' } },
  });
  const kind = positionals[0];
  const { dir, gateway: gw } = await modelFiles({ zip: a.zip, dir: a.dir });
  const gateway = a.gateway ? (JSON.parse(fs.readFileSync(a.gateway, 'utf8')) as Record<string, unknown>) : gw;
  const dev = JSON.parse(fs.readFileSync(a.dev!, 'utf8')) as Dev;
  const qs = dev.qs.slice(0, a.limit ? Number(a.limit) : undefined);
  const session = await ort.InferenceSession.create(a.model ?? path.join(dir, 'model.onnx'), { intraOpNumThreads: 1, interOpNumThreads: 1 });
  const tok = await TextTokenizer.fromFile(a.tokenizer ?? path.join(dir, 'tokenizer.json'), { maxLength: Number(gateway.max_length ?? 256) });
  const gold = qs.map((q) => q.pid);
  const t0 = performance.now();
  let result: Record<string, unknown>;
  if (kind === 'rerank') {
    const K = Number(a.k);
    const pairs = qs.flatMap((q) => q.bm25.slice(0, K).map((j) => [q.q, dev.paras[j]] as [string, string]));
    // In slices of 10,000 pairs: encoding all 159k pairs of the full dev set at once ran out of heap.
    const scores: number[] = [];
    for (let k = 0; k < pairs.length; k += 10_000) scores.push(...(await pairScores(session, tok, pairs.slice(k, k + 10_000))));
    const ranked = qs.map((q, i) => {
      const cand = q.bm25.slice(0, K);
      const s = scores.slice(i * K, (i + 1) * K);
      return cand.map((j, x) => ({ j, s: s[x], x })).sort((u, v) => v.s - u.s || u.x - v.x).map((c) => c.j);
    });
    result = { task: 'rerank', candidates: `BM25 top ${K} of all ${dev.paras.length} dev paragraphs`, model: rankMetrics(ranked, gold), bm25: rankMetrics(qs.map((q) => q.bm25.slice(0, K)), gold) };
  } else {
    const pooling = (gateway.pooling ?? 'mean') as Pooling;
    const P = await embedTexts(session, tok, dev.paras, pooling);
    const Q = await embedTexts(session, tok, qs.map((q) => q.q), pooling);
    const dense = Q.map((qv) => {
      const s = P.map((pv, j) => ({ j, s: pv.reduce((acc, x, d) => acc + x * qv[d], 0) }));
      return s.sort((u, v) => v.s - u.s || u.j - v.j).slice(0, 100).map((x) => x.j);
    });
    result = {
      task: 'retrieve',
      corpus: `all ${dev.paras.length} dev paragraphs`,
      model: rankMetrics(dense, gold),
      bm25: rankMetrics(qs.map((q) => q.bm25), gold),
      hybrid_rrf60: rankMetrics(qs.map((q, i) => rrf([q.bm25, dense[i]])), gold),
    };
    // --keyword-weights 0.5,0.6,...: the hybrid with BM25's list weighted w and the model's 1 - w (the gateway's
    // keyword_weight; 0.5 is the plain RRF above).
    if (a['keyword-weights']) {
      result.hybrid_by_keyword_weight = Object.fromEntries(a['keyword-weights'].split(',').map((w) => [w, rankMetrics(qs.map((q, i) => rrf([q.bm25, dense[i]], 100, [Number(w), 1 - Number(w)])), gold)]));
    }
  }
  await session.release();
  const text = JSON.stringify({ model_path: a.model ?? a.zip ?? dir, questions: qs.length, seconds: Math.round((performance.now() - t0) / 1000), ...result }, null, 1);
  console.log(text);
  if (a.out) fs.writeFileSync(a.out, text + '\n');
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
