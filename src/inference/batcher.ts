import { GatewayError } from '../errors.ts';
import type { PostProcess } from './protocol.ts';
import type { RunResult, WorkerPool } from './pool.ts';

/** One tokenized sequence to run: ids and token types of a single window, at most the model's max length. */
export interface Sequence {
  ids: number[];
  typeIds: number[];
}

export interface BatchLimits {
  maxBatchSize: number;
  maxBatchTokens: number;
  maxWaitMs: number;
  queueCapacity: number;
  requestDeadlineMs: number;
}

export interface SubmitOptions {
  /** Aborted when the client went away: queued sequences of this request are skipped. */
  signal?: AbortSignal;
  /** Epoch ms after which a still-queued request fails with 503. */
  deadline?: number;
}

/** Per-row outputs in input order, plus where the time went. */
export interface SubmitResult {
  rows: Record<string, Float32Array>[];
  queueMs: number;
  inferenceMs: number;
}

export interface BatchEvent {
  model: string;
  size: number;
  paddedTokens: number;
  realTokens: number;
  inferenceMs: number;
}

interface Job {
  rows: Record<string, Float32Array>[];
  remaining: number;
  done: boolean;
  enqueuedAt: number;
  queueMs: number;
  inferenceMs: number;
  signal?: AbortSignal;
  deadline: number;
  resolve: (r: SubmitResult) => void;
  reject: (e: Error) => void;
}

interface Item {
  job: Job;
  index: number;
  seq: Sequence;
  enqueuedAt: number;
}

interface Batch {
  batcher: ModelBatcher;
  items: Item[];
}

export interface ModelRunSpec {
  /** Outputs to fetch from the session. */
  fetches: string[];
  /** Outputs with a sequence axis ([batch, seq, …]): each row is cut to its own length. */
  sequenceOutputs: string[];
  post: PostProcess;
}

/**
 * The queue of one model. Requests put their sequences in; the scheduler takes batches out whenever a
 * worker is free, grouping sequences of similar length under a token budget so little is spent on padding.
 */
export class ModelBatcher {
  private queue: Item[] = [];

  constructor(
    readonly model: string,
    readonly spec: ModelRunSpec,
    private readonly limits: BatchLimits,
    private readonly scheduler: Scheduler,
  ) {
    scheduler.register(this);
  }

  get queued(): number {
    return this.queue.length;
  }

  oldest(): number | undefined {
    return this.queue[0]?.enqueuedAt;
  }

  /**
   * Early admission: throws 503 when at least `n` more sequences would not fit, so an overloaded gateway
   * refuses before spending the event loop on tokenizing a request it cannot queue.
   */
  admit(n: number): void {
    if (this.queue.length + n > this.limits.queueCapacity) {
      throw new GatewayError('overloaded', `model ${this.model} is at capacity (${this.limits.queueCapacity} queued sequences); retry shortly`, { retryAfter: 1 });
    }
  }

  submit(seqs: Sequence[], opts: SubmitOptions = {}): Promise<SubmitResult> {
    if (seqs.length === 0) return Promise.resolve({ rows: [], queueMs: 0, inferenceMs: 0 });
    try {
      this.admit(seqs.length);
    } catch (err) {
      return Promise.reject(err);
    }
    const now = Date.now();
    return new Promise<SubmitResult>((resolve, reject) => {
      const job: Job = {
        rows: new Array(seqs.length),
        remaining: seqs.length,
        done: false,
        enqueuedAt: now,
        queueMs: 0,
        inferenceMs: 0,
        signal: opts.signal,
        deadline: opts.deadline ?? now + this.limits.requestDeadlineMs,
        resolve,
        reject,
      };
      seqs.forEach((seq, index) => this.queue.push({ job, index, seq, enqueuedAt: now }));
      this.scheduler.kick();
    });
  }

