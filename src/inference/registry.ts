/**
 * The models of this process: composition (workers, scheduler, tokenizer threads, store), their life cycle
 * (boot, add, replace and remove at run time, lazy loading, eviction under a memory budget), their status,
 * and lookup of a ready model by task and name. Knows nothing of HTTP.
 *
 * A model name is a slot; a load fills it with a serving version (its own session key, batcher and cache
 * key). A replacement loads beside the serving version and takes the slot only once ready; the old version is
 * retired: it takes no new requests, and is unloaded once the requests that hold it are done.
 */
import { BootError, GatewayError } from '../errors.ts';
import { ModelEntrySchema, normalizeEntry, type BackendConfig, type GatewayConfig, type ModelEntry } from '../config/schema.ts';
import type { Task } from '../tasks/catalog.ts';
import { ModelStore, type Ensured } from '../store/model-store.ts';
import { TokenizePool } from './tokenize-pool.ts';
import { WorkerPool, type PoolLogger } from './pool.ts';
import { Scheduler, type BatchEvent } from './batcher.ts';
import { loadModel, type ServingModel } from './loader.ts';
import type { ModelState, ModelStatus, UpdateStatus } from './model-status.ts';
import { Value } from 'typebox/value';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';

export type { ServingModel } from './loader.ts';
export type { ModelState, ModelStatus } from './model-status.ts';

/** Held by a request for the models it uses, released when it is answered: a retired version waits for it. */
export interface Lease {
  add(release: () => void): void;
}

export interface ModelEvents {
  onBatch?(e: BatchEvent): void;
  onLoad?(e: { model: string; result: 'ok' | 'failed'; steps: Record<string, number>; memoryBytes?: number }): void;
  onUnload?(e: { model: string; reason: 'replaced' | 'removed' | 'evicted' }): void;
}

/** A model entry as PUT /v1/models/{name} takes it: the config file's entry without the name. */
export type ModelEntryInput = Omit<ModelEntry, 'name' | 'required' | 'default' | 'load' | 'backend'> &
  Partial<Pick<ModelEntry, 'required' | 'default' | 'load'>> & { backend?: Pick<BackendConfig, 'kind' | 'url'> & Partial<BackendConfig> };

interface Retiring {
  model: ServingModel;
  files?: Files;
  reason: 'replaced' | 'removed' | 'evicted';
  done: Promise<void>;
  finish: () => void;
  finishing?: boolean;
}

interface Files {
  dir: string;
  /** Unpacked by the store (a zip): freed with its version. A local folder source is the user's: never. */
  owned: boolean;
}

interface Slot {
  name: string;
  entry: ModelEntry;
  status: ModelStatus;
  serving?: ServingModel;
  files?: Files;
  /** A load in progress: boot, a lazy model's first request, or a replacement. */
  loading?: Promise<ServingModel | undefined>;
  lastUsed: number;
  /** DELETE was called: no new requests; the slot goes once its version is unloaded. */
  removed: boolean;
  /** Added by PUT at run time (and not yet ready once): it does not hold readiness back. */
  runtime: boolean;
  everReady: boolean;
  /** Measured at its last load; what the memory budget counts. */
  memoryBytes?: number;
}

const MB = 1024 * 1024;

export class ModelRegistry {
  readonly pool: WorkerPool;
  readonly scheduler: Scheduler;
  readonly tokenizePool: TokenizePool;
  private readonly store: ModelStore;
  private readonly slots = new Map<string, Slot>();
  private readonly defaults = new Map<Task, string>();
  private readonly stateListeners: ((name: string, state: ModelState) => void)[] = [];
  private readonly bootErrors = new Map<string, BootError>();
  private readonly retiring = new Set<Retiring>();
  /** Load counter: every load gets its own session key, cache key and (at run time) folder. */
  private generation = 0;
  private closed = false;
  /** Loads running in the worker pool right now (settle, never reject): close() waits for them. */
  private readonly inWorker = new Set<Promise<void>>();
  /** One release function per version, made once (not a closure per request). */
  private readonly releasers = new WeakMap<ServingModel, () => void>();

