import { join } from 'node:path';
import { BootError, GatewayError } from '../errors.ts';
import type { GatewayConfig, ModelEntry } from '../config/schema.ts';
import type { ModelManifest, Task } from '../store/manifest.ts';
import { ModelStore } from '../store/model-store.ts';
import { readManifest } from '../store/read-manifest.ts';
import { TextTokenizer } from './tokenizer.ts';
import { ModelTokenizer, TokenizePool } from './tokenize-pool.ts';
import { WorkerPool, type PoolLogger } from './pool.ts';
import { latencyBudget, type TimedBatch } from './latency-budget.ts';
import { ModelBatcher, Scheduler, packBatch, sliceRow, type BatchEvent, type ModelRunSpec, type Sequence } from './batcher.ts';

export type ModelState = 'pending' | 'downloading' | 'verifying' | 'unpacking' | 'loading' | 'warming' | 'ready' | 'failed';

export interface ModelStatus {
  name: string;
  source: string;
  required: boolean;
  default: boolean;
  state: ModelState;
  error?: string;
  sha256?: string;
  version?: string;
  task?: Task;
  description?: string;
  labels?: string[];
  max_length?: number;
  score?: { min: number; max: number; round?: number };
  threshold?: number;
  /** Milliseconds each boot step took. */
  timings: Record<string, number>;
  warmup?: {
    shapes: { batch: number; seq: number; ms: number }[];
    batch_invariance_max_diff?: number;
    /** With inference.latencyTargetMs: the fitted cost of a batch and the token budget derived from it. */
    tuned?: { target_ms: number; fixed_ms: number; ms_per_1k_tokens: number; batch_tokens: number };
  };
}

/** A model that is ready to serve. */
export interface ServingModel {
  name: string;
  manifest: ModelManifest;
  tokenizer: ModelTokenizer;
  batcher: ModelBatcher;
  spec: ModelRunSpec;
  /** Bumped on each (re)load: part of every cache key. */
  version: string;
}

/** What each task needs from the ONNX graph. */
export function runSpecFor(task: Task, manifest: ModelManifest, outputNames: string[]): ModelRunSpec {
  const need = (names: string[]) => {
    const missing = names.filter((n) => !outputNames.includes(n));
    if (missing.length) throw new Error(`ONNX outputs ${JSON.stringify(outputNames)} lack ${missing.join(', ')} needed for ${task}`);
  };
  switch (task) {
    case 'question-answering':
      need(['start_logits', 'end_logits']);
      return { fetches: ['start_logits', 'end_logits'], sequenceOutputs: ['start_logits', 'end_logits'], post: 'none' };
    case 'sentence-similarity':
      if (outputNames.includes('sentence_embedding')) return { fetches: ['sentence_embedding'], sequenceOutputs: [], post: 'none' };
      need(['last_hidden_state']);
      return { fetches: ['last_hidden_state'], sequenceOutputs: [], post: manifest.pooling === 'cls' ? 'cls-pool' : 'mean-pool' };
    case 'essay-scoring':
    case 'text-classification':
      need(['logits']);
      return { fetches: ['logits'], sequenceOutputs: [], post: 'none' };
  }
}

const REQUIRED_INPUTS = ['input_ids', 'attention_mask'];
const WARMUP_TEXT = 'The gateway warms every model up before it reports ready, so that the first request is not slow.';

/**
 * Brings every configured model from its source to ready (fetch, verify, unpack, load, warm up) and hands
 * out ready models by task and name. Knows nothing of HTTP.
 */
export class ModelRegistry {
  readonly pool: WorkerPool;
  readonly scheduler: Scheduler;
  readonly tokenizePool: TokenizePool;
  private readonly store: ModelStore;
  private readonly statuses = new Map<string, ModelStatus>();
  private readonly serving = new Map<string, ServingModel>();
  private readonly defaults = new Map<Task, string>();
  private readonly stepListeners: ((name: string, state: ModelState) => void)[] = [];

  constructor(
    private readonly config: GatewayConfig,
    private readonly logger: PoolLogger,
    onBatch?: (e: BatchEvent) => void,
  ) {
    this.pool = new WorkerPool({ size: config.inference.workers, intraOpThreads: config.inference.intraOpThreads, nice: config.inference.workerNice, logger });
    this.scheduler = new Scheduler(this.pool, config.inference, onBatch);
    this.tokenizePool = new TokenizePool({ threads: config.inference.tokenizerThreads, inlineMaxChars: config.inference.tokenizeInlineMaxChars });
    this.store = new ModelStore({ ...config.store, root: config.store.dir, logger });
    for (const m of config.models) {
      this.statuses.set(m.name, { name: m.name, source: m.source, required: m.required, default: m.default, state: 'pending', timings: {} });
    }
  }

