import type { ServingModel } from '../inference/registry.ts';
import { classifyLogits, type Prediction } from '../tasks/classify.ts';
import { resultKey } from './caches.ts';
import type { ServiceContext } from './context.ts';
import { encodeWhole, run } from './encode.ts';

/**
 * Labels with scores for each text, in input order; softmax or sigmoid as the model declares. Exact
 * repeats (same model version, text and options) come from the result cache.
 */
export async function classify(model: ServingModel, texts: string[], ctx: ServiceContext, opts: { topK?: number; truncate?: boolean } = {}): Promise<Prediction[]> {
  const cache = ctx.caches?.results;
  const keys = texts.map((text) => resultKey(model.version, 'classify', [text, opts.topK ?? null, opts.truncate ?? false]));
  const out: (Prediction | undefined)[] = keys.map((k) => cache?.get(k)?.value as Prediction | undefined);
  const todo = out.flatMap((p, i) => (p ? [] : [i]));
  if (todo.length) {
    const seqs = await encodeWhole(model, todo.map((i) => texts[i]), ctx, { field: 'inputs', truncate: opts.truncate, positions: todo, total: texts.length });
    const res = await run(model, seqs, ctx);
    const { labels, output } = model.manifest;
    res.rows.forEach((row, j) => {
      const p = classifyLogits(row.logits, { labels, output, topK: opts.topK });
      out[todo[j]] = p;
      cache?.set(keys[todo[j]], { value: p });
    });
  }
  return out as Prediction[];
}
