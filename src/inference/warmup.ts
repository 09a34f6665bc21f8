/**
 * Warm-up of a freshly loaded model, through the scheduler like every other run (so a model booting while
 * others serve waits for free workers instead of failing for want of one): the largest shapes the batcher
 * can produce on every worker, the optional latency-target fit, and the batch-invariance check.
 */
import { BootError } from '../errors.ts';
import type { GatewayConfig } from '../config/schema.ts';
import type { ModelManifest } from '../store/manifest.ts';
import type { TaskSpec } from '../tasks/catalog.ts';
import { runBody, sliceRow, type ModelRunSpec, type Scheduler, type Sequence } from './batcher.ts';
import { latencyBudget, type TimedBatch } from './latency-budget.ts';
import type { Warmup } from './model-status.ts';
import type { PoolLogger } from './pool.ts';
import type { TextTokenizer, TokenIds } from './tokenizer.ts';

const WARMUP_QUERY = 'Why does the gateway warm every model up?';
const WARMUP_TEXT = 'The gateway warms every model up before it reports ready, so that the first request is not slow.';

export interface WarmupDeps {
  scheduler: Scheduler;
  inference: GatewayConfig['inference'];
  logger: PoolLogger;
}

/** A real input of the task, cut to the model's window as a request would be. */
async function sampleInput(reads: TaskSpec['reads'], tokenizer: TextTokenizer): Promise<TokenIds> {
  switch (reads) {
    case 'text':
      return tokenizer.encodeTruncated(WARMUP_TEXT);
    case 'pair':
      return tokenizer.encodePairIds(WARMUP_QUERY, WARMUP_TEXT, { truncate: true, names: ['query', 'text'] });
    case 'question-context':
      return (await tokenizer.encodePairWindows(WARMUP_QUERY, WARMUP_TEXT, { stride: 0 }))[0];
  }
}

export async function warmUp(name: string, manifest: ModelManifest, task: TaskSpec, spec: ModelRunSpec, tokenizer: TextTokenizer, deps: WarmupDeps): Promise<Warmup & { rowWidth: number }> {
  const { maxBatchSize, maxBatchTokens, checkBatchInvariance, latencyTargetMs } = deps.inference;
  const sample = await sampleInput(task.reads, tokenizer);
  const maxLen = manifest.maxLength;
  const filler = sample.ids.length > 2 ? sample.ids.slice(1, -1) : sample.ids;
  const make = (len: number): Sequence => {
    const n = Math.max(2, Math.min(len, maxLen));
    const body = Array.from({ length: n - 2 }, (_, i) => filler[i % filler.length]);
    return { ids: [sample.ids[0], ...body, sample.ids[sample.ids.length - 1]], typeIds: new Array(n).fill(0) };
  };
  const shapes = [
    { batch: maxBatchSize, seq: Math.max(2, Math.min(maxLen, Math.floor(maxBatchTokens / maxBatchSize))) },
    { batch: Math.max(1, Math.min(maxBatchSize, Math.floor(maxBatchTokens / maxLen))), seq: maxLen },
  ];
  const timings: Warmup['shapes'] = [];
  for (const shape of shapes) {
    const body = runBody(spec, Array.from({ length: shape.batch }, () => make(shape.seq)));
    const t0 = performance.now();
    await deps.scheduler.runOnEachSlot(body);
    timings.push({ ...shape, ms: Math.round(performance.now() - t0) });
  }
  const tuned = latencyTargetMs > 0 ? await tuneBudget(name, spec, make, maxLen, deps) : undefined;
  const rows = [sample, make(Math.min(maxLen, sample.ids.length * 3))];
  const { diff, width } = await batchInvariance(name, spec, rows, deps.scheduler);
  if (checkBatchInvariance && diff > 1e-4) {
    throw new BootError(name, 'warming', `batch invariance broken: a row's output moves by ${diff.toExponential(2)} when padded into a batch (limit 1e-4)`);
  }
  return { shapes: timings, tuned, ...(checkBatchInvariance ? { batch_invariance_max_diff: diff } : {}), rowWidth: width };
}

/**
 * Times a few batch sizes of this model, fits ms ≈ fixed + k·tokens, and returns the token budget a batch can
 * fill within inference.latencyTargetMs (at least one full-length row, at most 64k). Models differ: a small
 * classifier can take far larger batches than a QA model for the same latency.
 */
async function tuneBudget(name: string, spec: ModelRunSpec, make: (len: number) => Sequence, maxLen: number, deps: WarmupDeps): Promise<NonNullable<Warmup['tuned']>> {
  const target = deps.inference.latencyTargetMs;
  const seq = Math.min(maxLen, 64);
  const points: TimedBatch[] = [];
  for (const batch of [1, 4, 16, 32]) {
    const runs: number[] = [];
    for (let r = 0; r < 3; r++) {
      const res = await deps.scheduler.runControl(runBody(spec, Array.from({ length: batch }, () => make(seq))));
      runs.push(res.inferenceMs);
    }
    points.push({ tokens: batch * seq, ms: runs.sort((a, b) => a - b)[1] });
  }
  const { fixedMs: fixed, msPerToken: k, batchTokens: budget } = latencyBudget(points, target, maxLen);
  deps.logger.info({ model: name, target_ms: target, fixed_ms: fixed, ms_per_1k_tokens: k * 1000, batch_tokens: budget }, `${name}: batch token budget from the latency target`);
  return { target_ms: target, fixed_ms: Number(fixed.toFixed(3)), ms_per_1k_tokens: Number((k * 1000).toFixed(3)), batch_tokens: budget };
}

/** Largest absolute difference of the first row's outputs, run alone and inside a padded batch; and that row's width. */
export async function batchInvariance(name: string, spec: ModelRunSpec, rows: Sequence[], scheduler: Scheduler): Promise<{ diff: number; width: number }> {
  const runRows = async (seqs: Sequence[]) => {
    const res = await scheduler.runControl(runBody(spec, seqs));
    return spec.fetches.map((f) => sliceRow(res.outputs[f], 0, seqs[0].ids.length, spec.sequenceOutputs.includes(f)));
  };
  const alone = await runRows([rows[0]]);
  const batched = await runRows(rows);
  let max = 0;
  alone.forEach((a, k) => a.forEach((v, i) => (max = Math.max(max, Math.abs(v - batched[k][i])))));
  return { diff: max, width: alone[0].length };
}
