/**
 * The models of this process: composition (workers, scheduler, tokenizer threads, store), boot of every
 * configured model, its status, and lookup of a ready model by task and name. Knows nothing of HTTP.
 */
import { BootError, GatewayError } from '../errors.ts';
import type { GatewayConfig, ModelEntry } from '../config/schema.ts';
import type { Task } from '../tasks/catalog.ts';
import { ModelStore, type Ensured } from '../store/model-store.ts';
import { TokenizePool } from './tokenize-pool.ts';
import { WorkerPool, type PoolLogger } from './pool.ts';
import { Scheduler, type BatchEvent } from './batcher.ts';
import { loadModel, type ServingModel } from './loader.ts';
import type { ModelState, ModelStatus } from './model-status.ts';

export type { ServingModel } from './loader.ts';
export type { ModelState, ModelStatus } from './model-status.ts';

export class ModelRegistry {
  readonly pool: WorkerPool;
  readonly scheduler: Scheduler;
  readonly tokenizePool: TokenizePool;
  private readonly store: ModelStore;
  private readonly statuses = new Map<string, ModelStatus>();
  private readonly serving = new Map<string, ServingModel>();
  private readonly defaults = new Map<Task, string>();
  private readonly stateListeners: ((name: string, state: ModelState) => void)[] = [];
  private readonly bootErrors = new Map<string, BootError>();
  /** Load counter: every load gets its own session key and cache key. */
  private generation = 0;

  constructor(
    private readonly config: GatewayConfig,
    private readonly logger: PoolLogger,
    private readonly onBatch?: (e: BatchEvent) => void,
  ) {
    this.pool = new WorkerPool({ size: config.inference.workers, intraOpThreads: config.inference.intraOpThreads, nice: config.inference.workerNice, logger });
    this.scheduler = new Scheduler(this.pool, config.inference, onBatch, logger);
    this.tokenizePool = new TokenizePool({ threads: config.inference.tokenizerThreads, inlineMaxChars: config.inference.tokenizeInlineMaxChars });
    this.store = new ModelStore({ ...config.store, root: config.store.dir, logger });
    for (const m of config.models) {
      this.statuses.set(m.name, { name: m.name, source: m.source, required: m.required, default: m.default, state: 'pending', timings: {}, ...remoteStatus(m) });
    }
  }

  onState(listener: (name: string, state: ModelState) => void): void {
    this.stateListeners.push(listener);
  }

  private setState(name: string, state: ModelState): void {
    this.statuses.get(name)!.state = state;
    for (const l of this.stateListeners) l(name, state);
  }

  /**
   * Fetches all models concurrently, then loads and warms them one at a time (each load uses every worker).
   * Resolves when every model is ready or failed; rejects with the first required model's BootError.
   */
  async boot(): Promise<void> {
    this.pool.start();
    const fetched = await Promise.all(this.config.models.map((m) => this.fetch(m).catch((err: unknown) => this.failed(m, err))));
    for (const [i, m] of this.config.models.entries()) {
      const got = fetched[i];
      if (got === undefined) continue;
      await this.load(m, got).catch((err: unknown) => this.failed(m, err));
    }
    this.assignDefaults();
    const bad = this.config.models.find((m) => m.required && this.statuses.get(m.name)!.state !== 'ready');
    if (bad) throw this.bootErrors.get(bad.name) ?? new BootError(bad.name, 'boot', 'not ready');
  }

