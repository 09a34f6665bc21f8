/**
 * Sentence similarity post-processing: pooling token vectors into one sentence vector, L2
 * normalisation and cosine. Pure arithmetic on flat row-major tensors as ONNX Runtime returns them;
 * pooled results are one vector per row, all views of a single [batch, dim] buffer (so a worker
 * can transfer the whole batch as `rows[0].buffer`).
 */
import { GatewayError } from '../errors.ts';
import type { PostProcess, TaskSpec } from './spec.ts';

export type Pooling = 'mean' | 'cls' | 'max';

/** [batch, seq, dim] of a `last_hidden_state`-like tensor. */
export type HiddenDims = readonly [number, number, number];

function checkDims(hidden: ArrayLike<number>, dims: HiddenDims): void {
  const [batch, seq, dim] = dims;
  if (hidden.length !== batch * seq * dim) {
    throw new GatewayError('internal_error', `hidden state has ${hidden.length} values, expected ${batch}×${seq}×${dim}`);
  }
}

/**
 * Mean of the token vectors that the attention mask keeps. Padding must not count: a padded row
 * would otherwise average in vectors of [PAD] and score differently from the same sentence alone.
 * `attentionMask` is flat [batch * seq] (numbers or the BigInt64Array fed to ONNX Runtime).
 */
export function meanPool(hidden: ArrayLike<number>, dims: HiddenDims, attentionMask: ArrayLike<number | bigint>): Float32Array[] {
  checkDims(hidden, dims);
  const [batch, seq, dim] = dims;
  if (attentionMask.length !== batch * seq) {
    throw new GatewayError('internal_error', `attention mask has ${attentionMask.length} values, expected ${batch}×${seq}`);
  }
  const out = new Float32Array(batch * dim);
  const acc = new Float64Array(dim);
  for (let b = 0; b < batch; b++) {
    acc.fill(0);
    let kept = 0;
    for (let t = 0; t < seq; t++) {
      const m = Number(attentionMask[b * seq + t]);
      if (m === 0) continue;
      kept += m;
      const base = (b * seq + t) * dim;
      for (let d = 0; d < dim; d++) acc[d] += hidden[base + d] * m;
    }
    // sentence-transformers clamps the divisor at 1e-9: an all-padding row pools to zeros, not NaN.
    const denom = Math.max(kept, 1e-9);
    for (let d = 0; d < dim; d++) out[b * dim + d] = acc[d] / denom;
  }
  return rows(out, dim);
}

/** The first token's vector ([CLS]) of each row. */
export function clsPool(hidden: ArrayLike<number>, dims: HiddenDims): Float32Array[] {
  checkDims(hidden, dims);
  const [batch, seq, dim] = dims;
  const out = new Float32Array(batch * dim);
  for (let b = 0; b < batch; b++) {
    const base = b * seq * dim;
    for (let d = 0; d < dim; d++) out[b * dim + d] = hidden[base + d];
  }
  return rows(out, dim);
}

/** Per dimension, the largest value over the tokens the mask keeps (sentence-transformers' max pooling). */
export function maxPool(hidden: ArrayLike<number>, dims: HiddenDims, attentionMask: ArrayLike<number | bigint>): Float32Array[] {
  checkDims(hidden, dims);
  const [batch, seq, dim] = dims;
  const out = new Float32Array(batch * dim);
  for (let b = 0; b < batch; b++) {
    const row = out.subarray(b * dim, (b + 1) * dim);
    row.fill(-Infinity);
    let kept = 0;
    for (let t = 0; t < seq; t++) {
      if (Number(attentionMask[b * seq + t]) === 0) continue;
      kept++;
      const base = (b * seq + t) * dim;
      for (let d = 0; d < dim; d++) if (hidden[base + d] > row[d]) row[d] = hidden[base + d];
    }
    if (kept === 0) row.fill(0);
  }
  return rows(out, dim);
}

/** Row views of a flat [batch, dim] array (no copies). */
export function rows(flat: Float32Array, dim: number): Float32Array[] {
  const out: Float32Array[] = [];
  for (let b = 0; b * dim < flat.length; b++) out.push(flat.subarray(b * dim, (b + 1) * dim));
  return out;
}

/** Pooling the model declares (`gateway.json` `pooling`). */
export function pool(hidden: ArrayLike<number>, dims: HiddenDims, attentionMask: ArrayLike<number | bigint>, pooling: Pooling): Float32Array[] {
  switch (pooling) {
    case 'mean':
      return meanPool(hidden, dims, attentionMask);
    case 'cls':
      return clsPool(hidden, dims);
    case 'max':
      return maxPool(hidden, dims, attentionMask);
    default:
      throw new GatewayError('unprocessable_input', `unsupported pooling "${String(pooling)}"; valid: mean, cls, max`);
  }
}

/**
 * Scales `v` to unit length IN PLACE and returns it (so a row view of a batch normalises the batch
 * without copies). A zero vector stays zero: its cosine with anything is then 0, not NaN.
 */
export function l2Normalize<T extends Float32Array | Float64Array | number[]>(v: T): T {
  let sq = 0;
  for (let i = 0; i < v.length; i++) sq += v[i] * v[i];
  const norm = Math.max(Math.sqrt(sq), 1e-12);
  for (let i = 0; i < v.length; i++) v[i] /= norm;
  return v;
}

/**
 * Cosine similarity in [-1, 1]. Computed in full (not as a bare dot product) so callers may pass
 * unnormalised vectors; clamped because rounding can step just past ±1.
 */
export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) {
    throw new GatewayError('internal_error', `cosine of vectors of different sizes (${a.length} and ${b.length})`);
  }
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  if (na === 0 || nb === 0) return 0;
  return Math.min(1, Math.max(-1, dot / Math.sqrt(na * nb)));
}

/** `similar` in the API: at or above the model's threshold. */
export function isSimilar(score: number, threshold: number): boolean {
  return score >= threshold;
}

/** The post-processing step that pools token vectors as a model's `pooling` says. */
export const POOLING_POST: Record<Pooling, PostProcess> = { mean: 'mean-pool', cls: 'cls-pool', max: 'max-pool' };

/**
 * Sentence embeddings: a graph's own `sentence_embedding` (a sentence-transformers export that includes its
 * pooling, Dense and Normalize modules), else token vectors pooled as the model declares. Normalisation is
 * the service's (the model's Normalize module, or the caller's choice on TEI's /embed).
 */
export const similarityTask: TaskSpec = {
  task: 'sentence-similarity',
  reads: 'text',
  runSpec(m, io) {
    if (io.outputNames.includes('sentence_embedding')) return { fetches: ['sentence_embedding'], sequenceOutputs: [], post: 'none' };
    const tokens = ['last_hidden_state', 'token_embeddings'].find((n) => io.outputNames.includes(n));
    if (!tokens) throw new Error(`ONNX outputs ${JSON.stringify(io.outputNames)} lack sentence_embedding or last_hidden_state needed for sentence-similarity`);
    if (m.denseModule) throw new Error(`modules.json lists a Dense module (${m.denseModule}) that a ${tokens} output leaves out; export the graph with a sentence_embedding output`);
    if (!m.pooling) throw new Error('no pooling: set gateway.json "pooling" (mean, cls or max) or ship sentence-transformers\' 1_Pooling/config.json');
    return { fetches: [tokens], sequenceOutputs: [], post: POOLING_POST[m.pooling] };
  },
  check: () => undefined,
};
