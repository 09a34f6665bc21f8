import type { ServingModel } from '../inference/registry.ts';
import { l2Normalize } from '../tasks/similarity.ts';
import { noteCache, type ServiceContext } from './context.ts';
import { encodeWhole, run } from './encode.ts';

export interface EmbedOptions {
  /** Cut texts longer than the model's window instead of refusing them with 413. */
  truncate?: boolean;
  /** Field name of each text in error messages; `input[i]` (or `input` for one text) when omitted. */
  names?: string[];
  /** L2-normalise; the model's own choice when omitted (its Normalize module, or yes for models without modules.json). */
  normalize?: boolean;
  /** The vectors are one step of a larger answer (a collection search): not counted for the x-cache header. */
  step?: boolean;
}

export interface Embedded {
  /** One per text, in input order: pooled as the model declares, L2-normalised where the model normalises. */
  vectors: Float32Array[];
  /** Tokens fed to the model, special tokens included. */
  tokens: number;
}

type Entry = { vector: Float32Array; tokens: number };

/** Tokenizes and runs texts that no cache answered; one entry per text, in order. */
async function compute(model: ServingModel, texts: string[], names: string[], ctx: ServiceContext, truncate: boolean | undefined, normalize: boolean): Promise<Entry[]> {
  const seqs = await encodeWhole(model, texts, ctx, { names, truncate });
  const res = await run(model, seqs, ctx);
  const out = model.spec.fetches[0];
  return res.rows.map((row, i) => {
    // Own the numbers: rows are views into a batch buffer that a cache must not keep alive whole.
    const vector = Float32Array.from(row[out]);
    return { vector: normalize ? l2Normalize(vector) : vector, tokens: seqs[i].ids.length };
  });
}

/** Counts texts answered from the embedding cache or computed, for x-cache; not where no cache is kept (ingestion) or for a step. */
function note(ctx: ServiceContext, how: 'hit' | 'miss', n: number, cache: unknown, opts: EmbedOptions): void {
  if (cache && !opts.step) noteCache(ctx, how, n);
}

/**
 * Sentence embeddings, pooled (and normalised) as the model's own library does it: pooling runs in the
 * worker. Each distinct text is looked up in the embedding cache first; only the misses are tokenized and run.
 */
export async function embed(model: ServingModel, texts: string[], ctx: ServiceContext, opts: EmbedOptions = {}): Promise<Embedded> {
  const cache = ctx.caches?.embeddings;
  const normalize = opts.normalize ?? model.manifest.normalize;
  const prefix = `${model.cacheKey}\u0000${opts.truncate ? 1 : 0}${normalize ? 1 : 0}\u0000`;
  if (texts.length === 1) {
    // One text, as most requests send: no sets or maps to build (a cache hit is answered with two lookups).
    const key = prefix + texts[0];
    let entry = ctx.fresh ? undefined : cache?.get(key);
    if (entry) note(ctx, 'hit', 1, cache, opts);
    else {
      note(ctx, 'miss', 1, cache, opts);
      entry = (await compute(model, texts, [opts.names?.[0] ?? 'input'], ctx, opts.truncate, normalize))[0];
      cache?.set(key, entry);
    }
    return { vectors: [entry.vector], tokens: entry.tokens };
  }
  const found = new Map<string, Entry>();
  const missing: string[] = [];
  for (const t of new Set(texts)) {
    const hit = ctx.fresh ? undefined : cache?.get(prefix + t);
    if (hit) found.set(t, hit);
    else missing.push(t);
  }
  if (found.size) note(ctx, 'hit', found.size, cache, opts);
  if (missing.length) {
    note(ctx, 'miss', missing.length, cache, opts);
    // Errors name the text's field in the caller's list, not its place among the misses.
    const names = missing.map((t) => {
      const i = texts.indexOf(t);
      return opts.names?.[i] ?? `input[${i}]`;
    });
    const entries = await compute(model, missing, names, ctx, opts.truncate, normalize);
    entries.forEach((entry, i) => {
      found.set(missing[i], entry);
      cache?.set(prefix + missing[i], entry);
    });
  }
  const entries = texts.map((t) => found.get(t)!);
  return { vectors: entries.map((e) => e.vector), tokens: entries.reduce((n, e) => n + e.tokens, 0) };
}