  /** Drops sequences whose request was aborted, failed or is past its deadline. */
  private prune(now: number): void {
    if (this.queue.every((it) => !it.job.done && !it.job.signal?.aborted && it.job.deadline >= now)) return;
    this.queue = this.queue.filter((it) => {
      const job = it.job;
      if (job.done) return false;
      if (job.signal?.aborted) {
        fail(job, new GatewayError('invalid_request', 'client went away'));
        return false;
      }
      if (job.deadline < now) {
        fail(job, new GatewayError('deadline_exceeded', `request waited past its deadline in the queue of ${this.model}`, { retryAfter: 1 }));
        return false;
      }
      return true;
    });
  }

  /** Whether a batch should go now: it is full, or the oldest sequence has waited maxWaitMs. */
  ready(now: number): boolean {
    if (this.queue.length === 0) return false;
    if (this.limits.maxWaitMs <= 0 || this.queue.length >= this.limits.maxBatchSize) return true;
    return now - this.queue[0].enqueuedAt >= this.limits.maxWaitMs;
  }

  /**
   * The oldest sequence always goes (no starvation); it is joined by the queued sequences closest to it in
   * length, as many as fit the batch size, the token budget (rows × longest row) and `maxRows`.
   */
  take(now: number, maxRows = Infinity): Batch | undefined {
    this.prune(now);
    if (this.queue.length === 0) return undefined;
    const { maxBatchTokens } = this.limits;
    const maxBatchSize = Math.max(1, Math.min(this.limits.maxBatchSize, maxRows));
    const lookahead = this.queue.slice(0, maxBatchSize * 4);
    const sorted = lookahead.map((it, pos) => ({ it, pos, len: it.seq.ids.length })).sort((a, b) => a.len - b.len || a.pos - b.pos);
    const start = sorted.findIndex((s) => s.pos === 0);
    const pivot = sorted[start].len;
    let lo = start;
    let hi = start;
    const fits = (a: number, b: number) => b - a + 1 <= maxBatchSize && (b - a + 1) * sorted[b].len <= maxBatchTokens;
    for (;;) {
      const canDown = lo > 0 && fits(lo - 1, hi);
      const canUp = hi < sorted.length - 1 && fits(lo, hi + 1);
      if (!canDown && !canUp) break;
      if (canDown && (!canUp || pivot - sorted[lo - 1].len <= sorted[hi + 1].len - pivot)) lo--;
      else hi++;
    }
    const chosen = new Set(sorted.slice(lo, hi + 1).map((s) => s.it));
    const items = this.queue.filter((it) => chosen.has(it));
    this.queue = this.queue.filter((it) => !chosen.has(it));
    return { batcher: this, items };
  }
}

function fail(job: Job, err: Error): void {
  if (job.done) return;
  job.done = true;
  job.reject(err);
}

/** Pads a batch into flat row-major arrays. */
export function packBatch(seqs: Sequence[]): { inputIds: Int32Array; typeIds: Int32Array; lengths: Int32Array; seq: number } {
  const seq = Math.max(...seqs.map((s) => s.ids.length));
  const inputIds = new Int32Array(seqs.length * seq);
  const typeIds = new Int32Array(seqs.length * seq);
  const lengths = new Int32Array(seqs.length);
  seqs.forEach((s, b) => {
    inputIds.set(s.ids, b * seq);
    typeIds.set(s.typeIds, b * seq);
    lengths[b] = s.ids.length;
  });
  return { inputIds, typeIds, lengths, seq };
}

/** Cuts row b out of a batch output: sequence outputs to the row's own length. */
export function sliceRow(out: { data: Float32Array; dims: number[] }, b: number, length: number, isSequence: boolean): Float32Array {
  const rowSize = out.dims.slice(1).reduce((x, y) => x * y, 1);
  const start = b * rowSize;
  if (!isSequence) return out.data.subarray(start, start + rowSize);
  const perToken = out.dims.slice(2).reduce((x, y) => x * y, 1);
  return out.data.subarray(start, start + length * perToken);
}

