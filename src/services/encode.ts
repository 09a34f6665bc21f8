import { GatewayError } from '../errors.ts';
import type { Sequence, SubmitResult } from '../inference/batcher.ts';
import type { ServingModel } from '../inference/registry.ts';
import { timedTokenize, type ServiceContext } from './context.ts';

/**
 * Tokenizes whole texts for a model that reads one window per text. A text longer than the model's window
 * is refused with 413 naming its field (`names[i]`, e.g. `input[3]` or `pairs[2].sentence_1`) and the limit,
 * unless `truncate` is set: never a silent cut.
 */
export async function encodeWhole(model: ServingModel, texts: string[], ctx: ServiceContext, opts: { names: string[]; truncate?: boolean }): Promise<Sequence[]> {
  const max = model.manifest.maxLength;
  model.batcher.admit(texts.length);
  return timedTokenize(ctx, () =>
    Promise.all(
      texts.map(async (text, i) => {
        const enc = await model.tokenizer.encodeIds(text);
        if (enc.ids.length <= max) return enc;
        if (!opts.truncate) {
          const where = opts.names[i];
          throw new GatewayError('too_large', `${where} is ${enc.ids.length} tokens; model "${model.name}" takes at most ${max}. Shorten it or pass "truncate": true to cut it.`, {
            details: { field: where, tokens: enc.ids.length, max_tokens: max },
          });
        }
        const cut = await model.tokenizer.encodeTruncated(text);
        return { ids: cut.ids, typeIds: cut.typeIds };
      }),
    ),
  );
}

export interface TextPair {
  text: string;
  textPair: string;
  /** Field names for messages, e.g. ['query', 'documents[2]']. */
  names: [string, string];
}

/**
 * Tokenizes text pairs in the model's pair template (cross-encoders, pair classifiers). A pair over the window
 * is a 413 naming both fields and lengths, unless `truncate`: then it is cut longest-first, as the model's
 * library cuts it.
 */
export async function encodePairs(model: ServingModel, pairs: TextPair[], ctx: ServiceContext, opts: { truncate?: boolean }): Promise<Sequence[]> {
  model.batcher.admit(pairs.length);
  return timedTokenize(ctx, () => Promise.all(pairs.map((p) => model.tokenizer.encodePairIds(p.text, p.textPair, { truncate: opts.truncate, names: p.names }))));
}

/** Submits sequences to the model's batcher and books queue and inference time on the request. */
export async function run(model: ServingModel, seqs: Sequence[], ctx: ServiceContext): Promise<SubmitResult> {
  ctx.timings.model = model.name;
  ctx.timings.modelVersion = model.version;
  const res = await model.batcher.submit(seqs, { signal: ctx.signal });
  ctx.timings.queueMs += res.queueMs;
  ctx.timings.inferenceMs += res.inferenceMs;
  return res;
}