  constructor(
    private readonly config: GatewayConfig,
    private readonly logger: PoolLogger,
    private readonly events: ModelEvents = {},
  ) {
    this.pool = new WorkerPool({ size: config.inference.workers, intraOpThreads: config.inference.intraOpThreads, nice: config.inference.workerNice, logger });
    this.scheduler = new Scheduler(this.pool, config.inference, events.onBatch, logger);
    this.tokenizePool = new TokenizePool({ threads: config.inference.tokenizerThreads, inlineMaxChars: config.inference.tokenizeInlineMaxChars });
    this.store = new ModelStore({ ...config.store, root: config.store.dir, logger });
    for (const m of config.models) this.slots.set(m.name, this.newSlot(m, false));
  }

  private newSlot(entry: ModelEntry, runtime: boolean): Slot {
    const state: ModelState = entry.load === 'lazy' ? 'available' : 'pending';
    return {
      name: entry.name,
      entry,
      status: { name: entry.name, source: entry.source, required: entry.required, default: entry.default, load: entry.load, state, timings: {}, ...remoteStatus(entry) },
      lastUsed: 0,
      removed: false,
      runtime,
      everReady: false,
    };
  }

  onState(listener: (name: string, state: ModelState) => void): void {
    this.stateListeners.push(listener);
  }

  private setState(slot: Slot, state: ModelState): void {
    slot.status.state = state;
    for (const l of this.stateListeners) l(slot.name, state);
  }

  /**
   * Fetches the eager models concurrently and loads and warms them one at a time in config order (each load
   * uses every worker), each as soon as its own fetch is done: a small model listed before a large one is
   * warming while the large one still downloads. Lazy models stay `available`. Resolves when every eager model
   * is ready or failed; rejects with the first required model's BootError.
   */
  async boot(): Promise<void> {
    this.pool.start();
    const eager = [...this.slots.values()].filter((s) => s.entry.load === 'eager');
    const fetching = eager.map((s) => this.fetch(s, s.status, s.name).catch((err: unknown) => this.failed(s, err)));
    for (const [i, slot] of eager.entries()) {
      const got = await fetching[i];
      if (got === undefined) continue;
      await this.install(slot, got, { dir: got.dir, owned: got.sha256 !== null }, slot.status).catch((err: unknown) => this.failed(slot, err));
    }
    this.assignDefaults();
    const removed = await this.store.sweepVersions(new Set([...this.slots.values()].flatMap((s) => (s.files ? [s.files.dir] : []))));
    if (removed.length) this.logger.info({ folders: removed }, 'removed model versions left by an earlier process');
    const bad = eager.find((s) => s.entry.required && s.status.state !== 'ready');
    if (bad) throw this.bootErrors.get(bad.name) ?? new BootError(bad.name, 'boot', 'not ready');
  }

  private failed(slot: Slot, err: unknown): undefined {
    const bootErr = this.asBootError(slot.name, slot.status.state, err);
    this.bootErrors.set(slot.name, bootErr);
    slot.status.error = bootErr.message;
    slot.status.failed_step = bootErr.step;
    this.setState(slot, 'failed');
    const required = slot.entry.required && !slot.runtime;
    this.logger[required ? 'error' : 'warn']({ model: slot.name, step: bootErr.step, err: bootErr.message }, required ? 'required model failed' : 'model failed to load; serving without it');
    return undefined;
  }

  private asBootError(name: string, state: string, err: unknown): BootError {
    return err instanceof BootError ? err : new BootError(name, state === 'pending' || state === 'available' ? 'boot' : state, (err as Error).message, { cause: err });
  }

  private async timed<T>(name: string, timings: Record<string, number>, step: string, fn: () => Promise<T>): Promise<T> {
    const t0 = performance.now();
    const out = await fn();
    const ms = Math.round((performance.now() - t0) * 10) / 10;
    timings[step] = ms;
    this.logger.info({ model: name, step, ms }, `${name}: ${step} done`);
    return out;
  }

  /** Fetches the slot's entry into `folder` under the store root, reporting its steps into `into`. */
  private async fetch(slot: Slot, into: ModelStatus | UpdateStatus, folder: string, entry: ModelEntry = slot.entry): Promise<Ensured> {
    const res = await this.timed(slot.name, into.timings, 'fetch', () =>
      this.store.ensure({ name: slot.name, folder, source: entry.source, sha256: entry.sha256 }, (step) => {
        into.state = step;
        if (into === slot.status) this.setState(slot, step);
      }),
    );
    if (into === slot.status) slot.status.sha256 = res.sha256 ?? undefined;
    return res;
  }

