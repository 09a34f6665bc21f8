import { Worker } from 'node:worker_threads';
import type { RunRequest, TensorInfo, TensorOut, WorkerRequest, WorkerResponse } from './protocol.ts';

const WORKER_URL = new URL('./worker-entry.mjs', import.meta.url);
/** Replacement workers that may fail in a row (die or fail to load their models before they serve) before the pool gives up: a broken install must not spin. */
const MAX_FAILED_STARTS = 3;

export interface PoolLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface RunResult {
  outputs: Record<string, TensorOut>;
  inferenceMs: number;
}

export interface LoadedGraph {
  inputNames: string[];
  outputNames: string[];
  inputs: TensorInfo[];
  outputs: TensorInfo[];
  /** Resident memory of the process after the load, as each worker measured it (bytes). */
  rssAfter: number[];
  /** The v2 platform of a graph served by a remote inference server (e.g. Triton's onnxruntime_onnx); local graphs have none. */
  platform?: string;
}

/** The session itself failed (ONNX Runtime threw): the same input fails again, unlike a worker that died. */
export class RunError extends Error {
  override name = 'RunError';
}

/** The worker thread died with calls in flight (native crash, exit): a retry on another worker may succeed. */
export class WorkerGoneError extends Error {
  override name = 'WorkerGoneError';
}

export type RunBody = Omit<RunRequest, 'id' | 'type'>;
type Pending = { resolve: (v: WorkerResponse) => void; reject: (e: Error) => void };
type Distribute<T> = T extends unknown ? Omit<T, 'id'> : never;
type Body = Distribute<WorkerRequest>;

/** One inference worker thread and the calls it has in flight. */
export class PoolWorker {
  readonly worker: Worker;
  readonly pending = new Map<number, Pending>();
  /** A run is in flight (runs are one at a time: the session uses this thread's core). */
  busy = false;
  /** Takes runs: started and holding every loaded model. */
  ready = false;
  /** Has loaded its models or run a batch successfully: a worker that dies before that is a failed start. */
  everReady = false;
  private nextId = 1;
  /** Exited or failed: its calls were rejected, and a call now would never be answered. */
  private gone?: Error;

  constructor(
    readonly slot: number,
    intraOpThreads: number,
    nice: number,
    onGone: (w: PoolWorker, err: Error) => void,
  ) {
    this.worker = new Worker(WORKER_URL, { workerData: { intraOpThreads, nice } });
    this.worker.on('message', (msg: WorkerResponse) => {
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      if (msg.type === 'error') p.reject(new RunError(msg.message));
      else p.resolve(msg);
    });
    const fail = (err: Error) => {
      if (this.gone) return;
      const e = new WorkerGoneError(err.message, { cause: err });
      this.gone = e;
      for (const p of this.pending.values()) p.reject(e);
      this.pending.clear();
      onGone(this, err);
    };
    this.worker.on('error', (err) => fail(err));
    this.worker.on('exit', (code) => fail(new Error(`inference worker exited with code ${code}`)));
  }

  call(body: Body, transfer: ArrayBuffer[] = []): Promise<WorkerResponse> {
    // A worker that has exited takes no message: a call to it would wait forever (a model unloaded while the
    // pool closes, between one worker's exit and the next's, hung its load that way).
    if (this.gone) return Promise.reject(this.gone);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...body, id }, transfer);
    });
  }
}

/**
 * A fixed set of inference worker threads (slots), each holding one session per loaded model. Unlike a
 * generic task pool (piscina), it can load a model into every worker, run a batch on a chosen idle slot (the
 * scheduler, and only the scheduler, decides which: that is what lets batches form while all workers are
 * busy), and reload a replacement worker's models after a crash.
 */
export class WorkerPool {
  private workers: (PoolWorker | undefined)[] = [];
  private readonly models = new Map<string, string>();
  private idleListeners: (() => void)[] = [];
  private closed = false;
  private failedStarts = 0;
  restarts = 0;
  /** Set when replacements keep dying or failing to load before they serve: the pool stops respawning. */
  broken?: Error;

  constructor(private readonly opts: { size: number; intraOpThreads: number; nice?: number; logger?: PoolLogger }) {}

  start(): void {
    if (this.workers.length) return;
    for (let i = 0; i < this.opts.size; i++) this.workers.push(this.spawn(i));
  }

  private spawn(slot: number): PoolWorker {
    const w = new PoolWorker(slot, this.opts.intraOpThreads, this.opts.nice ?? 0, (gone, err) => this.replace(gone, err));
    w.ready = this.models.size === 0;
    return w;
  }

