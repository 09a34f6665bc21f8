/** Messages between the pool (main thread) and an inference worker. Buffers are transferred, never copied. */
import type { PostProcess } from '../tasks/catalog.ts';

export type { PostProcess };

export interface LoadRequest {
  type: 'load';
  id: number;
  model: string;
  onnxPath: string;
}

export interface RunRequest {
  type: 'run';
  id: number;
  model: string;
  batch: number;
  seq: number;
  /** Row-major [batch, seq], padded with the model's pad id. */
  inputIds: Int32Array;
  typeIds: Int32Array;
  /** Real length of each row; the attention mask is derived from it. */
  lengths: Int32Array;
  fetches: string[];
  /** Applied to the first fetch inside the worker so only [batch, hidden] crosses back. */
  post: PostProcess;
  /** Feed token_type_ids as zeros (a model with one token type), whatever typeIds hold. */
  zeroTypeIds: boolean;
}

export interface UnloadRequest {
  type: 'unload';
  id: number;
  model: string;
}

/**
 * Fault hook for tests: the worker's next run fails the way a broken native call would (dies, throws), or
 * holds its thread for `ms` first, as a very long native call would.
 */
export interface CrashRequest {
  type: 'crash';
  id: number;
  how: 'exit' | 'throw' | 'stall';
  ms?: number;
}

export type WorkerRequest = LoadRequest | RunRequest | UnloadRequest | CrashRequest;

export interface TensorOut {
  data: Float32Array;
  dims: number[];
}

/** Input or output of a loaded graph: name, element type and dims (strings for dynamic axes). */
export interface TensorInfo {
  name: string;
  type: string;
  dims: (number | string)[];
}

export type WorkerResponse =
  | { type: 'loaded'; id: number; inputNames: string[]; outputNames: string[]; inputs: TensorInfo[]; outputs: TensorInfo[]; rssBytes: number }
  | { type: 'ran'; id: number; outputs: Record<string, TensorOut>; inferenceMs: number }
  | { type: 'done'; id: number; rssBytes?: number }
  | { type: 'error'; id: number; message: string };
