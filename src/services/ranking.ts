import type { ServingModel } from '../inference/registry.ts';
import { rankScores, relevance, type Ranked } from '../tasks/ranking.ts';
import { cachedAnswers, resultKey } from './caches.ts';
import type { ServiceContext } from './context.ts';
import { encodePairs, run, type TextPair } from './encode.ts';

export interface ScoreOptions {
  truncate?: boolean;
  /** The head's raw logit, no activation (TEI's raw_scores). */
  raw?: boolean;
}

/** A cross-encoder's score of each pair, in input order; exact repeats come from the result cache. */
export async function scoreTextPairs(model: ServingModel, pairs: TextPair[], ctx: ServiceContext, opts: ScoreOptions = {}): Promise<number[]> {
  const items = pairs.map((p) => ({ key: resultKey(model.cacheKey, 'rank', [p.text, p.textPair, opts.truncate ?? false, opts.raw ?? false]) }));
  const scores = await cachedAnswers(ctx, items, async (todo) => {
    const seqs = await encodePairs(model, todo.map((i) => pairs[i]), ctx, { truncate: opts.truncate });
    const res = await run(model, seqs, ctx);
    return res.rows.map((row) => ({ score: relevance(row.logits, model.manifest, { raw: opts.raw }) }));
  });
  return scores.map((s) => s.score);
}

/** Documents ranked by relevance to the query, best first; every document is scored in one submission. */
export async function rerank(model: ServingModel, query: string, documents: string[], ctx: ServiceContext, opts: ScoreOptions & { topN?: number; fields?: { query: string; documents: string } } = {}): Promise<Ranked[]> {
  const q = opts.fields?.query ?? 'query';
  const d = opts.fields?.documents ?? 'documents';
  const scores = await scoreTextPairs(model, documents.map((doc, i) => ({ text: query, textPair: doc, names: [q, `${d}[${i}]`] })), ctx, opts);
  return rankScores(scores, opts.topN);
}
