import type { ServingModel } from '../inference/registry.ts';
import { l2Normalize } from '../tasks/similarity.ts';
import type { ServiceContext } from './context.ts';
import { encodeWhole, run } from './encode.ts';

export interface EmbedOptions {
  /** Cut texts longer than the model's window instead of refusing them with 413. */
  truncate?: boolean;
  /** Names the field in error messages, e.g. `input` or `sentence_1`. */
  field?: string;
}

export interface Embedded {
  /** L2-normalised, one per text, in input order. */
  vectors: Float32Array[];
  /** Tokens fed to the model, special tokens included. */
  tokens: number;
}

/**
 * Sentence embeddings, pooled as the model declares (pooling runs in the worker), L2-normalised. Each
 * distinct text is looked up in the embedding cache first; only the misses are tokenized and run.
 */
export async function embed(model: ServingModel, texts: string[], ctx: ServiceContext, opts: EmbedOptions = {}): Promise<Embedded> {
  const cache = ctx.caches?.embeddings;
  const keyOf = (t: string) => `${model.version}\u0000${opts.truncate ? 1 : 0}\u0000${t}`;
  const found = new Map<string, { vector: Float32Array; tokens: number }>();
  const missing: string[] = [];
  for (const t of new Set(texts)) {
    const hit = cache?.get(keyOf(t));
    if (hit) found.set(t, hit);
    else missing.push(t);
  }
  if (missing.length) {
    const field = opts.field ?? 'input';
    // Errors must name the position in the caller's list, not in the list of misses.
    const seqs = await encodeWhole(model, missing, ctx, { field, truncate: opts.truncate, positions: missing.map((t) => texts.indexOf(t)), total: texts.length });
    const res = await run(model, seqs, ctx);
    const out = model.spec.fetches[0];
    res.rows.forEach((row, i) => {
      // Own the numbers: rows are views into a batch buffer that a cache must not keep alive whole.
      const vector = out === 'sentence_embedding' ? l2Normalize(row[out]) : Float32Array.from(row[out]);
      const entry = { vector, tokens: seqs[i].ids.length };
      found.set(missing[i], entry);
      cache?.set(keyOf(missing[i]), entry);
    });
  }
  const entries = texts.map((t) => found.get(t)!);
  return { vectors: entries.map((e) => e.vector), tokens: entries.reduce((n, e) => n + e.tokens, 0) };
}