/**
 * Hands batches to free workers across all models: whenever a worker is idle, the model whose oldest
 * sequence has waited longest goes next.
 */
export class Scheduler {
  private batchers: ModelBatcher[] = [];
  private timer?: NodeJS.Timeout;
  private kicking = false;

  constructor(
    private readonly pool: WorkerPool,
    private readonly limits: Pick<BatchLimits, 'maxWaitMs'>,
    private readonly onBatch?: (e: BatchEvent) => void,
  ) {
    pool.onIdle(() => this.kick());
  }

  register(b: ModelBatcher): void {
    this.batchers.push(b);
  }

  unregister(b: ModelBatcher): void {
    this.batchers = this.batchers.filter((x) => x !== b);
  }

  kick(): void {
    if (this.kicking) return;
    this.kicking = true;
    try {
      while (this.pool.idleCount() > 0) {
        const now = Date.now();
        const next = this.batchers
          .filter((b) => b.ready(now))
          .sort((a, b) => (a.oldest() ?? Infinity) - (b.oldest() ?? Infinity))[0];
        if (!next) break;
        // Several free workers share what is queued instead of one taking it all: the two windows of one
        // long QA request run side by side (half the latency at concurrency 1), while under load, when
        // one worker frees up at a time, batches stay full.
        const batch = next.take(now, Math.ceil(next.queued / this.pool.idleCount()));
        if (!batch) continue;
        this.dispatch(batch, now);
      }
      this.armTimer();
    } finally {
      this.kicking = false;
    }
  }

  /** With maxWaitMs > 0, wake up when the oldest waiting sequence is due. */
  private armTimer(): void {
    if (this.limits.maxWaitMs <= 0 || this.timer) return;
    const oldest = Math.min(...this.batchers.map((b) => b.oldest() ?? Infinity));
    if (!Number.isFinite(oldest)) return;
    const delay = Math.max(0, oldest + this.limits.maxWaitMs - Date.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.kick();
    }, delay);
    this.timer.unref();
  }

  private dispatch(batch: Batch, now: number): void {
    const { batcher, items } = batch;
    const packed = packBatch(items.map((it) => it.seq));
    const realTokens = items.reduce((n, it) => n + it.seq.ids.length, 0);
    for (const it of items) it.job.queueMs = Math.max(it.job.queueMs, now - it.enqueuedAt);
    const lengths = Array.from(packed.lengths);
    const run: Promise<RunResult> = this.pool.run({
      model: batcher.model,
      batch: items.length,
      seq: packed.seq,
      inputIds: packed.inputIds,
      typeIds: packed.typeIds,
      lengths: packed.lengths,
      fetches: batcher.spec.fetches,
      post: batcher.spec.post,
    });
    run.then(
      (res) => {
        this.onBatch?.({ model: batcher.model, size: items.length, paddedTokens: items.length * packed.seq, realTokens, inferenceMs: res.inferenceMs });
        items.forEach((it, b) => {
          const job = it.job;
          if (job.done) return;
          const row: Record<string, Float32Array> = {};
          for (const name of batcher.spec.fetches) {
            row[name] = sliceRow(res.outputs[name], b, lengths[b], batcher.spec.sequenceOutputs.includes(name));
          }
          job.rows[it.index] = row;
          job.inferenceMs = Math.max(job.inferenceMs, res.inferenceMs);
          if (--job.remaining === 0) {
            job.done = true;
            job.resolve({ rows: job.rows, queueMs: job.queueMs, inferenceMs: job.inferenceMs });
          }
        });
      },
      (err: Error) => {
        const e = err instanceof GatewayError ? err : new GatewayError('inference_failed', `inference failed on model ${batcher.model}; retry`, { retryAfter: 1, cause: err });
        for (const it of items) fail(it.job, e);
      },
    );
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
  }
}