  /** Loads a fetched version and makes it the slot's serving one; the previous version, if any, is retired. */
  private async install(slot: Slot, got: Ensured, files: Files, into: ModelStatus | UpdateStatus, entry: ModelEntry = slot.entry): Promise<ServingModel> {
    const replacing = slot.serving !== undefined;
    const track = (state: ModelState) => {
      into.state = state;
      if (!replacing) this.setState(slot, state);
    };
    const rssBefore = process.memoryUsage.rss();
    let model: ServingModel & { warmup: NonNullable<ModelStatus['warmup']> };
    // A remote model's circuit reports degraded/ready for as long as this version is the one serving.
    const loaded: { model?: ServingModel } = {};
    try {
      if (this.closed) throw new BootError(slot.name, 'loading', 'the gateway closed before the model loaded');
      await this.makeRoom(slot, got.dir);
      const loading = loadModel(slot.name, got.dir, got.digest, ++this.generation, {
        pool: this.pool,
        scheduler: this.scheduler,
        tokenizePool: this.tokenizePool,
        inference: this.config.inference,
        logger: this.logger,
        setState: track,
        step: (step, fn) => this.timed(slot.name, into.timings, step, fn),
        backend: entry.backend,
        onBatch: this.events.onBatch,
        remoteState: (state) => {
          if (loaded.model && slot.serving === loaded.model) this.setState(slot, state);
        },
        onManifest: (manifest) => {
          if (replacing) (into as UpdateStatus).version = `${manifest.version}+${got.digest.slice(0, 12)}`;
          else describe(slot.status, manifest, got);
        },
      });
      const settled = loading.then(() => undefined, () => undefined);
      this.inWorker.add(settled);
      model = await loading.finally(() => this.inWorker.delete(settled));
    } catch (err) {
      this.events.onLoad?.({ model: slot.name, result: 'failed', steps: { ...into.timings } });
      throw err;
    }
    // RSS growth is noisy (the allocator keeps and reuses memory): never count less than the graph on disk.
    const memoryBytes = Math.max(process.memoryUsage.rss() - rssBefore, await folderBytes(got.dir));
    this.events.onLoad?.({ model: slot.name, result: 'ok', steps: { ...into.timings }, memoryBytes });
    const { warmup, ...serving } = model;
    loaded.model = serving;
    if (slot.removed || this.closed) {
      // Removed while it loaded: never serve it.
      await this.unload(serving, files);
      throw new BootError(slot.name, 'loading', this.closed ? 'the gateway closed while the model loaded' : 'the model was removed while it loaded');
    }
    const previous = slot.serving ? { model: slot.serving, files: slot.files } : undefined;
    slot.serving = serving;
    slot.files = files;
    slot.entry = entry;
    slot.everReady = true;
    slot.lastUsed = Date.now();
    slot.memoryBytes = memoryBytes;
    Object.assign(slot.status, { source: entry.source, required: entry.required, default: entry.default, load: entry.load, sha256: got.sha256 ?? undefined });
    if (replacing) {
      describe(slot.status, serving.manifest, got);
      slot.status.timings = { ...into.timings };
      delete slot.status.update;
    }
    slot.status.warmup = warmup;
    slot.status.memory_mb = Math.round((memoryBytes / MB) * 10) / 10;
    delete slot.status.error;
    delete slot.status.failed_step;
    this.setState(slot, 'ready');
    if (previous) this.retire(previous.model, previous.files, 'replaced');
    return serving;
  }

