import type { ServingModel } from '../inference/registry.ts';
import { classifyLogits, type Prediction } from '../tasks/classify.ts';
import type { ServiceContext } from './context.ts';
import { encodeWhole, run } from './encode.ts';

/** Labels with scores for each text, in input order; softmax or sigmoid as the model declares. */
export async function classify(model: ServingModel, texts: string[], ctx: ServiceContext, opts: { topK?: number; truncate?: boolean } = {}): Promise<Prediction[]> {
  const seqs = await encodeWhole(model, texts, ctx, { field: 'inputs', truncate: opts.truncate });
  const res = await run(model, seqs, ctx);
  const { labels, output } = model.manifest;
  return res.rows.map((row) => classifyLogits(row.logits, { labels, output, topK: opts.topK }));
}
