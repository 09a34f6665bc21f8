/**
 * One model from an unpacked folder to ready: manifest, task checks, tokenizer, a session in every worker,
 * input and output checks, warm-up, batch invariance, and its queue. Each step is timed and named, and a
 * failure after the session was created releases it again.
 */
import { join } from 'node:path';
import { BootError } from '../errors.ts';
import type { BackendConfig, GatewayConfig } from '../config/schema.ts';
import type { ModelManifest } from '../store/manifest.ts';
import { readManifest } from '../store/read-manifest.ts';
import { TASKS, type TaskSpec } from '../tasks/catalog.ts';
import { ModelBatcher, type BatchEvent, type ModelRunSpec, type Scheduler } from './batcher.ts';
import type { ModelState, Warmup } from './model-status.ts';
import type { LoadedGraph, PoolLogger, WorkerPool } from './pool.ts';
import { TextTokenizer } from './tokenizer.ts';
import { ModelTokenizer, type TokenizePool } from './tokenize-pool.ts';
import { warmUp } from './warmup.ts';
import { RemoteBackend } from './remote/backend.ts';
import { rawRunSpec } from './v2/model-io.ts';

/** A model that is ready to serve. */
export interface ServingModel {
  name: string;
  manifest: ModelManifest;
  task: TaskSpec;
  tokenizer: ModelTokenizer;
  batcher: ModelBatcher;
  spec: ModelRunSpec;
  /** The queue of /v2 infer: raw outputs (no pooling), on the same scheduler and workers as `batcher`. */
  rawBatcher: ModelBatcher;
  /** Set when the graph runs on a remote inference server: its executor, scheduler and circuit. */
  remote?: RemoteBackend;
  /** The graph's inputs and outputs as the session reports them. */
  graph: LoadedGraph;
  /** manifest version + the first 12 hex digits of the content digest: what answers report as the model's version. */
  version: string;
  /** Unique to this load in this process (name, version, load number): the prefix of every cache key. */
  cacheKey: string;
  /** Requests holding this version (see ModelRegistry.resolve's lease). */
  leases: number;
  /** Set when the version is retired: called as its last request finishes. */
  retired?: () => void;
}

const REQUIRED_INPUTS = ['input_ids', 'attention_mask'];
const OPTIONAL_INPUTS = ['token_type_ids'];

export interface LoadContext {
  pool: WorkerPool;
  scheduler: Scheduler;
  tokenizePool: TokenizePool;
  inference: GatewayConfig['inference'];
  logger: PoolLogger;
  /** Reports a state change of the model. */
  setState(state: ModelState): void;
  /** Runs one named step, timing it. */
  step<T>(name: string, fn: () => Promise<T>): Promise<T>;
  /** Called once the manifest is read, so the status shows the model's task and facts while it warms. */
  onManifest(manifest: ModelManifest): void;
  /** The model entry's remote backend: the graph runs there, on a scheduler of its own. */
  backend?: BackendConfig;
  /** Batch metrics of a remote model's own scheduler. */
  onBatch?: (e: BatchEvent) => void;
  /** Where a remote model's circuit reports degraded and ready once it serves; setState when absent. */
  remoteState?(state: ModelState): void;
}

export async function loadModel(name: string, dir: string, digest: string, generation: number, ctx: LoadContext): Promise<ServingModel & { warmup: Warmup }> {
  ctx.setState('loading');
  const manifest = await ctx.step('manifest', () => readManifest(dir, name, { graph: !ctx.backend }));
  const task = TASKS[manifest.task];
  const problem = task.check(manifest);
  if (problem) throw new BootError(name, 'loading', problem);
  ctx.onManifest(manifest);
  const tokenizer = await ctx.step('tokenizer', () => TextTokenizer.fromFile(manifest.tokenizerPath, { maxLength: manifest.maxLength }));
  const version = `${manifest.version}+${digest.slice(0, 12)}`;
  const session = `${name}#${generation}`;
  // A remote model: the graph is the remote's metadata, and batches run on its own scheduler (src/inference/remote/).
  const remote = ctx.backend && new RemoteBackend(name, ctx.backend, { inference: ctx.inference, logger: ctx.logger, onBatch: ctx.onBatch, setState: ctx.remoteState ?? ctx.setState });
  const scheduler = remote?.scheduler ?? ctx.scheduler;
  const release = () => (remote ? remote.close() : ctx.pool.unload(session));
  const graph = await (remote ? ctx.step('remote', () => remote.connect()) : ctx.step('session', () => ctx.pool.load(session, join(manifest.dir, manifest.onnxPath)))).catch(async (err: unknown) => {
    await remote?.close();
    throw err;
  });
  try {
    const missing = REQUIRED_INPUTS.filter((n) => !graph.inputNames.includes(n));
    if (missing.length) throw new BootError(name, 'loading', `ONNX inputs ${JSON.stringify(graph.inputNames)} lack ${missing.join(', ')}`);
    const unknown = graph.inputNames.filter((n) => !REQUIRED_INPUTS.includes(n) && !OPTIONAL_INPUTS.includes(n));
    if (unknown.length) throw new BootError(name, 'loading', `ONNX input ${unknown.join(', ')} is not one the gateway feeds (it feeds ${[...REQUIRED_INPUTS, ...OPTIONAL_INPUTS].join(', ')})`);
    let spec: ModelRunSpec;
    try {
      // A model with one token type (RoBERTa family, type_vocab_size 1) is fed zeros, as its library feeds it.
      spec = { ...task.runSpec(manifest, graph), session, padId: manifest.padId, zeroTypeIds: manifest.typeVocabSize === 1 };
    } catch (err) {
      throw new BootError(name, 'loading', (err as Error).message);
    }
    ctx.setState('warming');
    const { rowWidth, ...warmup } = await ctx.step('warmup', () => warmUp(name, manifest, task, spec, tokenizer, { ...ctx, scheduler })).catch((err: unknown) => {
      throw err instanceof BootError ? err : new BootError(name, 'warming', (err as Error).message, { cause: err });
    });
    const bad = task.checkRowWidth?.(manifest, rowWidth);
    if (bad) throw new BootError(name, 'warming', bad);
    // A latency target gives each model its own token budget, measured at warm-up; otherwise the config's.
    const budget = warmup.tuned?.batch_tokens ?? ctx.inference.maxBatchTokens;
    const batcher = new ModelBatcher(name, spec, { ...ctx.inference, maxBatchTokens: budget }, scheduler);
    const rawBatcher = new ModelBatcher(name, rawRunSpec(graph, spec), { ...ctx.inference, maxBatchTokens: budget }, scheduler);
    const modelTokenizer = new ModelTokenizer(tokenizer, manifest.tokenizerPath, ctx.tokenizePool);
    remote?.start();
    return { name, manifest, task, tokenizer: modelTokenizer, batcher, rawBatcher, remote, spec, graph, version, cacheKey: `${name}@${version}#${generation}`, leases: 0, warmup };
  } catch (err) {
    await release().catch(() => undefined);
    throw err;
  }
}
