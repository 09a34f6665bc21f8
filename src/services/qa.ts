import type { ServingModel } from '../inference/registry.ts';
import { answerSpans, type QaAnswer, type QaOptions } from '../tasks/qa.ts';
import { createHash } from 'node:crypto';
import { cachedAnswers, resultKey } from './caches.ts';
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
export async function answerQuestions(model: ServingModel, items: QaItem[], ctx: ServiceContext, opts: QaOptions & { stride: number; semantic?: boolean }): Promise<QaResult[]> {
  const options = [opts.topK, opts.maxAnswerLength, opts.handleImpossibleAnswer, opts.alignToWords ?? true, opts.stride];
  const semantic = ctx.caches?.semantic?.covers('question-answering') && opts.semantic !== false;
  // The semantic cache may answer a question like an earlier one only about the very same context.
  const scope = (context: string) => `qa\u0000${model.cacheKey}\u0000${JSON.stringify(options)}\u0000${createHash('sha256').update(context).digest('base64')}`;
  return cachedAnswers(
    ctx,
    items.map((it) => ({ key: resultKey(model.cacheKey, 'qa', [it.question, it.context, ...options]), ...(semantic ? { semantic: { scope: scope(it.context), text: it.question } } : {}) })),
    (todo) => readQuestions(model, todo.map((i) => items[i]), ctx, opts),
  );
}

async function readQuestions(model: ServingModel, items: QaItem[], ctx: ServiceContext, opts: QaOptions & { stride: number }): Promise<QaResult[]> {
  const todo = items.map((_, i) => i);
  const out: QaResult[] = new Array(items.length);
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
    out[i] = { answers: answerSpans(withLogits, items[i].context, { ...opts, noAnswerThreshold: model.manifest.noAnswerThreshold }), windows: windows.length };
  });
  return out;
}

export interface QaResult {
  answers: QaAnswer[];
  windows: number;
}