  onState(listener: (name: string, state: ModelState) => void): void {
    this.stepListeners.push(listener);
  }

  private setState(name: string, state: ModelState): void {
    this.statuses.get(name)!.state = state;
    for (const l of this.stepListeners) l(name, state);
  }

  /**
   * Fetches all models concurrently, then loads and warms them one at a time (each load uses every worker).
   * Resolves when every model is ready or failed; rejects with the first required model's BootError.
   */
  async boot(): Promise<void> {
    this.pool.start();
    const fetched = await Promise.all(this.config.models.map((m) => this.fetch(m).catch((err: unknown) => this.failed(m, err))));
    for (const [i, m] of this.config.models.entries()) {
      const dir = fetched[i];
      if (dir === undefined) continue;
      await this.load(m, dir).catch((err: unknown) => this.failed(m, err));
    }
    this.assignDefaults();
    const bad = this.config.models.find((m) => m.required && this.statuses.get(m.name)!.state !== 'ready');
    if (bad) throw this.bootErrors.get(bad.name) ?? new BootError(bad.name, 'boot', 'not ready');
  }

  private readonly bootErrors = new Map<string, BootError>();

  private failed(m: ModelEntry, err: unknown): undefined {
    const status = this.statuses.get(m.name)!;
    const bootErr = err instanceof BootError ? err : new BootError(m.name, status.state === 'pending' ? 'boot' : status.state, (err as Error).message, { cause: err });
    const step = bootErr.step;
    this.bootErrors.set(m.name, bootErr);
    status.error = bootErr.message;
    this.setState(m.name, 'failed');
    this.logger[m.required ? 'error' : 'warn']({ model: m.name, step, err: bootErr.message }, m.required ? 'required model failed' : 'optional model failed; serving without it');
    return undefined;
  }

  private async timed<T>(name: string, step: string, fn: () => Promise<T>): Promise<T> {
    const t0 = performance.now();
    const out = await fn();
    const ms = Math.round((performance.now() - t0) * 10) / 10;
    this.statuses.get(name)!.timings[step] = ms;
    this.logger.info({ model: name, step, ms }, `${name}: ${step} done`);
    return out;
  }

  private async fetch(m: ModelEntry): Promise<string> {
    const status = this.statuses.get(m.name)!;
    const res = await this.timed(m.name, 'fetch', () =>
      this.store.ensure({ name: m.name, source: m.source, sha256: m.sha256 }, (step) => this.setState(m.name, step)),
    );
    status.sha256 = res.sha256 ?? undefined;
    return res.dir;
  }

  private async load(m: ModelEntry, dir: string): Promise<void> {
    const status = this.statuses.get(m.name)!;
    this.setState(m.name, 'loading');
    const manifest = await this.timed(m.name, 'manifest', () => readManifest(dir, m.name));
    Object.assign(status, {
      version: manifest.version,
      task: manifest.task,
      description: manifest.description,
      labels: manifest.labels,
      max_length: manifest.maxLength,
      score: manifest.score && { min: manifest.score.min, max: manifest.score.max, round: manifest.score.round },
      threshold: manifest.threshold,
    });
    const tokenizer = await this.timed(m.name, 'tokenizer', () => TextTokenizer.fromFile(manifest.tokenizerPath, { maxLength: manifest.maxLength }));
    const names = await this.timed(m.name, 'session', () => this.pool.load(m.name, join(manifest.dir, manifest.onnxPath)));
    const missing = REQUIRED_INPUTS.filter((n) => !names.inputNames.includes(n));
    if (missing.length) throw new BootError(m.name, 'loading', `ONNX inputs ${JSON.stringify(names.inputNames)} lack ${missing.join(', ')}`);
    let spec: ModelRunSpec;
    try {
      spec = runSpecFor(manifest.task, manifest, names.outputNames);
    } catch (err) {
      throw new BootError(m.name, 'loading', (err as Error).message);
    }
    this.setState(m.name, 'warming');
    status.warmup = await this.timed(m.name, 'warmup', () => this.warmUp(m.name, manifest, tokenizer, spec));
    // A latency target gives each model its own token budget, measured at warm-up; otherwise the config's.
    const budget = status.warmup.tuned?.batch_tokens ?? this.config.inference.maxBatchTokens;
    const batcher = new ModelBatcher(m.name, spec, { ...this.config.inference, maxBatchTokens: budget }, this.scheduler);
    const version = `${manifest.version}+${(status.sha256 ?? '').slice(0, 12)}`;
    const modelTokenizer = new ModelTokenizer(tokenizer, manifest.tokenizerPath, this.tokenizePool);
    this.serving.set(m.name, { name: m.name, manifest, tokenizer: modelTokenizer, batcher, spec, version });
    this.setState(m.name, 'ready');
  }

