import type { ServingModel } from '../inference/registry.ts';
import { answerSpans, type QaAnswer, type QaOptions } from '../tasks/qa.ts';
import { resultKey } from './caches.ts';
import { timedTokenize, type ServiceContext } from './context.ts';
import { run } from './encode.ts';

export interface QaItem {
  question: string;
  context: string;
}

/**
 * Answers for each (question, context): long contexts are read in overlapping windows (question kept whole),
 * the windows of all items are batched together, and spans are searched across all windows of an item.
 */
export async function answerQuestions(model: ServingModel, items: QaItem[], ctx: ServiceContext, opts: QaOptions & { stride: number }): Promise<QaResult[]> {
  const cache = ctx.caches?.results;
  const keys = items.map((it) => resultKey(model.cacheKey, 'qa', [it.question, it.context, opts.topK, opts.maxAnswerLength, opts.handleImpossibleAnswer, opts.alignToWords ?? true, opts.stride]));
  const out: (QaResult | undefined)[] = keys.map((k) => cache?.get(k)?.value as QaResult | undefined);
  const todo = out.flatMap((r, i) => (r ? [] : [i]));
  if (todo.length === 0) return out as QaResult[];
  model.batcher.admit(todo.length);
  const perItem = await timedTokenize(ctx, () => Promise.all(todo.map((i) => model.tokenizer.encodePairWindows(items[i].question, items[i].context, { stride: opts.stride }))));
  const res = await run(model, perItem.flat().map((w) => ({ ids: w.ids, typeIds: w.typeIds })), ctx);
  let at = 0;
  perItem.forEach((windows, j) => {
    const i = todo[j];
    const withLogits = windows.map((w) => {
      const row = res.rows[at++];
      return { offsets: w.offsets, sequenceIds: w.sequenceIds, wordIds: w.wordIds, startLogits: row.start_logits, endLogits: row.end_logits };
    });
    const result = { answers: answerSpans(withLogits, items[i].context, { ...opts, noAnswerThreshold: model.manifest.noAnswerThreshold }), windows: windows.length };
    out[i] = result;
    cache?.set(keys[i], { value: result });
  });
  return out as QaResult[];
}

export interface QaResult {
  answers: QaAnswer[];
  windows: number;
}
