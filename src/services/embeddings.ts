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

/** Sentence embeddings, pooled as the model declares (pooling runs in the worker), L2-normalised. */
export async function embed(model: ServingModel, texts: string[], ctx: ServiceContext, opts: EmbedOptions = {}): Promise<Embedded> {
  const seqs = await encodeWhole(model, texts, ctx, { field: opts.field ?? 'input', truncate: opts.truncate });
  const res = await run(model, seqs, ctx);
  const out = model.spec.fetches[0];
  const vectors = res.rows.map((row) => (out === 'sentence_embedding' ? l2Normalize(row[out]) : row[out]));
  return { vectors, tokens: seqs.reduce((n, s) => n + s.ids.length, 0) };
}
