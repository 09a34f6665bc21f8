import type { ServingModel } from '../inference/registry.ts';
import { classifyLogits, type Prediction } from '../tasks/classify.ts';
import { resultKey } from './caches.ts';
import type { ServiceContext } from './context.ts';
import { encodePairs, encodeWhole, run } from './encode.ts';

/** A text to classify, alone or with its pair (NLI, paraphrase and other pair classifiers). */
export interface ClassifyInput {
  text: string;
  textPair?: string;
}

/**
 * Labels with scores for each input, in input order; softmax or sigmoid as the model declares. Pairs are read
 * in the tokenizer's pair template. Exact repeats (same model load, input and options) come from the result cache.
 */
export async function classify(model: ServingModel, inputs: ClassifyInput[], ctx: ServiceContext, opts: { topK?: number; truncate?: boolean; raw?: boolean; field?: string } = {}): Promise<Prediction[]> {
  const cache = ctx.caches?.results;
  const field = opts.field ?? 'inputs';
  const keys = inputs.map((it) => resultKey(model.cacheKey, 'classify', [it.text, it.textPair ?? null, opts.topK ?? null, opts.truncate ?? false, opts.raw ?? false]));
  const out: (Prediction | undefined)[] = keys.map((k) => cache?.get(k)?.value as Prediction | undefined);
  const todo = out.flatMap((p, i) => (p ? [] : [i]));
  if (todo.length) {
    const name = (i: number) => (inputs.length > 1 ? `${field}[${i}]` : field);
    const singles = todo.filter((i) => inputs[i].textPair === undefined);
    const pairs = todo.filter((i) => inputs[i].textPair !== undefined);
    const [a, b] = await Promise.all([
      encodeWhole(model, singles.map((i) => inputs[i].text), ctx, { names: singles.map(name), truncate: opts.truncate }),
      encodePairs(model, pairs.map((i) => ({ text: inputs[i].text, textPair: inputs[i].textPair!, names: [`${name(i)}.text`, `${name(i)}.text_pair`] })), ctx, { truncate: opts.truncate }),
    ]);
    const order = [...singles, ...pairs];
    const res = await run(model, [...a, ...b], ctx);
    const { labels, output } = model.manifest;
    res.rows.forEach((row, j) => {
      const p = classifyLogits(row.logits, { labels, output, topK: opts.topK, raw: opts.raw });
      out[order[j]] = p;
      cache?.set(keys[order[j]], { value: p });
    });
  }
  return out as Prediction[];
}
