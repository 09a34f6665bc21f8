import type { ServingModel } from '../inference/registry.ts';
import { rankScores, relevance, type Ranked } from '../tasks/ranking.ts';
import { resultKey } from './caches.ts';
import type { ServiceContext } from './context.ts';
import { encodePairs, run, type TextPair } from './encode.ts';

export interface ScoreOptions {
  truncate?: boolean;
  /** The head's raw logit, no activation (TEI's raw_scores). */
  raw?: boolean;
}

/** A cross-encoder's score of each pair, in input order; exact repeats come from the result cache. */
export async function scoreTextPairs(model: ServingModel, pairs: TextPair[], ctx: ServiceContext, opts: ScoreOptions = {}): Promise<number[]> {
  const cache = ctx.caches?.results;
  const keys = pairs.map((p) => resultKey(model.cacheKey, 'rank', [p.text, p.textPair, opts.truncate ?? false, opts.raw ?? false]));
  const out: (number | undefined)[] = keys.map((k) => cache?.get(k)?.value as number | undefined);
  const todo = out.flatMap((v, i) => (v === undefined ? [i] : []));
  if (todo.length) {
    const seqs = await encodePairs(model, todo.map((i) => pairs[i]), ctx, { truncate: opts.truncate });
    const res = await run(model, seqs, ctx);
    res.rows.forEach((row, j) => {
      const score = relevance(row.logits, model.manifest, { raw: opts.raw });
      out[todo[j]] = score;
      cache?.set(keys[todo[j]], { value: score });
    });
  }
  return out as number[];
}

/** Documents ranked by relevance to the query, best first; every document is scored in one submission. */
export async function rerank(model: ServingModel, query: string, documents: string[], ctx: ServiceContext, opts: ScoreOptions & { topN?: number; fields?: { query: string; documents: string } } = {}): Promise<Ranked[]> {
  const q = opts.fields?.query ?? 'query';
  const d = opts.fields?.documents ?? 'documents';
  const scores = await scoreTextPairs(model, documents.map((doc, i) => ({ text: query, textPair: doc, names: [q, `${d}[${i}]`] })), ctx, opts);
  return rankScores(scores, opts.topN);
}
