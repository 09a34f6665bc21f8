import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { clsPool, cosine, isSimilar, l2Normalize, meanPool, pool, rows } from '../../src/tasks/similarity.ts';
import { GatewayError } from '../../src/errors.ts';

// batch 2, seq 3, dim 2; row 0 has one padding token, row 1 none.
const hidden = Float32Array.from([1, 2, 3, 4, 100, 100, -1, 0, 0, 1, 2, 2]);
const dims = [2, 3, 2] as const;
const mask = [1, 1, 0, 1, 1, 1];

describe('pooling', () => {
  it('mean pooling ignores padding', () => {
    const [a, b] = meanPool(hidden, dims, mask);
    expect([...a]).toEqual([2, 3]);
    expect([...b]).toEqual([expect.closeTo(1 / 3, 6), 1]);
  });

  it('a padded row pools exactly like the same sentence alone', () => {
    const [padded] = meanPool(hidden, dims, mask);
    const [alone] = meanPool(hidden.subarray(0, 4), [1, 2, 2], [1, 1]);
    expect(padded).toEqual(alone);
  });

  it('accepts the BigInt64Array mask fed to ONNX Runtime', () => {
    expect(meanPool(hidden, dims, BigInt64Array.from(mask.map(BigInt)))).toEqual(meanPool(hidden, dims, mask));
  });

  it('an all-padding row pools to zeros, not NaN', () => {
    const [z] = meanPool(hidden, dims, [0, 0, 0, 1, 1, 1]);
    expect([...z]).toEqual([0, 0]);
  });

  it('cls pooling takes the first token of each row', () => {
    expect(clsPool(hidden, dims).map((r) => [...r])).toEqual([[1, 2], [-1, 0]]);
    expect(pool(hidden, dims, mask, 'cls')).toEqual(clsPool(hidden, dims));
    expect(pool(hidden, dims, mask, 'mean')).toEqual(meanPool(hidden, dims, mask));
  });

  it('rows are views of one buffer, so a worker can transfer the batch at once', () => {
    const pooled = meanPool(hidden, dims, mask);
    expect(pooled[0].buffer).toBe(pooled[1].buffer);
    expect(pooled[0].buffer.byteLength).toBe(2 * 2 * 4);
    expect(rows(Float32Array.from([1, 2, 3, 4, 5, 6]), 3).map((r) => [...r])).toEqual([[1, 2, 3], [4, 5, 6]]);
  });

  it.each([
    ['hidden size', () => meanPool(hidden, [2, 3, 3], mask)],
    ['mask size', () => meanPool(hidden, dims, [1, 1])],
    ['pooling', () => pool(hidden, dims, mask, 'weightedmean' as 'mean')],
  ])('rejects a wrong %s with a GatewayError', (_name, call) => {
    expect(call).toThrow(GatewayError);
  });
});

describe('l2Normalize / cosine / isSimilar', () => {
  it('normalizes in place and returns the same array', () => {
    const v = Float32Array.from([3, 4]);
    expect(l2Normalize(v)).toBe(v);
    expect([...v]).toEqual([expect.closeTo(0.6, 6), expect.closeTo(0.8, 6)]);
    const batch = Float32Array.from([3, 4, 0, 2]);
    for (const r of rows(batch, 2)) l2Normalize(r);
    expect([...batch]).toEqual([expect.closeTo(0.6, 6), expect.closeTo(0.8, 6), 0, 1]);
    expect(l2Normalize([0, 0])).toEqual([0, 0]);
  });

  it.each([
    [[1, 0], [1, 0], 1],
    [[1, 0], [0, 1], 0],
    [[1, 0], [-1, 0], -1],
    [[1, 1], [2, 2], 1],
    [[1, 2, 3], [-3, 0, 1], 0],
    [[0, 0], [1, 1], 0],
  ])('cosine(%j, %j) = %d', (a, b, expected) => {
    expect(cosine(a, b)).toBeCloseTo(expected, 12);
  });

  it('rejects vectors of different sizes', () => {
    expect(() => cosine([1], [1, 2])).toThrow(GatewayError);
  });

  it('property: cosine stays in [-1, 1], is symmetric and scale-free', () => {
    const vec = fc.array(fc.float({ min: -1e3, max: 1e3, noNaN: true }), { minLength: 4, maxLength: 4 });
    fc.assert(
      fc.property(vec, vec, fc.float({ min: Math.fround(0.01), max: 100, noNaN: true }), (a, b, k) => {
        const c = cosine(a, b);
        expect(c).toBeGreaterThanOrEqual(-1);
        expect(c).toBeLessThanOrEqual(1);
        expect(cosine(b, a)).toBeCloseTo(c, 9);
        expect(cosine(a.map((x) => x * k), b)).toBeCloseTo(c, 6);
        expect(cosine(l2Normalize(Float64Array.from(a)), l2Normalize(Float64Array.from(b)))).toBeCloseTo(c, 6);
      }),
    );
  });

  it.each([
    [0.8, 0.8, true],
    [0.79, 0.8, false],
    [-1, -1, true],
    [1, 0.5, true],
  ])('isSimilar(%d, %d) = %s', (score, threshold, expected) => {
    expect(isSimilar(score, threshold)).toBe(expected);
  });
});
