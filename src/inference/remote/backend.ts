/**
 * A model whose graph runs on a remote Open Inference Protocol (KServe v2) server: NVIDIA Triton, KServe, or
 * another gateway's /v2. It is an Executor with `maxConcurrency` slots and its own Scheduler, so each batch that
 * scheduler forms is one infer call; tokenization, batching and the task logic stay in this process, and the
 * pooling the local worker would do happens here, on the raw tensor the remote returns.
 *
 * The remote's health decides the model's: a circuit breaker (cockatiel) opens after `breakAfter` consecutive
 * failed calls, or at once when the remote says the model is not ready; the model is then `degraded` and
 * requests get 503 with Retry-After at admission, before any queueing. While open, a half-open probe (model
 * ready, then a one-row infer) runs every `probeIntervalMs`; the first that succeeds closes the circuit and
 * the model is `ready` again, without a restart.
 */
import { CircuitState, ConsecutiveBreaker, ConstantBackoff, circuitBreaker, handleWhen, retry, BrokenCircuitError, IsolatedCircuitError, type CircuitBreakerPolicy, type RetryPolicy } from 'cockatiel';
import { GatewayError } from '../../errors.ts';
import type { BackendConfig, GatewayConfig } from '../../config/schema.ts';
import { Scheduler, type BatchEvent, type Executor } from '../batcher.ts';
import type { ModelState } from '../model-status.ts';
import { RunError, type LoadedGraph, type PoolLogger, type RunBody, type RunResult } from '../pool.ts';
import type { TensorInfo, TensorOut } from '../protocol.ts';
import { applyPost, maskOf } from '../post-process.ts';
import { onnxTypeOf, type MetadataTensor } from '../v2/tensors.ts';
import { RemoteCallError, RemoteUnavailableError, V2Client, type InferInput } from './client.ts';

export interface RemoteDeps {
  inference: GatewayConfig['inference'];
  logger: PoolLogger;
  onBatch?: (e: BatchEvent) => void;
  /** Reports the model's state once it serves: `degraded` while the remote is away, `ready` when it is back. */
  setState(state: ModelState): void;
}

const BOOT_POLL_MS = 500;

export class RemoteBackend implements Executor {
  readonly client: V2Client;
  readonly scheduler: Scheduler;
  /** The model's name on the remote server. */
  readonly remoteModel: string;
  private readonly busy: boolean[];
  private readonly idleListeners: (() => void)[] = [];
  private readonly breaker: CircuitBreakerPolicy;
  private readonly retry?: RetryPolicy;
  private remoteInputs: string[] = [];
  /** Set once warm-up is over: from then on the breaker decides the model's state. */
  private serving = false;
  private closed = false;
  private timer?: NodeJS.Timeout;
  private isolation?: { dispose(): void };
  private lastHealthCheck = 0;
  /** One row of the first batch that ran: what the half-open probe sends. */
  private probeBody?: RunBody;

  constructor(
    readonly model: string,
    readonly config: BackendConfig,
    private readonly deps: RemoteDeps,
  ) {
    this.remoteModel = config.model ?? model;
    this.client = new V2Client(config.url, { connections: config.maxConcurrency, timeoutMs: config.timeoutMs });
    this.busy = new Array<boolean>(config.maxConcurrency).fill(false);
    this.breaker = circuitBreaker(
      handleWhen((e) => e instanceof RemoteUnavailableError),
      { halfOpenAfter: config.probeIntervalMs, breaker: new ConsecutiveBreaker(config.breakAfter) },
    );
    if (config.retries > 0) {
      this.retry = retry(handleWhen((e) => e instanceof RemoteUnavailableError && e.retryable), { maxAttempts: config.retries, backoff: new ConstantBackoff(20) });
    }
    this.breaker.onStateChange((state) => this.onCircuit(state));
    this.scheduler = new Scheduler(this, deps.inference, deps.onBatch, deps.logger);
  }

  private get where(): string {
    return `${this.config.url} (model "${this.remoteModel}"${this.config.version ? `, version ${this.config.version}` : ''})`;
  }

