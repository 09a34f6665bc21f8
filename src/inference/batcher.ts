import { GatewayError } from '../errors.ts';
import type { RunSpec } from '../tasks/catalog.ts';
import { RunError, type PoolLogger, type RunBody, type RunResult } from './pool.ts';

/** One tokenized sequence to run: ids and token types of a single window, at most the model's max length. */
export interface Sequence {
  ids: number[];
  typeIds: number[];
}

export interface BatchLimits {
  maxBatchSize: number;
  maxBatchTokens: number;
  maxWaitMs: number;
  /**
   * Under load, how long a free worker may wait for the requests whose answers just went out to come back,
   * so that it runs them in one batch instead of the first arrival alone (see ModelBatcher.ready). 0: never.
   */
  fillWaitMs: number;
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

/** A task's run spec plus how this model is fed: its pad id, and whether token types are all zero. */
export interface ModelRunSpec extends RunSpec {
  /** The session's key in the workers (one per load, so two versions of a model can be loaded side by side). */
  session: string;
  padId: number;
  zeroTypeIds: boolean;
}

/** What the scheduler runs batches on: the local worker pool, or a remote inference server (src/inference/remote/). */
export interface Executor {
  /** Slots that can take a run now. */
  idleSlots(): number[];
  /** Every slot that exists. */
  slots(): number[];
  hasSlot(slot: number): boolean;
  runOn(slot: number, req: RunBody): Promise<RunResult>;
  /** Called whenever a slot becomes free. */
  onIdle(listener: () => void): void;
  /** Why no work should be queued now (a remote whose circuit is open): requests are refused with it at once. */
  refusal?(): GatewayError | undefined;
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
  /** Runs alone: its batch failed in the session, and each row is retried by itself to find the one at fault. */
  solo?: boolean;
}

interface Batch {
  batcher: ModelBatcher;
  items: Item[];
}

/**
 * The queue of one model. Requests put their sequences in; the scheduler takes batches out whenever a
 * worker is free, grouping sequences of similar length under a token budget so little is spent on padding.
 */
export class ModelBatcher {
  private queue: Item[] = [];
  /** Rows answered lately whose clients have not sent another request since, oldest first (see ready). */
  private answered: { at: number; rows: number }[] = [];

