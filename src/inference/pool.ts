import { Worker } from 'node:worker_threads';
import { GatewayError } from '../errors.ts';
import type { RunRequest, TensorOut, WorkerRequest, WorkerResponse } from './protocol.ts';

const WORKER_URL = new URL('./worker-entry.mjs', import.meta.url);
/** Replacements allowed in a row for workers that die before they are ready (a broken install must not spin). */
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

type Pending = { resolve: (v: WorkerResponse) => void; reject: (e: Error) => void };
type Distribute<T> = T extends unknown ? Omit<T, 'id'> : never;
type Body = Distribute<WorkerRequest>;

/** One inference worker thread and the calls it has in flight. */
class PoolWorker {
  readonly worker: Worker;
  readonly pending = new Map<number, Pending>();
  /** A run is in flight (runs are one at a time: the session uses this thread's core). */
  busy = false;
  /** Takes runs: started and holding every loaded model. */
  ready = false;
  /** Has answered at least once: a worker that dies before that is a failed start. */
  everReady = false;
  private nextId = 1;

  constructor(intraOpThreads: number, nice: number, onGone: (w: PoolWorker, err: Error) => void) {
    this.worker = new Worker(WORKER_URL, { workerData: { intraOpThreads, nice } });
    this.worker.on('message', (msg: WorkerResponse) => {
      this.everReady = true;
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      if (msg.type === 'error') p.reject(new Error(msg.message));
      else p.resolve(msg);
    });
    let gone = false;
    const fail = (err: Error) => {
      if (gone) return;
      gone = true;
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
      onGone(this, err);
    };
    this.worker.on('error', (err) => fail(err));
    this.worker.on('exit', (code) => fail(new Error(`inference worker exited with code ${code}`)));
  }

  call(body: Body, transfer: ArrayBuffer[] = []): Promise<WorkerResponse> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...body, id }, transfer);
    });
  }
}

/**
 * A fixed set of inference worker threads, each holding one session per loaded model. Unlike a generic
 * task pool (piscina), it can load a model into every worker, send a batch to a worker that is idle right
 * now (that is what lets batches form while all workers are busy), and reload a replacement worker's
 * models after a crash.
 */
export class WorkerPool {
  private workers: PoolWorker[] = [];
  private readonly models = new Map<string, string>();
  private idleListeners: (() => void)[] = [];
  private closed = false;
  private failedStarts = 0;
  restarts = 0;
  /** Set when replacements keep dying before they are ready: the pool stops respawning. */
  broken?: Error;

  constructor(
    private readonly opts: { size: number; intraOpThreads: number; nice?: number; logger?: PoolLogger },
  ) {}

  start(): void {
    for (let i = 0; i < this.opts.size; i++) this.workers.push(this.spawn());
  }

  private spawn(): PoolWorker {
    const w = new PoolWorker(this.opts.intraOpThreads, this.opts.nice ?? 0, (gone, err) => this.replace(gone, err));
    w.ready = this.models.size === 0;
    return w;
  }

  /** A worker died (native crash, exit, uncaught error): its calls were rejected; start another with the same models. */
  private replace(gone: PoolWorker, err: Error): void {
    const i = this.workers.indexOf(gone);
    if (i < 0 || this.closed) return;
    if (!gone.everReady && ++this.failedStarts > MAX_FAILED_STARTS) {
      this.broken = err;
      this.workers.splice(i, 1);
      this.opts.logger?.error({ err: err.message }, 'inference workers keep dying before they are ready; not starting more');
      return;
    }
    this.restarts++;
    this.opts.logger?.error({ err: err.message }, 'inference worker died; starting a replacement');
    const fresh = this.spawn();
    this.workers[i] = fresh;
    void (async () => {
      try {
        for (const [model, onnxPath] of this.models) await fresh.call({ type: 'load', model, onnxPath });
        fresh.ready = true;
        fresh.everReady = true;
        this.failedStarts = 0;
        this.opts.logger?.info({ models: [...this.models.keys()] }, 'replacement inference worker ready');
        this.notifyIdle();
      } catch (e) {
        this.opts.logger?.error({ err: (e as Error).message }, 'replacement inference worker failed to load models');
        void fresh.worker.terminate();
      }
    })();
  }

  get size(): number {
    return this.workers.length;
  }

  idleCount(): number {
    return this.workers.filter((w) => w.ready && !w.busy).length;
  }

  /** Called whenever a worker becomes free: the scheduler hands it the next batch. */
  onIdle(listener: () => void): void {
    this.idleListeners.push(listener);
  }

  private notifyIdle(): void {
    for (const l of this.idleListeners) l();
  }

  /** Loads a model into every worker; resolves with the session's input and output names. */
  async load(model: string, onnxPath: string): Promise<{ inputNames: string[]; outputNames: string[] }> {
    if (this.broken) throw new Error(`inference workers cannot start: ${this.broken.message}`);
    const replies = await Promise.all(this.workers.map((w) => w.call({ type: 'load', model, onnxPath })));
    this.models.set(model, onnxPath);
    for (const w of this.workers) w.ready = true;
    const first = replies[0] as WorkerResponse & { type: 'loaded' };
    return { inputNames: first.inputNames, outputNames: first.outputNames };
  }

  async unload(model: string): Promise<void> {
    this.models.delete(model);
    await Promise.allSettled(this.workers.map((w) => w.call({ type: 'unload', model })));
  }

  /** Runs on an idle worker. Callers (the scheduler) only call this when idleCount() > 0. */
  async run(req: Omit<RunRequest, 'id' | 'type'>): Promise<RunResult> {
    const w = this.workers.find((x) => x.ready && !x.busy);
    if (!w) throw new GatewayError('overloaded', 'no inference worker is free', { retryAfter: 1 });
    return this.runOn(w, req);
  }

  /** Runs the same batch on every worker (warm-up: each worker's session must see the shapes once). */
  async runOnAll(req: Omit<RunRequest, 'id' | 'type'>): Promise<RunResult[]> {
    return Promise.all(this.workers.map((w) => this.runOn(w, { ...req, inputIds: req.inputIds.slice(), typeIds: req.typeIds.slice(), lengths: req.lengths.slice() })));
  }

  private async runOn(w: PoolWorker, req: Omit<RunRequest, 'id' | 'type'>): Promise<RunResult> {
    w.busy = true;
    try {
      const res = (await w.call({ type: 'run', ...req }, [req.inputIds.buffer as ArrayBuffer, req.typeIds.buffer as ArrayBuffer, req.lengths.buffer as ArrayBuffer])) as WorkerResponse & { type: 'ran' };
      return { outputs: res.outputs, inferenceMs: res.inferenceMs };
    } finally {
      w.busy = false;
      setImmediate(() => this.notifyIdle());
    }
  }

  /** Fault hook for tests: the next run on the first worker (the one an idle pool picks) dies, throws or stalls. */
  async injectFault(how: 'exit' | 'throw' | 'stall', ms?: number): Promise<void> {
    await this.workers[0].call({ type: 'crash', how, ms });
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled(this.workers.map((w) => w.worker.terminate()));
    this.workers = [];
  }
}
