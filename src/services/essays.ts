import type { ServingModel } from '../inference/registry.ts';
import { resolveEssayHead, scoreEssay, type EssayScore } from '../tasks/essay.ts';
import { timedTokenize, type ServiceContext } from './context.ts';
import { run } from './encode.ts';

/**
 * Rubric scores for essays. A long essay is read whole, in overlapping windows, and the window scores are
 * aggregated (token-weighted); every window of every essay goes to the batcher in one submission.
 */
export async function scoreEssays(model: ServingModel, essays: string[], ctx: ServiceContext, opts: { stride: number }): Promise<EssayScore[]> {
  const head = resolveEssayHead(model.manifest);
  model.batcher.admit(essays.length);
  const perEssay = await timedTokenize(ctx, () => Promise.all(essays.map((e) => model.tokenizer.encodeWindows(e, { stride: opts.stride }))));
  const flat = perEssay.flat();
  const res = await run(model, flat.map((w) => ({ ids: w.ids, typeIds: w.typeIds })), ctx);
  let at = 0;
  return perEssay.map((windows) => {
    const scored = windows.map((w) => ({ output: res.rows[at++].logits, tokens: w.sequenceIds.filter((s) => s === 0).length }));
    return scoreEssay(scored, head);
  });
}
