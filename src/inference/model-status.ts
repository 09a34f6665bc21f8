/** What /v1/models says about each model. */
import type { Task } from '../tasks/catalog.ts';

/**
 * `available`: a lazy model not loaded (its first request loads it); `draining`: removed, unloading once its requests
 * finish; `degraded`: loaded and warmed, but its remote inference server stopped answering (requests get 503 until it is back).
 */
export type ModelState = 'pending' | 'available' | 'downloading' | 'verifying' | 'unpacking' | 'loading' | 'warming' | 'ready' | 'degraded' | 'failed' | 'draining';

export interface Warmup {
  shapes: { batch: number; seq: number; ms: number }[];
  batch_invariance_max_diff?: number;
  /** With inference.latencyTargetMs: the fitted cost of a batch and the token budget derived from it. */
  tuned?: { target_ms: number; fixed_ms: number; ms_per_1k_tokens: number; batch_tokens: number };
}

/** A replacement in progress, or the last one that failed (the serving version stays meanwhile). */
export interface UpdateStatus {
  state: ModelState;
  source: string;
  started_at: string;
  finished_at?: string;
  /** The new version, once its manifest is read. */
  version?: string;
  error?: string;
  failed_step?: string;
  timings: Record<string, number>;
}

export interface ModelStatus {
  name: string;
  source: string;
  required: boolean;
  default: boolean;
  load: 'eager' | 'lazy';
  state: ModelState;
  error?: string;
  /** The boot step that failed. */
  failed_step?: string;
  sha256?: string;
  /** manifest version + content digest: what answers report as `model_version`. */
  version?: string;
  task?: Task;
  description?: string;
  labels?: string[];
  max_length?: number;
  score?: { min: number; max: number; round?: number };
  threshold?: number;
  /** Where the graph runs when it is not in this process: a remote Open Inference Protocol server. */
  backend?: { kind: 'kserve-v2'; url: string; model: string; version?: string };
  /** Milliseconds each boot step took. */
  timings: Record<string, number>;
  warmup?: Warmup;
  /** Growth of the process RSS while this version loaded and warmed up (all workers together). */
  memory_mb?: number;
  /** Requests holding the serving version now. */
  in_flight?: number;
  last_used?: string;
  update?: UpdateStatus;
}
