/**
 * What a task module declares (see catalog.ts for the table of them): the types and two helpers every task
 * module shares. Pure: no HTTP, no ONNX Runtime.
 */
import type { ModelManifest } from '../store/manifest.ts';

export type Task = 'question-answering' | 'sentence-similarity' | 'essay-scoring' | 'text-classification' | 'text-ranking';

/** What the inference worker does to an output before it crosses back (pooling runs next to the session). */
export type PostProcess = 'none' | 'mean-pool' | 'cls-pool' | 'max-pool';

/** What one ONNX call fetches for a model and how its rows come back. */
export interface RunSpec {
  /** Outputs to fetch from the session. */
  fetches: string[];
  /** Outputs with a sequence axis ([batch, seq, …]): each row is cut to its own length. */
  sequenceOutputs: string[];
  /** Applied to the first fetch in the worker (pooling of `last_hidden_state`). */
  post: PostProcess;
}

/** The ONNX graph as the session reports it. */
export interface GraphIo {
  inputNames: readonly string[];
  outputNames: readonly string[];
}

export interface TaskSpec {
  task: Task;
  /**
   * What one item of the task feeds the model: one text; a pair of texts in the tokenizer's pair template
   * (cross-encoders); or a question with a context cut into overlapping windows.
   */
  reads: 'text' | 'pair' | 'question-context';
  /** The fetches for this graph; throws an Error that names the outputs it lacks. */
  runSpec(manifest: ModelManifest, io: GraphIo): RunSpec;
  /** Boot checks of a manifest against the task; a message naming the field, or undefined when it fits. */
  check(manifest: ModelManifest): string | undefined;
  /** After warm-up: checks the width of one row of the first fetch (e.g. logits per label). */
  checkRowWidth?(manifest: ModelManifest, width: number): string | undefined;
}

/** Names the outputs a graph lacks for a task; shared by the task modules. */
export function requireOutputs(task: Task, io: GraphIo, names: string[]): void {
  const missing = names.filter((n) => !io.outputNames.includes(n));
  if (missing.length) throw new Error(`ONNX outputs ${JSON.stringify(io.outputNames)} lack ${missing.join(', ')} needed for ${task}`);
}

/** The run spec of every task whose head is one `logits` row per item. */
export function logitsSpec(task: Task, io: GraphIo): RunSpec {
  requireOutputs(task, io, ['logits']);
  return { fetches: ['logits'], sequenceOutputs: [], post: 'none' };
}
