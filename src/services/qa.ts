import type { ServingModel } from '../inference/registry.ts';
import { answerSpans, type QaAnswer, type QaOptions } from '../tasks/qa.ts';
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
export async function answerQuestions(model: ServingModel, items: QaItem[], ctx: ServiceContext, opts: QaOptions & { stride: number }): Promise<{ answers: QaAnswer[]; windows: number }[]> {
  const perItem = await timedTokenize(ctx, () => Promise.all(items.map((it) => model.tokenizer.encodePairWindows(it.question, it.context, { stride: opts.stride }))));
  const res = await run(model, perItem.flat().map((w) => ({ ids: w.ids, typeIds: w.typeIds })), ctx);
  let at = 0;
  return perItem.map((windows, i) => {
    const withLogits = windows.map((w) => {
      const row = res.rows[at++];
      return { offsets: w.offsets, sequenceIds: w.sequenceIds, wordIds: w.wordIds, startLogits: row.start_logits, endLogits: row.end_logits };
    });
    return { answers: answerSpans(withLogits, items[i].context, opts), windows: windows.length };
  });
}
