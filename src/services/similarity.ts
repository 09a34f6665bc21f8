import { GatewayError } from '../errors.ts';
import type { ServingModel } from '../inference/registry.ts';
import { cosine, isSimilar } from '../tasks/similarity.ts';
import type { ServiceContext } from './context.ts';
import { embed } from './embeddings.ts';

export interface Pair {
  sentence_1: string;
  sentence_2: string;
}

export interface PairScore {
  score: number;
  similar: boolean;
}

/** The model's decision threshold; a similarity model without one cannot say "similar". */
export function thresholdOf(model: ServingModel): number {
  const t = model.manifest.threshold;
  if (t === undefined) throw new GatewayError('unprocessable_input', `model "${model.name}" declares no similarity threshold in gateway.json`);
  return t;
}

/**
 * Cosine similarity of each pair. Every distinct sentence is embedded once, all in one submission, so a
 * batch of pairs that share sentences costs only its distinct sentences.
 */
export async function scorePairs(model: ServingModel, pairs: Pair[], ctx: ServiceContext, opts: { truncate?: boolean } = {}): Promise<PairScore[]> {
  const threshold = thresholdOf(model);
  const index = new Map<string, number>();
  for (const p of pairs) for (const s of [p.sentence_1, p.sentence_2]) if (!index.has(s)) index.set(s, index.size);
  const { vectors } = await embed(model, [...index.keys()], ctx, { truncate: opts.truncate, field: 'sentence' });
  return pairs.map((p) => {
    const score = Math.max(-1, Math.min(1, cosine(vectors[index.get(p.sentence_1)!], vectors[index.get(p.sentence_2)!])));
    return { score, similar: isSimilar(score, threshold) };
  });
}

/** Hugging Face sentence-similarity: one source sentence against several others. */
export async function sourceAgainst(model: ServingModel, source: string, others: string[], ctx: ServiceContext): Promise<number[]> {
  const res = await scorePairs(model, others.map((s) => ({ sentence_1: source, sentence_2: s })), ctx);
  return res.map((r) => r.score);
}