  private failed(m: ModelEntry, err: unknown): undefined {
    const status = this.statuses.get(m.name)!;
    const bootErr = err instanceof BootError ? err : new BootError(m.name, status.state === 'pending' ? 'boot' : status.state, (err as Error).message, { cause: err });
    this.bootErrors.set(m.name, bootErr);
    status.error = bootErr.message;
    status.failed_step = bootErr.step;
    this.setState(m.name, 'failed');
    this.logger[m.required ? 'error' : 'warn']({ model: m.name, step: bootErr.step, err: bootErr.message }, m.required ? 'required model failed' : 'optional model failed; serving without it');
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

  private async fetch(m: ModelEntry): Promise<Ensured> {
    const status = this.statuses.get(m.name)!;
    const res = await this.timed(m.name, 'fetch', () => this.store.ensure({ name: m.name, source: m.source, sha256: m.sha256 }, (step) => this.setState(m.name, step)));
    status.sha256 = res.sha256 ?? undefined;
    return res;
  }

  private async load(m: ModelEntry, got: Ensured): Promise<void> {
    const status = this.statuses.get(m.name)!;
    const model = await loadModel(m.name, got.dir, got.digest, ++this.generation, {
      pool: this.pool,
      scheduler: this.scheduler,
      tokenizePool: this.tokenizePool,
      inference: this.config.inference,
      logger: this.logger,
      setState: (state) => this.setState(m.name, state),
      step: (step, fn) => this.timed(m.name, step, fn),
      backend: m.backend,
      onBatch: this.onBatch,
      onManifest: (manifest) =>
        Object.assign(status, {
          task: manifest.task,
          description: manifest.description,
          labels: manifest.labels,
          max_length: manifest.maxLength,
          score: manifest.score && { min: manifest.score.min, max: manifest.score.max, round: manifest.score.round },
          threshold: manifest.threshold,
          version: `${manifest.version}+${got.digest.slice(0, 12)}`,
        }),
    });
    const { warmup, ...serving } = model;
    status.warmup = warmup;
    this.serving.set(m.name, serving);
    this.setState(m.name, 'ready');
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

  /** True when every required model is ready and the inference workers can run. */
  isReady(): boolean {
    return this.pool.broken === undefined && [...this.statuses.values()].every((s) => !s.required || s.state === 'ready');
  }

  /** Why the process cannot serve even with its models loaded, if it cannot. */
  unhealthy(): string | undefined {
    return this.pool.broken ? `inference workers cannot start: ${this.pool.broken.message}` : undefined;
  }

  list(): ModelStatus[] {
    return [...this.statuses.values()].map((s) => ({ ...s, default: s.task !== undefined && this.defaults.get(s.task) === s.name }));
  }

  status(name: string): ModelStatus | undefined {
    return this.list().find((x) => x.name === name);
  }

  /** Names of the models for a task (any state). */
  namesFor(task: Task): string[] {
    return [...this.statuses.values()].filter((s) => s.task === task).map((s) => s.name);
  }

  /** The ready model for a task: the named one, or the task's default. 404 unknown, 422 wrong task, 503 not ready. */
  resolve(task: Task, name?: string): ServingModel {
    return this.resolveAny([task], name);
  }

  /**
   * The ready model for the first of `tasks` that has one: the named model if its task is one of them, else the
   * default of the first task with a default (e.g. similarity by a bi-encoder, or by a cross-encoder).
   */
  resolveAny(tasks: Task[], name?: string): ServingModel {
    const forTasks = () => tasks.flatMap((t) => this.namesFor(t));
    const what = tasks.join(' or ');
    if (name === undefined) {
      const def = tasks.map((t) => this.defaults.get(t)).find((d) => d !== undefined);
      if (def === undefined) {
        const booting = [...this.statuses.values()].some((s) => s.state !== 'ready' && s.state !== 'failed');
        if (booting) throw new GatewayError('not_ready', `models are still loading; no ${what} model is ready yet`, { retryAfter: 5 });
        throw new GatewayError('model_not_found', `no ${what} model is configured and ready`, { details: { task: tasks[0], models: forTasks() } });
      }
      name = def;
    }
    const status = this.statuses.get(name);
    if (!status) {
      throw new GatewayError('model_not_found', `unknown model "${name}"; ${what} models: ${forTasks().join(', ') || '(none)'}`, { details: { task: tasks[0], models: forTasks() } });
    }
    if (status.task !== undefined && !tasks.includes(status.task)) {
      throw new GatewayError('wrong_task', `model "${name}" is a ${status.task} model, not ${what}; ${what} models: ${forTasks().join(', ') || '(none)'}`, {
        details: { task: tasks[0], model_task: status.task, models: forTasks() },
      });
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
    await Promise.all([...this.serving.values()].map((m) => m.remote?.close()));
    this.scheduler.close();
    this.store.close();
    await Promise.all([this.pool.close(), this.tokenizePool.close()]);
  }
}

/** What /v1/models says of a model entry's remote backend. */
function remoteStatus(m: ModelEntry): Pick<ModelStatus, 'backend'> {
  if (!m.backend) return {};
  const { kind, url, model, version } = m.backend;
  return { backend: { kind, url, model: model ?? m.name, ...(version ? { version } : {}) } };
}
