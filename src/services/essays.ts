import type { ServingModel } from '../inference/registry.ts';
import { resolveEssayHead, scoreEssay, type EssayScore } from '../tasks/essay.ts';
import { cachedAnswers, resultKey } from './caches.ts';
import { timedTokenize, type ServiceContext } from './context.ts';
import { run } from './encode.ts';

/**
 * Rubric scores for essays. A long essay is read whole, in overlapping windows, and the window scores are
 * aggregated (token-weighted); every window of every essay goes to the batcher in one submission. Repeats come
 * from the exact cache; with the semantic cache on, a near-identical essay (one the cache's embedding model reads
 * whole) from it.
 */
export async function scoreEssays(model: ServingModel, essays: string[], ctx: ServiceContext, opts: { stride: number }): Promise<EssayScore[]> {
  const head = resolveEssayHead(model.manifest);
  const scope = `essay\u0000${model.cacheKey}\u0000${opts.stride}`;
  const items = essays.map((e) => ({ key: resultKey(model.cacheKey, 'essay', [e, opts.stride]), ...(ctx.caches?.semantic?.covers('essay-scoring') ? { semantic: { scope, text: e } } : {}) }));
  return cachedAnswers(ctx, items, async (todo) => {
    model.batcher.admit(todo.length);
    const perEssay = await timedTokenize(ctx, () => Promise.all(todo.map((i) => model.tokenizer.encodeWindows(essays[i], { stride: opts.stride }))));
    const res = await run(model, perEssay.flat().map((w) => ({ ids: w.ids, typeIds: w.typeIds })), ctx);
    let at = 0;
    return perEssay.map((windows) => {
      const scored = windows.map((w) => ({ output: res.rows[at++].logits, tokens: w.sequenceIds.filter((s) => s === 0).length }));
      return scoreEssay(scored, head);
    });
  });
}