  /** A worker died (native crash, exit, uncaught error): its calls were rejected; start another with the same models. */
  private replace(gone: PoolWorker, err: Error): void {
    if (this.closed || this.workers[gone.slot] !== gone) return;
    if (!gone.everReady && ++this.failedStarts >= MAX_FAILED_STARTS) {
      this.broken = err;
      this.workers[gone.slot] = undefined;
      this.opts.logger?.error({ err: err.message, failedStarts: this.failedStarts }, 'inference workers keep failing before they serve; not starting more');
      this.notifyIdle();
      return;
    }
    this.restarts++;
    this.opts.logger?.error({ err: err.message, slot: gone.slot }, 'inference worker died; starting a replacement');
    const fresh = this.spawn(gone.slot);
    this.workers[gone.slot] = fresh;
    void (async () => {
      try {
        for (const [model, onnxPath] of this.models) await fresh.call({ type: 'load', model, onnxPath });
        fresh.ready = true;
        fresh.everReady = true;
        this.failedStarts = 0;
        this.opts.logger?.info({ models: [...this.models.keys()], slot: gone.slot }, 'replacement inference worker ready');
        this.notifyIdle();
      } catch (e) {
        // Counted as a failed start when its exit comes back through replace().
        this.opts.logger?.error({ err: (e as Error).message, slot: gone.slot }, 'replacement inference worker failed to load models');
        void fresh.worker.terminate();
      }
    })();
  }

  private live(): PoolWorker[] {
    return this.workers.filter((w): w is PoolWorker => w !== undefined);
  }

  get size(): number {
    return this.live().length;
  }

  /** Slots that exist (a broken pool loses the slot that kept failing). */
  hasSlot(slot: number): boolean {
    return this.workers[slot] !== undefined;
  }

  slots(): number[] {
    return this.live().map((w) => w.slot);
  }

  /** Slots ready for a run now. */
  idleSlots(): number[] {
    return this.live()
      .filter((w) => w.ready && !w.busy)
      .map((w) => w.slot);
  }

  idleCount(): number {
    return this.idleSlots().length;
  }

  /** Called whenever a worker becomes free: the scheduler hands it the next batch. */
  onIdle(listener: () => void): void {
    this.idleListeners.push(listener);
  }

  private notifyIdle(): void {
    for (const l of this.idleListeners) l();
  }

  /** Loads a model into every worker; resolves with the graph's inputs and outputs. */
  async load(model: string, onnxPath: string): Promise<LoadedGraph> {
    if (this.broken) throw new Error(`inference workers cannot start: ${this.broken.message}`);
    const workers = this.live();
    const replies = (await Promise.all(workers.map((w) => w.call({ type: 'load', model, onnxPath })))) as (WorkerResponse & { type: 'loaded' })[];
    this.models.set(model, onnxPath);
    for (const w of workers) {
      w.ready = true;
      w.everReady = true;
    }
    this.notifyIdle();
    const first = replies[0];
    return { inputNames: first.inputNames, outputNames: first.outputNames, inputs: first.inputs, outputs: first.outputs, rssAfter: replies.map((r) => r.rssBytes) };
  }

  /** Releases a model's session in every worker; resolves with each worker's RSS after. */
  async unload(model: string): Promise<number[]> {
    this.models.delete(model);
    if (this.closed) return [];
    const replies = await Promise.allSettled(this.live().map((w) => w.call({ type: 'unload', model })));
    return replies.flatMap((r) => (r.status === 'fulfilled' && r.value.type === 'done' && r.value.rssBytes !== undefined ? [r.value.rssBytes] : []));
  }

  /** Runs on the worker of `slot`. Only the scheduler calls this, and only for a slot it got from idleSlots(). */
  async runOn(slot: number, req: RunBody): Promise<RunResult> {
    const w = this.workers[slot];
    if (!w || !w.ready || w.busy) throw new Error(`inference worker ${slot} is not idle`);
    w.busy = true;
    try {
      const res = (await w.call({ type: 'run', ...req }, [req.inputIds.buffer as ArrayBuffer, req.typeIds.buffer as ArrayBuffer, req.lengths.buffer as ArrayBuffer])) as WorkerResponse & { type: 'ran' };
      w.everReady = true;
      return { outputs: res.outputs, inferenceMs: res.inferenceMs };
    } finally {
      w.busy = false;
      setImmediate(() => this.notifyIdle());
    }
  }

  /** Fault hook for tests: the next run on a worker (slot 0 unless given) dies, throws or stalls. */
  async injectFault(how: 'exit' | 'throw' | 'stall', ms?: number, slot = 0): Promise<void> {
    const w = this.workers[slot];
    if (!w) throw new Error(`no inference worker in slot ${slot}`);
    await w.call({ type: 'crash', how, ms });
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled(this.live().map((w) => w.worker.terminate()));
    this.workers = [];
  }
}