  /**
   * Runs the largest shapes the batcher can produce on every worker (so the first request pays no
   * allocation), then checks batch invariance: a row must give the same output alone and padded in a batch.
   */
  private async warmUp(name: string, manifest: ModelManifest, tokenizer: TextTokenizer, spec: ModelRunSpec): Promise<NonNullable<ModelStatus['warmup']>> {
    const { maxBatchSize, maxBatchTokens, checkBatchInvariance } = this.config.inference;
    const sample = await tokenizer.encode(WARMUP_TEXT);
    const filler = sample.ids.slice(1, -1);
    const make = (len: number): Sequence => {
      const body = Array.from({ length: Math.max(0, len - 2) }, (_, i) => filler[i % filler.length]);
      return { ids: [sample.ids[0], ...body, sample.ids[sample.ids.length - 1]], typeIds: new Array(len).fill(0) };
    };
    const maxLen = manifest.maxLength;
    const shapes = [
      { batch: maxBatchSize, seq: Math.max(2, Math.min(maxLen, Math.floor(maxBatchTokens / maxBatchSize))) },
      { batch: Math.max(1, Math.min(maxBatchSize, Math.floor(maxBatchTokens / maxLen))), seq: maxLen },
    ];
    const timings: { batch: number; seq: number; ms: number }[] = [];
    for (const shape of shapes) {
      const packed = packBatch(Array.from({ length: shape.batch }, () => make(shape.seq)));
      const t0 = performance.now();
      await this.pool.runOnAll({ model: name, batch: shape.batch, seq: packed.seq, inputIds: packed.inputIds, typeIds: packed.typeIds, lengths: packed.lengths, fetches: spec.fetches, post: spec.post });
      timings.push({ ...shape, ms: Math.round(performance.now() - t0) });
    }
    const tuned = this.config.inference.latencyTargetMs > 0 ? await this.tuneBudget(name, spec, make, maxLen) : undefined;
    if (!checkBatchInvariance) return { shapes: timings, tuned };
    const diff = await this.batchInvarianceDiff(name, spec, [{ ids: sample.ids, typeIds: sample.typeIds }, make(Math.min(maxLen, sample.ids.length * 3))]);
    if (diff > 1e-4) throw new BootError(name, 'warming', `batch invariance broken: a row's output moves by ${diff.toExponential(2)} when padded into a batch (limit 1e-4)`);
    return { shapes: timings, batch_invariance_max_diff: diff, tuned };
  }

  /**
   * Times a few batch sizes of this model on one worker, fits ms ≈ fixed + k·tokens, and returns the token
   * budget a batch can fill within inference.latencyTargetMs (at least one full-length row, at most 64k).
   * Models differ: a small classifier can take far larger batches than a QA model for the same latency.
   */
  private async tuneBudget(name: string, spec: ModelRunSpec, make: (len: number) => Sequence, maxLen: number): Promise<NonNullable<NonNullable<ModelStatus['warmup']>['tuned']>> {
    const target = this.config.inference.latencyTargetMs;
    const seq = Math.min(maxLen, 64);
    const points: TimedBatch[] = [];
    for (const batch of [1, 4, 16, 32]) {
      const runs: number[] = [];
      for (let r = 0; r < 3; r++) {
        const p = packBatch(Array.from({ length: batch }, () => make(seq)));
        const res = await this.pool.run({ model: name, batch, seq: p.seq, inputIds: p.inputIds, typeIds: p.typeIds, lengths: p.lengths, fetches: spec.fetches, post: spec.post });
        runs.push(res.inferenceMs);
      }
      points.push({ tokens: batch * seq, ms: runs.sort((a, b) => a - b)[1] });
    }
    const { fixedMs: fixed, msPerToken: k, batchTokens: budget } = latencyBudget(points, target, maxLen);
    this.logger.info({ model: name, target_ms: target, fixed_ms: fixed, ms_per_1k_tokens: k * 1000, batch_tokens: budget }, `${name}: batch token budget from the latency target`);
    return { target_ms: target, fixed_ms: Number(fixed.toFixed(3)), ms_per_1k_tokens: Number((k * 1000).toFixed(3)), batch_tokens: budget };
  }