  /**
   * Adds a model or replaces one (PUT /v1/models/{name}): the whole boot pipeline runs in the background while
   * everything else serves; returns the model's status at once. A replacement boots beside the serving version
   * and takes over only once ready; if it fails at any step the serving version stays, and the status's `update`
   * shows the failed attempt with its step and cause.
   */
  put(name: string, input: ModelEntryInput): ModelStatus {
    const entry = this.entryOf(name, input);
    const existing = this.slots.get(name);
    if (existing?.removed) throw new GatewayError('conflict', `model "${name}" is being removed; retry once it is gone`, { retryAfter: 2 });
    if (existing?.loading) throw new GatewayError('conflict', `model "${name}" is already loading; wait for that load to finish (see GET /v1/models/${name})`, { retryAfter: 2 });
    if (!existing || (!existing.serving && existing.status.state !== 'available')) {
      // New (or a failed one tried again): the slot's own status follows the load.
      const slot = existing ?? this.newSlot(entry, true);
      slot.entry = entry;
      slot.status = this.newSlot(entry, true).status;
      if (!existing) this.slots.set(name, slot);
      if (entry.load === 'lazy') {
        this.assignDefaults();
        return this.statusOf(slot);
      }
      slot.loading = this.bringUp(slot, slot.status, entry, name).finally(() => (slot.loading = undefined));
      void slot.loading.catch(() => undefined);
      return this.statusOf(slot);
    }
    if (!existing.serving) {
      // A lazy model not loaded yet: the new entry is used when it is first needed.
      existing.entry = entry;
      Object.assign(existing.status, { source: entry.source, required: entry.required, default: entry.default, load: entry.load });
      return this.statusOf(existing);
    }
    const update: UpdateStatus = { state: 'pending', source: entry.source, started_at: new Date().toISOString(), timings: {} };
    existing.status.update = update;
    existing.loading = this.bringUp(existing, update, entry, `${name}.r${this.generation + 1}`).finally(() => (existing.loading = undefined));
    void existing.loading.catch(() => undefined);
    return this.statusOf(existing);
  }