  constructor(
    readonly model: string,
    readonly spec: ModelRunSpec,
    readonly limits: BatchLimits,
    readonly scheduler: Scheduler,
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
    const refused = this.scheduler.refusal();
    if (refused) throw refused;
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
      this.arrived(seqs.length);
      this.scheduler.kick();
    });
  }

  /** Puts the rows of a failed batch back at the front, each to run alone. */
  requeueSolo(items: Item[]): void {
    this.queue.unshift(...items.filter((it) => !it.job.done).map((it) => ({ ...it, solo: true })));
    this.scheduler.kick();
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

  /** Fails everything queued (the model is going away). */
  failAll(err: GatewayError): void {
    for (const it of this.queue) fail(it.job, err);
    this.queue = [];
  }

  /** Rows of this model whose answers just went out (the scheduler tells). */
  noteAnswered(rows: number, now: number): void {
    if (this.limits.fillWaitMs > 0) this.answered.push({ at: now, rows });
  }

  /**
   * New sequences count against the rows answered lately, newest first: a client sending one request after
   * another makes up for its own last answer, and answers whose clients went away keep their old time and
   * expire instead of being carried forward by newer ones.
   */
  private arrived(rows: number): void {
    while (rows > 0 && this.answered.length) {
      const a = this.answered[this.answered.length - 1];
      const n = Math.min(a.rows, rows);
      a.rows -= n;
      rows -= n;
      if (a.rows === 0) this.answered.pop();
    }
  }

  /**
   * Rows answered lately whose clients have not come back yet. "Lately" is 25 × fillWaitMs, longer than the
   * wait itself: when a wait ends with part of the clients back, the stragglers still group with each other
   * instead of each going alone. Clients that never come back stop counting then.
   */
  private returning(now: number): number {
    const since = now - 25 * this.limits.fillWaitMs;
    while (this.answered.length && this.answered[0].at < since) this.answered.shift();
    let rows = 0;
    for (const a of this.answered) rows += a.rows;
    return rows;
  }

  /** Whether what is queued already fills a batch (its size, or its token budget at the longest row seen). */
  private full(): boolean {
    const { maxBatchSize, maxBatchTokens } = this.limits;
    if (this.queue.length >= maxBatchSize) return true;
    let longest = 0;
    for (const it of this.queue) longest = Math.max(longest, it.seq.ids.length);
    return this.queue.length * longest >= maxBatchTokens;
  }

  /**
   * Whether a batch should go now. It goes at once when it is full, when a row is retried alone, or when
   * the gateway is not under load. Two waits keep a free worker from taking a lone sequence when more are
   * about to arrive: `maxWaitMs` (a plain wait, off by default) and `fillWaitMs`, which applies only while
   * some rows this model answered lately have not been followed by as many new ones (at most fillWaitMs for
   * the oldest queued sequence): under
   * load, clients whose answers just went out send their next request within a fraction of a millisecond,
   * and running those one by one costs a realistic encoder two to three times the CPU per item of a batch of
   * 16-32 (bench/). A client sending one request after another never waits: its request makes up for its
   * own last answer.
   */
  ready(now: number): boolean {
    if (this.queue.length === 0) return false;
    if (this.queue[0].solo || this.full()) return true;
    const waited = now - this.queue[0].enqueuedAt;
    if (this.limits.maxWaitMs > 0 && waited < this.limits.maxWaitMs) return false;
    if (this.limits.fillWaitMs > 0 && waited < this.limits.fillWaitMs && this.returning(now) > 0) return false;
    return true;
  }

  /** When the oldest queued sequence stops waiting (ready() may say yes earlier), or undefined if none. */
  dueAt(): number | undefined {
    const oldest = this.queue[0]?.enqueuedAt;
    return oldest === undefined ? undefined : oldest + Math.max(this.limits.maxWaitMs, this.limits.fillWaitMs);
  }

  /**
   * The oldest sequence always goes (no starvation); it is joined by the queued sequences closest to it in
   * length, as many as fit the batch size, the token budget (rows × longest row) and `maxRows`. A row retried
   * alone goes alone.
   */
  take(now: number, maxRows = Infinity): Batch | undefined {
    this.prune(now);
    if (this.queue.length === 0) return undefined;
    if (this.queue[0].solo) return { batcher: this, items: [this.queue.shift()!] };
    const { maxBatchTokens } = this.limits;
    const maxBatchSize = Math.max(1, Math.min(this.limits.maxBatchSize, maxRows));
    const lookahead = this.queue.slice(0, maxBatchSize * 4).filter((it) => !it.solo);
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

/** Pads a batch into flat row-major arrays (with the model's pad id). */
export function packBatch(seqs: Sequence[], padId = 0): { inputIds: Int32Array; typeIds: Int32Array; lengths: Int32Array; seq: number } {
  const seq = Math.max(...seqs.map((s) => s.ids.length));
  const inputIds = new Int32Array(seqs.length * seq);
  if (padId !== 0) inputIds.fill(padId);
  const typeIds = new Int32Array(seqs.length * seq);
  const lengths = new Int32Array(seqs.length);
  seqs.forEach((s, b) => {
    inputIds.set(s.ids, b * seq);
    typeIds.set(s.typeIds, b * seq);
    lengths[b] = s.ids.length;
  });
  return { inputIds, typeIds, lengths, seq };
}

/** The request body of one run of `seqs` on a model. */
export function runBody(spec: ModelRunSpec, seqs: Sequence[]): RunBody {
  const p = packBatch(seqs, spec.padId);
  return {
    model: spec.session,
    batch: seqs.length,
    seq: p.seq,
    inputIds: p.inputIds,
    typeIds: p.typeIds,
    lengths: p.lengths,
    fetches: spec.fetches,
    post: spec.post,
    zeroTypeIds: spec.zeroTypeIds,
  };
}

/** Cuts row b out of a batch output: sequence outputs to the row's own length. */
export function sliceRow(out: { data: Float32Array; dims: number[] }, b: number, length: number, isSequence: boolean): Float32Array {
  const rowSize = out.dims.slice(1).reduce((x, y) => x * y, 1);
  const start = b * rowSize;
  if (!isSequence) return out.data.subarray(start, start + rowSize);
  const perToken = out.dims.slice(2).reduce((x, y) => x * y, 1);
  return out.data.subarray(start, start + length * perToken);
}

/** Work that is not a model's batch: warm-up and boot checks, on a chosen slot or any. */
interface ControlTask {
  body: RunBody;
  slot?: number;
  resolve: (r: RunResult) => void;
  reject: (e: Error) => void;
}

/**
 * The only caller of the executor's runs. Whenever a slot is idle it first hands out control work (warm-up
 * runs of a model that is booting, each for its slot), then the batch of the model whose oldest sequence has
 * waited longest. So a model warming up while others serve takes its turn on each worker, never a worker that
 * is busy, and never fails for want of one.
 */
export class Scheduler {
  private batchers: ModelBatcher[] = [];
  private control: ControlTask[] = [];
  private timer?: NodeJS.Timeout;
  private kicking = false;

  constructor(
    private readonly executor: Executor,
    private readonly limits: Pick<BatchLimits, 'maxWaitMs' | 'fillWaitMs'>,
    private readonly onBatch?: (e: BatchEvent) => void,
    private readonly logger?: PoolLogger,
  ) {
    executor.onIdle(() => this.kick());
  }

  register(b: ModelBatcher): void {
    this.batchers.push(b);
  }

  unregister(b: ModelBatcher): void {
    this.batchers = this.batchers.filter((x) => x !== b);
  }

  /** Why the executor takes no work now, if it does not (see Executor.refusal). */
  refusal(): GatewayError | undefined {
    return this.executor.refusal?.();
  }

  /** Fails everything queued in every model of this scheduler (its executor cannot run them). */
  failAll(err: GatewayError): void {
    for (const b of this.batchers) b.failAll(err);
  }

  /** Runs one batch outside any model queue, on any slot (boot checks). */
  runControl(body: RunBody): Promise<RunResult> {
    return new Promise((resolve, reject) => {
      this.control.push({ body, resolve, reject });
      this.kick();
    });
  }

  /** Runs the same batch once on every slot (warm-up: each worker's session must see the shapes once). */
  runOnEachSlot(body: RunBody): Promise<RunResult[]> {
    const copy = (): RunBody => ({ ...body, inputIds: body.inputIds.slice(), typeIds: body.typeIds.slice(), lengths: body.lengths.slice() });
    const runs = this.executor.slots().map(
      (slot) =>
        new Promise<RunResult>((resolve, reject) => {
          this.control.push({ body: copy(), slot, resolve, reject });
        }),
    );
    this.kick();
    return Promise.all(runs);
  }

  kick(): void {
    if (this.kicking) return;
    this.kicking = true;
    try {
      this.failOrphanedControl();
      for (;;) {
        const idle = this.executor.idleSlots();
        if (idle.length === 0) break;
        const c = this.control.findIndex((t) => t.slot === undefined || idle.includes(t.slot));
        if (c >= 0) {
          const [task] = this.control.splice(c, 1);
          this.dispatchControl(task, task.slot ?? idle[0]);
          continue;
        }
        const now = Date.now();
        const next = this.batchers
          .filter((b) => b.ready(now))
          .sort((a, b) => (a.oldest() ?? Infinity) - (b.oldest() ?? Infinity))[0];
        if (!next) break;
        // Several free workers share what is queued instead of one taking it all: the two windows of one
        // long QA request run side by side (half the latency at concurrency 1), while under load, when
        // one worker frees up at a time, batches stay full.
        const batch = next.take(now, Math.ceil(next.queued / idle.length));
        if (!batch) continue;
        this.dispatch(batch, idle[0], now);
      }
      this.armTimer();
    } finally {
      this.kicking = false;
    }
  }

  /** Control work aimed at a slot the executor gave up on can never run. */
  private failOrphanedControl(): void {
    const orphaned = this.control.filter((t) => t.slot !== undefined && !this.executor.hasSlot(t.slot));
    if (!orphaned.length) return;
    this.control = this.control.filter((t) => !orphaned.includes(t));
    for (const t of orphaned) t.reject(new Error(`inference worker ${t.slot} is gone`));
  }

  /** With a wait configured, wake up when the oldest waiting sequence is due. */
  private armTimer(): void {
    if ((this.limits.maxWaitMs <= 0 && this.limits.fillWaitMs <= 0) || this.timer) return;
    const due = Math.min(...this.batchers.map((b) => b.dueAt() ?? Infinity));
    if (!Number.isFinite(due)) return;
    const delay = Math.max(0, due - Date.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.kick();
    }, delay);
    this.timer.unref();
  }

  private dispatchControl(task: ControlTask, slot: number): void {
    this.executor.runOn(slot, task.body).then(task.resolve, task.reject);
  }

  private dispatch(batch: Batch, slot: number, now: number): void {
    const { batcher, items } = batch;
    const body = runBody(batcher.spec, items.map((it) => it.seq));
    const realTokens = items.reduce((n, it) => n + it.seq.ids.length, 0);
    for (const it of items) it.job.queueMs = Math.max(it.job.queueMs, now - it.enqueuedAt);
    const lengths = Array.from(body.lengths);
    const paddedTokens = items.length * body.seq;
    this.executor.runOn(slot, body).then(
      (res) => {
        this.onBatch?.({ model: batcher.model, size: items.length, paddedTokens, realTokens, inferenceMs: res.inferenceMs });
        batcher.noteAnswered(items.length, Date.now());
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
        if (err instanceof RunError && items.length > 1) {
          // The session refused this batch: one row may be at fault. Each runs alone, so the others are answered.
          this.logger?.warn({ model: batcher.model, rows: items.length, err: err.message }, 'batch failed in the session; retrying its rows one by one');
          batcher.requeueSolo(items);
          return;
        }
        let e: GatewayError;
        if (err instanceof GatewayError) e = err;
        else if (err instanceof RunError) {
          this.logger?.error({ model: batcher.model, err: err.message }, 'the model failed on an input');
          e = new GatewayError('model_error', `model "${batcher.model}" failed to run this input; the error is logged with the request id`, { cause: err });
        } else e = new GatewayError('inference_failed', `inference failed on model ${batcher.model}; retry`, { retryAfter: 1, cause: err });
        for (const it of items) fail(it.job, e);
      },
    );
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    for (const t of this.control.splice(0)) t.reject(new Error('scheduler closed'));
  }
}