  /**
   * Boot: waits up to bootWaitMs for the remote model to be ready, then reads its metadata as the graph's
   * inputs and outputs (the loader checks them against the task, as it checks a local session's).
   */
  async connect(): Promise<LoadedGraph> {
    const until = Date.now() + this.config.bootWaitMs;
    let last = 'not ready';
    for (;;) {
      const ready = await this.client.modelReady(this.remoteModel, this.config.version).then(
        (ok) => ok || ((last = 'the server says the model is not ready'), false),
        (err: Error) => ((last = err.message), false),
      );
      if (ready) break;
      if (Date.now() >= until) throw new Error(`remote model at ${this.where} not ready after ${this.config.bootWaitMs} ms: ${last}`);
      await new Promise((r) => setTimeout(r, BOOT_POLL_MS));
    }
    const meta = await this.client.metadata(this.remoteModel, this.config.version);
    if (!Array.isArray(meta.inputs) || !Array.isArray(meta.outputs)) throw new Error(`model metadata from ${this.where} lacks "inputs" or "outputs"`);
    const info = (t: MetadataTensor): TensorInfo => ({ name: t.name, type: onnxTypeOf(t.datatype) ?? t.datatype, dims: t.shape });
    const inputs = meta.inputs.map(info);
    for (const t of inputs.filter((i) => ['input_ids', 'attention_mask', 'token_type_ids'].includes(i.name))) {
      if (!/^u?int(8|16|32|64)$/.test(t.type)) throw new Error(`remote input ${t.name} is ${t.type}; token ids are fed as INT64`);
      if (t.dims.length !== 2) throw new Error(`remote input ${t.name} has shape ${JSON.stringify(t.dims)}; the gateway feeds [batch, sequence]`);
      if (t.dims[0] !== -1) throw new Error(`remote input ${t.name} has shape ${JSON.stringify(t.dims)}: a fixed batch of ${t.dims[0]}; serve it with a dynamic batch axis (Triton: max_batch_size > 0)`);
    }
    this.remoteInputs = inputs.map((i) => i.name);
    const outputs = meta.outputs.map(info);
    return { inputNames: this.remoteInputs, outputNames: outputs.map((o) => o.name), inputs, outputs, rssAfter: [], platform: meta.platform };
  }

  /** After warm-up: the breaker now decides the model's state, and the remote's readiness is polled. */
  start(): void {
    this.serving = true;
    this.lastHealthCheck = Date.now();
    this.schedule();
  }

  // ---- Executor ----

  slots(): number[] {
    return this.busy.map((_, i) => i);
  }

  hasSlot(slot: number): boolean {
    return slot >= 0 && slot < this.busy.length;
  }

  idleSlots(): number[] {
    if (this.closed || (this.serving && this.breaker.state !== CircuitState.Closed)) return [];
    return this.slots().filter((s) => !this.busy[s]);
  }

  onIdle(listener: () => void): void {
    this.idleListeners.push(listener);
  }

  refusal(): GatewayError | undefined {
    if (!this.serving || this.breaker.state === CircuitState.Closed) return undefined;
    return this.degraded();
  }

  async runOn(slot: number, body: RunBody): Promise<RunResult> {
    if (!this.hasSlot(slot) || this.busy[slot]) throw new Error(`remote slot ${slot} of ${this.model} is not idle`);
    this.busy[slot] = true;
    const t0 = performance.now();
    try {
      const outputs = await this.breaker.execute(() => (this.retry ? this.retry.execute(() => this.send(body)) : this.send(body)));
      this.probeBody ??= firstRow(body);
      return { outputs, inferenceMs: performance.now() - t0 };
    } catch (err) {
      throw this.toRunError(err as Error);
    } finally {
      this.busy[slot] = false;
      setImmediate(() => this.notifyIdle());
    }
  }

  private notifyIdle(): void {
    for (const l of this.idleListeners) l();
  }

  /** One batch as one infer call; the first fetch pooled here as the local worker would pool it. */
  private async send(body: RunBody): Promise<Record<string, TensorOut>> {
    const shape = [body.batch, body.seq];
    const mask = maskOf(body.lengths, body.batch, body.seq);
    const inputs: InferInput[] = [
      { name: 'input_ids', shape, values: body.inputIds },
      { name: 'attention_mask', shape, values: mask },
    ];
    if (this.remoteInputs.includes('token_type_ids')) inputs.push({ name: 'token_type_ids', shape, values: body.zeroTypeIds ? new Int32Array(body.inputIds.length) : body.typeIds });
    const raw = await this.client.infer(this.remoteModel, this.config.version, inputs, body.fetches, this.config.binaryData);
    const outputs: Record<string, TensorOut> = {};
    for (const [k, name] of body.fetches.entries()) {
      const o = raw[name];
      if (o.dims[0] !== body.batch) throw new RemoteCallError(`output ${name} has shape ${JSON.stringify(o.dims)} for a batch of ${body.batch}`, 200);
      outputs[name] = k === 0 ? applyPost(o.data, o.dims, body.post, mask) : o;
    }
    return outputs;
  }