  private entryOf(name: string, input: ModelEntryInput): ModelEntry {
    const raw = Value.Default(ModelEntrySchema, Value.Clone({ ...input, name }));
    if (!Value.Check(ModelEntrySchema, raw)) {
      const e = [...Value.Errors(ModelEntrySchema, raw)][0];
      const where = e?.instancePath.replace(/^\//, '') || 'entry';
      throw new GatewayError('invalid_request', `model entry: ${where}: ${e?.message ?? 'invalid'}`);
    }
    return normalizeEntry(raw);
  }

  /** Fetch and install into the slot; failures are recorded where `into` points (the slot's status or its update). */
  private async bringUp(slot: Slot, into: ModelStatus | UpdateStatus, entry: ModelEntry, folder: string): Promise<ServingModel | undefined> {
    try {
      const got = await this.fetch(slot, into, folder, entry);
      const model = await this.install(slot, got, { dir: got.dir, owned: got.sha256 !== null }, into, entry);
      this.assignDefaults();
      return model;
    } catch (err) {
      const bootErr = this.asBootError(slot.name, into.state, err);
      if (into === slot.status) {
        this.failed(slot, bootErr);
      } else {
        Object.assign(into, { state: 'failed', error: bootErr.message, failed_step: bootErr.step, finished_at: new Date().toISOString() });
        this.logger.warn({ model: slot.name, step: bootErr.step, err: bootErr.message }, 'new version failed; the serving version stays');
        if (folder !== slot.name) await this.store.remove(`${this.config.store.dir}/${folder}`).catch(() => undefined);
      }
      throw bootErr;
    }
  }

  /** DELETE /v1/models/{name}: no new requests (404 naming the others), drain, unload, free its files. */
  remove(name: string): ModelStatus {
    const slot = this.slots.get(name);
    if (!slot || slot.removed) throw this.unknown(name);
    slot.removed = true;
    const finish = () => {
      if (this.slots.get(name) === slot) this.slots.delete(name);
      this.assignDefaults();
    };
    if (slot.serving) {
      this.setState(slot, 'draining');
      const r = this.retire(slot.serving, slot.files, 'removed');
      slot.serving = undefined;
      void r.then(finish);
    } else finish();
    this.assignDefaults();
    return this.statusOf(slot);
  }

  /** A version that takes no new requests: unloaded once the requests holding it are answered (or at the drain timeout). */
  private retire(model: ServingModel, files: Files | undefined, reason: Retiring['reason']): Promise<void> {
    let finish!: () => void;
    const done = new Promise<void>((r) => (finish = r));
    const r: Retiring = { model, files, reason, done, finish };
    this.retiring.add(r);
    model.retired = () => {
      if (model.leases === 0) void this.finishRetire(r);
    };
    const timer = setTimeout(() => {
      if (!r.finishing) {
        this.logger.warn({ model: model.name, version: model.version, leases: model.leases }, 'unloading a retired version before its requests finished (drain timeout)');
        void this.finishRetire(r);
      }
    }, this.config.inference.drainTimeoutMs);
    timer.unref();
    void done.then(() => clearTimeout(timer));
    model.retired();
    return done;
  }

  private async finishRetire(r: Retiring): Promise<void> {
    if (r.finishing) return;
    r.finishing = true;
    await this.unload(r.model, r.files);
    this.retiring.delete(r);
    this.logger.info({ model: r.model.name, version: r.model.version, reason: r.reason }, `${r.model.name}: version ${r.model.version} unloaded (${r.reason})`);
    this.events.onUnload?.({ model: r.model.name, reason: r.reason });
    r.finish();
  }

  private async unload(model: ServingModel, files: Files | undefined): Promise<void> {
    const gone = new GatewayError('not_ready', `model "${model.name}" version ${model.version} was unloaded; retry`, { retryAfter: 1 });
    for (const b of [model.batcher, model.rawBatcher]) {
      b.scheduler.unregister(b);
      b.failAll(gone);
    }
    // A remote model has no session here: its executor, scheduler and connections go instead.
    await (model.remote ? model.remote.close() : this.pool.unload(model.spec.session)).catch(() => undefined);
    if (files?.owned) await this.store.remove(files.dir).catch(() => undefined);
  }

  /** Releases one hold of a request on a version. */
  private release(model: ServingModel): void {
    model.leases--;
    if (model.leases === 0) model.retired?.();
  }

  /**
   * Under inference.memoryBudgetMb: before `slot` loads, unloads the least recently used lazy models (never eager
   * or required ones, never `slot` itself) until what is loaded plus `slot`'s last measured size fits.
   */
  private async makeRoom(slot: Slot, dir: string): Promise<void> {
    const budget = this.config.inference.memoryBudgetMb * MB;
    if (budget <= 0 || slot.entry.load !== 'lazy') return;
    const loaded = () => [...this.slots.values()].filter((s) => s.serving && s !== slot);
    const used = () => loaded().reduce((n, s) => n + (s.memoryBytes ?? 0), 0);
    // Before its first load a model's size is not known: its files on disk are a lower bound.
    const need = slot.memoryBytes ?? (await folderBytes(dir));
    const evictable = loaded()
      .filter((s) => s.entry.load === 'lazy' && !s.entry.required)
      .sort((a, b) => a.lastUsed - b.lastUsed);
    for (const victim of evictable) {
      if (used() + need <= budget) break;
      const model = victim.serving!;
      this.logger.info({ model: victim.name, for: slot.name, usedMb: Math.round(used() / MB), budgetMb: this.config.inference.memoryBudgetMb }, `${victim.name}: unloaded to make room (memory budget)`);
      victim.serving = undefined;
      const files = victim.files;
      victim.files = undefined;
      this.setState(victim, 'available');
      await this.retire(model, files, 'evicted');
    }
    if (used() + need > budget) this.logger.warn({ model: slot.name, usedMb: Math.round(used() / MB), budgetMb: this.config.inference.memoryBudgetMb }, 'loading past the memory budget: nothing more can be unloaded');
  }

  private assignDefaults(): void {
    this.defaults.clear();
    const usable = [...this.slots.values()].filter((s) => !s.removed && s.status.task !== undefined && s.serving);
    for (const s of usable) {
      const task = s.status.task!;
      const current = this.defaults.get(task);
      const currentIsExplicit = current !== undefined && this.slots.get(current)!.entry.default;
      if (current === undefined || (s.entry.default && !currentIsExplicit)) this.defaults.set(task, s.name);
      else if (s.entry.default && currentIsExplicit) this.logger.warn({ task, kept: current, ignored: s.name }, 'two default models for one task; keeping the first');
    }
  }

  /** True when every required eager model (and every required one that has been ready) is ready, and the workers can run. */
  isReady(): boolean {
    return (
      this.pool.broken === undefined &&
      // A remote model whose server stopped answering (degraded) is loaded but cannot serve: readiness follows the remote's.
      [...this.slots.values()].every((s) => !s.entry.required || s.entry.load === 'lazy' || (s.runtime && !s.everReady) || s.removed || (s.serving !== undefined && s.status.state !== 'degraded'))
    );
  }

  /** Why the process cannot serve even with its models loaded, if it cannot. */
  unhealthy(): string | undefined {
    return this.pool.broken ? `inference workers cannot start: ${this.pool.broken.message}` : undefined;
  }

  private statusOf(s: Slot): ModelStatus {
    const isDefault = s.status.task !== undefined && this.defaults.get(s.status.task) === s.name;
    return {
      ...s.status,
      default: isDefault,
      ...(s.serving ? { in_flight: s.serving.leases } : {}),
      ...(s.lastUsed ? { last_used: new Date(s.lastUsed).toISOString() } : {}),
    };
  }

  list(): ModelStatus[] {
    return [...this.slots.values()].map((s) => this.statusOf(s));
  }

  status(name: string): ModelStatus | undefined {
    const s = this.slots.get(name);
    return s && this.statusOf(s);
  }

  /** Names of the models for a task (any state), not counting removed ones. */
  namesFor(task: Task): string[] {
    return [...this.slots.values()].filter((s) => !s.removed && s.status.task === task).map((s) => s.name);
  }

  private unknown(name: string): GatewayError {
    const names = [...this.slots.values()].filter((s) => !s.removed).map((s) => s.name);
    return new GatewayError('model_not_found', `unknown model "${name}"; models: ${names.join(', ') || '(none)'}`, { details: { models: names } });
  }

  /**
   * The ready model for the first of `tasks` that has one: the named model if its task is one of them, else the
   * default of the first task with a default. A lazy model is loaded by its first request, which waits up to
   * inference.lazyLoadWaitMs. 404 unknown, 422 wrong task, 503 not ready (with Retry-After). `lease` holds the
   * version until the request is answered, so a replacement never unloads it under the request.
   */
  async resolve(tasks: Task | Task[], name?: string, lease?: Lease): Promise<ServingModel> {
    // The common case first, with nothing allocated per call (closures here were ~2 µs of a cache hit): one
    // task, its default or a named model of that task, ready.
    if (typeof tasks === 'string') {
      const slot = this.slots.get(name ?? this.defaults.get(tasks) ?? '');
      if (slot && !slot.removed && slot.serving?.manifest.task === tasks) {
        const model = slot.serving;
        slot.lastUsed = Date.now();
        if (lease) this.lend(model, lease);
        return model;
      }
    }
    const list = Array.isArray(tasks) ? tasks : [tasks];
    const forTasks = () => list.flatMap((t) => this.namesFor(t));
    const what = list.join(' or ');
    if (name === undefined) {
      const def = list.map((t) => this.defaults.get(t)).find((d) => d !== undefined);
      if (def === undefined) {
        const booting = [...this.slots.values()].some((s) => !s.removed && s.entry.load === 'eager' && s.status.state !== 'ready' && s.status.state !== 'failed');
        if (booting) throw new GatewayError('not_ready', `models are still loading; no ${what} model is ready yet`, { retryAfter: 5 });
        throw new GatewayError('model_not_found', `no ${what} model is configured and ready`, { details: { task: list[0], models: forTasks() } });
      }
      name = def;
    }
    const slot = this.slots.get(name);
    if (!slot || slot.removed) {
      throw new GatewayError('model_not_found', `unknown model "${name}"; ${what} models: ${forTasks().join(', ') || '(none)'}`, { details: { task: list[0], models: forTasks() } });
    }
    const wrongTask = (task: Task | undefined) => {
      if (task !== undefined && !list.includes(task)) {
        throw new GatewayError('wrong_task', `model "${name}" is a ${task} model, not ${what}; ${what} models: ${forTasks().join(', ') || '(none)'}`, {
          details: { task: list[0], model_task: task, models: forTasks() },
        });
      }
    };
    wrongTask(slot.status.task);
    const model = slot.serving ?? (slot.entry.load === 'lazy' ? await this.loadLazy(slot) : undefined);
    if (!model) throw new GatewayError('not_ready', `model "${name}" is ${slot.status.state}${slot.status.error ? `: ${slot.status.error}` : ''}`, { retryAfter: 5 });
    wrongTask(model.manifest.task);
    slot.lastUsed = Date.now();
    if (lease) this.lend(model, lease);
    return model;
  }

  /** Holds `model` until the lease is released (a replaced version unloads once its last lease is back). */
  private lend(model: ServingModel, lease: Lease): void {
    model.leases++;
    let release = this.releasers.get(model);
    if (!release) this.releasers.set(model, (release = () => this.release(model)));
    lease.add(release);
  }

  /** A lazy model's first request: one load shared by every request that comes meanwhile, waited for up to the configured bound. */
  private async loadLazy(slot: Slot): Promise<ServingModel> {
    if (!slot.loading) {
      slot.status = { ...this.newSlot(slot.entry, slot.runtime).status, memory_mb: slot.status.memory_mb };
      slot.loading = this.bringUp(slot, slot.status, slot.entry, slot.name).finally(() => (slot.loading = undefined));
      void slot.loading.catch(() => undefined);
    }
    const wait = this.config.inference.lazyLoadWaitMs;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((r) => {
      timer = setTimeout(() => r('timeout'), wait);
      timer.unref();
    });
    const got = await Promise.race([slot.loading.catch((err: unknown) => err as Error), timeout]).finally(() => clearTimeout(timer));
    if (got === 'timeout') throw new GatewayError('not_ready', `model "${slot.name}" is loading (${slot.status.state}); retry shortly`, { retryAfter: Math.max(1, Math.ceil(wait / 2000)) });
    if (got instanceof Error || got === undefined) {
      throw new GatewayError('not_ready', `model "${slot.name}" failed to load: ${got instanceof Error ? got.message : 'unknown error'}`, { retryAfter: 5 });
    }
    return got;
  }

  /** Any ready model by name, whatever its task (Hugging Face routes pick the task from the model). */
  async byName(name: string, lease?: Lease): Promise<ServingModel> {
    const slot = this.slots.get(name);
    if (!slot || slot.removed) throw this.unknown(name);
    const task = slot.serving?.manifest.task ?? slot.status.task;
    if (task) return this.resolve(task, name, lease);
    const model = await this.resolve(['question-answering', 'sentence-similarity', 'essay-scoring', 'text-classification', 'text-ranking'], name, lease);
    return model;
  }

  queued(): Record<string, number> {
    return Object.fromEntries([...this.slots.values()].flatMap((s) => (s.serving ? [[s.name, s.serving.batcher.queued]] : [])));
  }

  /** Resolves when no load and no retirement is in progress (tests, graceful close). */
  async settled(): Promise<void> {
    for (;;) {
      const pending = [...[...this.slots.values()].flatMap((s) => (s.loading ? [s.loading.catch(() => undefined)] : [])), ...[...this.retiring].map((r) => r.done)];
      if (pending.length === 0) return;
      await Promise.all(pending);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    // A model being created or warmed in a worker finishes that first: ending a worker inside ONNX Runtime's
    // session creation can abort the whole process. A fetch still downloading is not waited for (it sees
    // `closed` before it loads anything).
    await Promise.all([...this.inWorker]);
    await Promise.all([...this.slots.values()].map((s) => s.serving?.remote?.close()));
    this.scheduler.close();
    this.store.close();
    await Promise.all([this.pool.close(), this.tokenizePool.close()]);
  }
}

/** Bytes of the files under `dir`. */
async function folderBytes(dir: string): Promise<number> {
  let n = 0;
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true }).catch(() => [])) {
    if (e.isFile()) n += (await stat(join(e.parentPath, e.name)).catch(() => ({ size: 0 }))).size;
  }
  return n;
}

/** The facts of a loaded manifest that /v1/models shows. */
function describe(status: ModelStatus, manifest: ServingModel['manifest'], got: Ensured): void {
  Object.assign(status, {
    task: manifest.task,
    description: manifest.description,
    labels: manifest.labels,
    max_length: manifest.maxLength,
    score: manifest.score && { min: manifest.score.min, max: manifest.score.max, round: manifest.score.round },
    threshold: manifest.threshold,
    version: `${manifest.version}+${got.digest.slice(0, 12)}`,
  });
}

/** What /v1/models says of a model entry's remote backend. */
function remoteStatus(m: ModelEntry): Pick<ModelStatus, 'backend'> {
  if (!m.backend) return {};
  const { kind, url, model, version } = m.backend;
  return { backend: { kind, url, model: model ?? m.name, ...(version ? { version } : {}) } };
}