  /** Largest absolute difference of the first row's outputs, run alone and inside a padded batch. */
  async batchInvarianceDiff(name: string, spec: ModelRunSpec, rows: Sequence[]): Promise<number> {
    const runRows = async (seqs: Sequence[]) => {
      const p = packBatch(seqs);
      const res = await this.pool.run({ model: name, batch: seqs.length, seq: p.seq, inputIds: p.inputIds, typeIds: p.typeIds, lengths: p.lengths, fetches: spec.fetches, post: spec.post });
      return spec.fetches.map((f) => sliceRow(res.outputs[f], 0, seqs[0].ids.length, spec.sequenceOutputs.includes(f)));
    };
    const alone = await runRows([rows[0]]);
    const batched = await runRows(rows);
    let max = 0;
    alone.forEach((a, k) => a.forEach((v, i) => (max = Math.max(max, Math.abs(v - batched[k][i])))));
    return max;
  }

  private assignDefaults(): void {
    for (const m of this.config.models) {
      const s = this.statuses.get(m.name)!;
      if (!s.task || s.state !== 'ready') continue;
      const current = this.defaults.get(s.task);
      const currentIsExplicit = current !== undefined && this.statuses.get(current)!.default;
      if (current === undefined || (m.default && !currentIsExplicit)) this.defaults.set(s.task, m.name);
      else if (m.default && currentIsExplicit) this.logger.warn({ task: s.task, kept: current, ignored: m.name }, 'two default models for one task; keeping the first');
    }
  }

  /** True when every required model is ready. */
  isReady(): boolean {
    return [...this.statuses.values()].every((s) => !s.required || s.state === 'ready');
  }

  list(): ModelStatus[] {
    return [...this.statuses.values()].map((s) => ({ ...s, default: s.task !== undefined && this.defaults.get(s.task) === s.name }));
  }

  status(name: string): ModelStatus | undefined {
    const s = this.list().find((x) => x.name === name);
    return s;
  }

  /** The ready model for a task: the named one, or the task's default. 404 unknown, 422 wrong task, 503 not ready. */
  resolve(task: Task, name?: string): ServingModel {
    const forTask = () => [...this.statuses.values()].filter((s) => s.task === task).map((s) => s.name);
    if (name === undefined) {
      const def = this.defaults.get(task);
      if (def === undefined) {
        const booting = [...this.statuses.values()].some((s) => s.state !== 'ready' && s.state !== 'failed');
        if (booting) throw new GatewayError('not_ready', `models are still loading; no ${task} model is ready yet`, { retryAfter: 5 });
        throw new GatewayError('model_not_found', `no ${task} model is configured and ready`, { details: { task, models: forTask() } });
      }
      name = def;
    }
    const status = this.statuses.get(name);
    if (!status) {
      throw new GatewayError('model_not_found', `unknown model "${name}"; ${task} models: ${forTask().join(', ') || '(none)'}`, { details: { task, models: forTask() } });
    }
    if (status.task !== undefined && status.task !== task) {
      throw new GatewayError('wrong_task', `model "${name}" is a ${status.task} model, not ${task}; ${task} models: ${forTask().join(', ') || '(none)'}`, { details: { task, model_task: status.task, models: forTask() } });
    }
    const model = this.serving.get(name);
    if (!model) throw new GatewayError('not_ready', `model "${name}" is ${status.state}${status.error ? `: ${status.error}` : ''}`, { retryAfter: 5 });
    return model;
  }

  /** Any ready model by name, whatever its task (Hugging Face routes pick the task from the model). */
  byName(name: string): ServingModel {
    const status = this.statuses.get(name);
    if (!status) throw new GatewayError('model_not_found', `unknown model "${name}"; models: ${[...this.statuses.keys()].join(', ')}`, { details: { models: [...this.statuses.keys()] } });
    return this.resolve(status.task ?? 'question-answering', name);
  }

  queued(): Record<string, number> {
    return Object.fromEntries([...this.serving.values()].map((m) => [m.name, m.batcher.queued]));
  }

  async close(): Promise<void> {
    this.scheduler.close();
    this.store.close();
    await Promise.all([this.pool.close(), this.tokenizePool.close()]);
  }
}
