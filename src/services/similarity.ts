import type { ServingModel } from '../inference/registry.ts';
import { cosine, isSimilar } from '../tasks/similarity.ts';
import type { ServiceContext } from './context.ts';
import { embed } from './embeddings.ts';
import { scoreTextPairs } from './ranking.ts';

export interface Pair {
  sentence_1: string;
  sentence_2: string;
}

export interface PairScore {
  score: number;
  /** Only where the model declares a threshold. */
  similar?: boolean;
}

/** How a similarity model scores: the cosine of two embeddings, or a cross-encoder's own score of the pair. */
export function scoringOf(model: ServingModel): 'cosine' | 'cross-encoder' {
  return model.manifest.task === 'text-ranking' ? 'cross-encoder' : 'cosine';
}

/**
 * Similarity of each pair. A sentence-similarity model embeds every distinct sentence once, all in one
 * submission, and scores the cosine; a text-ranking model (cross-encoder) reads each pair and gives its own
 * score. `similar` only where the model declares a threshold. `names(i)` gives a pair's field prefix for
 * messages (`pairs[i]`), or '' for a single pair.
 */
export async function scorePairs(model: ServingModel, pairs: Pair[], ctx: ServiceContext, opts: { truncate?: boolean; prefix?: (i: number) => string } = {}): Promise<PairScore[]> {
  const threshold = model.manifest.threshold;
  const prefix = opts.prefix ?? ((i: number) => (pairs.length > 1 ? `pairs[${i}].` : ''));
  let scores: number[];
  if (scoringOf(model) === 'cross-encoder') {
    scores = await scoreTextPairs(
      model,
      pairs.map((p, i) => ({ text: p.sentence_1, textPair: p.sentence_2, names: [`${prefix(i)}sentence_1`, `${prefix(i)}sentence_2`] })),
      ctx,
      { truncate: opts.truncate },
    );
  } else {
    const index = new Map<string, number>();
    const names: string[] = [];
    pairs.forEach((p, i) => {
      for (const key of ['sentence_1', 'sentence_2'] as const) {
        if (index.has(p[key])) continue;
        index.set(p[key], index.size);
        names.push(`${prefix(i)}${key}`);
      }
    });
    const { vectors } = await embed(model, [...index.keys()], ctx, { truncate: opts.truncate, names });
    scores = pairs.map((p) => cosine(vectors[index.get(p.sentence_1)!], vectors[index.get(p.sentence_2)!]));
  }
  return scores.map((score) => (threshold === undefined ? { score } : { score, similar: isSimilar(score, threshold) }));
}

/** Hugging Face sentence-similarity: one source sentence against several others. */
export async function sourceAgainst(model: ServingModel, source: string, others: string[], ctx: ServiceContext): Promise<number[]> {
  const res = await scorePairs(
    model,
    others.map((s) => ({ sentence_1: source, sentence_2: s })),
    ctx,
    { prefix: () => 'inputs.' },
  );
  return res.map((r) => r.score);
}
