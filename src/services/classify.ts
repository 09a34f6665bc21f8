import type { ServingModel } from '../inference/registry.ts';
import { classifyLogits, type Prediction } from '../tasks/classify.ts';
import { cachedAnswers, resultKey } from './caches.ts';
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
  const field = opts.field ?? 'inputs';
  const options = [opts.topK ?? null, opts.truncate ?? false, opts.raw ?? false];
  const scope = `classify\u0000${model.cacheKey}\u0000${JSON.stringify(options)}`;
  const items = inputs.map((it) => ({
    key: resultKey(model.cacheKey, 'classify', [it.text, it.textPair ?? null, ...options]),
    // Pairs are answered from the exact cache only: "similar" would have to hold for both texts.
    ...(ctx.caches?.semantic?.covers('text-classification') && it.textPair === undefined ? { semantic: { scope, text: it.text } } : {}),
  }));
  return cachedAnswers(ctx, items, async (todo) => {
    const out: Prediction[] = new Array(inputs.length);
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
      out[order[j]] = classifyLogits(row.logits, { labels, output, topK: opts.topK, raw: opts.raw });
    });
    return todo.map((i) => out[i]);
  });
}
