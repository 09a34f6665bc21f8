/**
 * What happens to the first fetch of a run before it goes back to the batcher: pooling of token vectors into
 * one vector per row. The local worker applies it next to its session (so only [batch, hidden] crosses threads);
 * a remote backend applies it to the raw tensor the inference server returned. Same code, same numbers.
 */
import { clsPool, maxPool, meanPool } from '../tasks/similarity.ts';
import type { PostProcess } from '../tasks/catalog.ts';

/** The attention mask of a right-padded batch: 1 for the first lengths[b] positions of each row. */
export function maskOf(lengths: ArrayLike<number>, batch: number, seq: number): Int32Array {
  const mask = new Int32Array(batch * seq);
  for (let b = 0; b < batch; b++) mask.fill(1, b * seq, b * seq + lengths[b]);
  return mask;
}

/** Pools a [batch, seq, dim] tensor to [batch, dim] as `post` says; 'none' returns it as it is. */
export function applyPost(data: Float32Array, dims: readonly number[], post: PostProcess, mask: ArrayLike<number | bigint>): { data: Float32Array; dims: number[] } {
  if (post === 'none') return { data, dims: [...dims] };
  if (dims.length !== 3) throw new Error(`pooling needs a [batch, seq, dim] tensor; got dims ${JSON.stringify(dims)}`);
  const shape: [number, number, number] = [dims[0], dims[1], dims[2]];
  const pooled = post === 'mean-pool' ? meanPool(data, shape, mask) : post === 'max-pool' ? maxPool(data, shape, mask) : clsPool(data, shape);
  const out = new Float32Array(shape[0] * shape[2]);
  pooled.forEach((v, b) => out.set(v, b * shape[2]));
  return { data: out, dims: [shape[0], shape[2]] };
}
