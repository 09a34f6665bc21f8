import { GatewayError } from '../errors.ts';
import type { Sequence, SubmitResult } from '../inference/batcher.ts';
import type { ServingModel } from '../inference/registry.ts';
import { timedTokenize, type ServiceContext } from './context.ts';

/**
 * Tokenizes whole texts for a model that reads one window per text. A text longer than the model's window
 * is refused with 413 naming it and the limit, unless `truncate` is set: never a silent cut.
 */
export async function encodeWhole(
  model: ServingModel,
  texts: string[],
  ctx: ServiceContext,
  opts: { field: string; truncate?: boolean; /** Each text's index in the caller's list, and its length, for messages. */ positions?: number[]; total?: number },
): Promise<Sequence[]> {
  const max = model.manifest.maxLength;
  model.batcher.admit(texts.length);
  return timedTokenize(ctx, () =>
    Promise.all(
      texts.map(async (text, i) => {
        const enc = await model.tokenizer.encodeIds(text);
        if (enc.ids.length <= max) return enc;
        if (!opts.truncate) {
          const where = (opts.total ?? texts.length) > 1 ? `${opts.field}[${opts.positions?.[i] ?? i}]` : opts.field;
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

/** Submits sequences to the model's batcher and books queue and inference time on the request. */
export async function run(model: ServingModel, seqs: Sequence[], ctx: ServiceContext): Promise<SubmitResult> {
  ctx.timings.model = model.name;
  const res = await model.batcher.submit(seqs, { signal: ctx.signal });
  ctx.timings.queueMs += res.queueMs;
  ctx.timings.inferenceMs += res.inferenceMs;
  return res;
}