  private degraded(cause?: unknown): GatewayError {
    const after = Math.max(1, Math.ceil(this.config.probeIntervalMs / 1000));
    return new GatewayError('degraded', `model "${this.model}" is degraded: its inference server ${this.config.url} is not answering; retry after ${after} s`, { retryAfter: after, cause });
  }

  /**
   * The scheduler's error vocabulary: an open circuit is `degraded` (503); a remote that did not answer this
   * call is `inference_failed` (503, retryable); a remote that refused this input is a RunError (its rows are
   * retried one by one, then 500 model_error).
   */
  private toRunError(err: Error): Error {
    if (err instanceof BrokenCircuitError || err instanceof IsolatedCircuitError) return this.degraded(err);
    if (err instanceof RemoteUnavailableError) {
      if (this.breaker.state !== CircuitState.Closed) return this.degraded(err);
      return new GatewayError('inference_failed', `the inference server of model "${this.model}" did not answer (${err.message}); retry`, { retryAfter: 1, cause: err });
    }
    if (err instanceof RemoteCallError) return new RunError(err.message);
    return err;
  }

  // ---- circuit ----

  private onCircuit(state: CircuitState): void {
    if (!this.serving || this.closed) return;
    if (state === CircuitState.Closed) {
      this.deps.logger.info({ model: this.model, remote: this.config.url }, `${this.model}: remote inference server answers again; serving`);
      this.deps.setState('ready');
      this.notifyIdle();
    } else if (state === CircuitState.Open || state === CircuitState.Isolated) {
      const err = this.degraded();
      this.deps.logger.warn({ model: this.model, remote: this.config.url, err: (this.breaker.lastFailure as { error?: Error } | undefined)?.error?.message }, `${this.model}: remote inference server is not answering; degraded until a probe succeeds`);
      this.deps.setState('degraded');
      this.scheduler.failAll(err);
    }
  }

  private schedule(): void {
    if (this.closed) return;
    this.timer = setTimeout(() => void this.tick().finally(() => this.schedule()), this.config.probeIntervalMs);
    this.timer.unref();
  }

  /** Every probeIntervalMs: the half-open probe while the circuit is open; the readiness poll while closed. */
  private async tick(): Promise<void> {
    const state = this.breaker.state;
    if (state === CircuitState.Open) {
      // Through the breaker: once halfOpenAfter has passed this is the half-open trial; before, it is refused.
      await this.breaker.execute(() => this.probe()).catch(() => undefined);
    } else if (state === CircuitState.Isolated) {
      const ok = await this.probe().then(
        () => true,
        () => false,
      );
      if (ok && this.isolation) {
        const iso = this.isolation;
        this.isolation = undefined;
        iso.dispose();
      }
    } else if (state === CircuitState.Closed && Date.now() - this.lastHealthCheck >= this.config.healthIntervalMs) {
      this.lastHealthCheck = Date.now();
      const ready = await this.client.modelReady(this.remoteModel, this.config.version).catch(() => false);
      if (!ready && this.breaker.state === CircuitState.Closed && !this.closed) this.isolation = this.breaker.isolate();
    }
  }

  /** Ready, and one real infer of a single row; any failure counts as the remote's (so it never closes the circuit). */
  private async probe(): Promise<void> {
    try {
      if (!(await this.client.modelReady(this.remoteModel, this.config.version))) throw new RemoteUnavailableError(`model at ${this.where} is not ready`, false);
      if (this.probeBody) await this.send({ ...this.probeBody });
    } catch (err) {
      throw err instanceof RemoteUnavailableError ? err : new RemoteUnavailableError((err as Error).message, false, { cause: err });
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.scheduler.close();
    await this.client.close();
  }
}

/** The first row of a batch, as a one-row run body. */
function firstRow(body: RunBody): RunBody {
  const len = body.lengths[0];
  return { ...body, batch: 1, seq: len, inputIds: body.inputIds.slice(0, len), typeIds: body.typeIds.slice(0, len), lengths: Int32Array.of(len) };
}
