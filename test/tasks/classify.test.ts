import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { classifyBatch, classifyLogits, sigmoid, softmax } from '../../src/tasks/classify.ts';
import { GatewayError } from '../../src/errors.ts';

const labels = ['games', 'net', 'science'];

describe('classifyLogits', () => {
  it('softmax: scores sum to 1, sorted best first, label is the best', () => {
    const p = classifyLogits([1, 3, 2], { labels, output: 'softmax' });
    expect(p.labels.map((l) => l.label)).toEqual(['net', 'science', 'games']);
    expect(p.labels.reduce((s, l) => s + l.score, 0)).toBeCloseTo(1, 12);
    expect(p).toMatchObject({ label: 'net', score: p.labels[0].score });
    const e = [Math.exp(1), Math.exp(3), Math.exp(2)];
    expect(p.score).toBeCloseTo(e[1] / (e[0] + e[1] + e[2]), 12);
  });

  it('sigmoid (multi-label): each label independent, scores need not sum to 1', () => {
    const p = classifyLogits([2, 2, -1], { labels, output: 'sigmoid' });
    expect(p.labels.map((l) => l.score)).toEqual([sigmoid(2), sigmoid(2), sigmoid(-1)]);
    // Ties keep the model's label order.
    expect(p.labels.map((l) => l.label)).toEqual(['games', 'net', 'science']);
    expect(p.labels.reduce((s, l) => s + l.score, 0)).toBeGreaterThan(1.5);
  });

  it.each([
    [undefined, 3],
    [1, 1],
    [2, 2],
    [10, 3],
  ])('top_k %s gives %i labels', (topK, n) => {
    expect(classifyLogits([1, 3, 2], { labels, output: 'softmax', topK }).labels).toHaveLength(n);
  });

  it('a one-logit head is read with a sigmoid, never a softmax of 1.0', () => {
    const p = classifyLogits([-2], { labels: ['positive'], output: 'softmax' });
    expect(p.score).toBeCloseTo(sigmoid(-2), 12);
    expect(p.score).toBeLessThan(0.2);
  });

  it('names labels LABEL_i when the model declares none', () => {
    expect(classifyLogits([0, 1], { output: 'softmax' }).label).toBe('LABEL_1');
  });

  it.each([
    ['top_k 0', { labels, output: 'softmax' as const, topK: 0 }, 'invalid_request'],
    ['top_k fractional', { labels, output: 'softmax' as const, topK: 1.5 }, 'invalid_request'],
    ['identity output', { labels, output: 'identity' as const }, 'unprocessable_input'],
    ['label count mismatch', { labels: ['a', 'b'], output: 'softmax' as const }, 'internal_error'],
  ])('rejects %s', (_name, opts, code) => {
    try {
      classifyLogits([1, 2, 3], opts);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(GatewayError);
      expect((err as GatewayError).code).toBe(code);
    }
  });
});

describe('classifyBatch', () => {
  it('splits a [batch, labels] tensor into predictions in input order', () => {
    const out = classifyBatch(Float32Array.from([0, 5, 0, 9, 0, 0]), [2, 3], { labels, output: 'softmax', topK: 1 });
    expect(out.map((p) => p.label)).toEqual(['net', 'games']);
    expect(() => classifyBatch(Float32Array.from([1, 2]), [2, 3], { labels, output: 'softmax' })).toThrow(GatewayError);
  });
});

describe('softmax / sigmoid', () => {
  it('do not overflow on large logits', () => {
    expect([...softmax([1000, 1000])]).toEqual([0.5, 0.5]);
    expect(sigmoid(1000)).toBe(1);
    expect(sigmoid(-1000)).toBe(0);
    expect(sigmoid(0)).toBe(0.5);
  });

  it('property: softmax is a distribution that preserves order and ignores shifts', () => {
    fc.assert(
      fc.property(fc.array(fc.float({ min: -50, max: 50, noNaN: true }), { minLength: 1, maxLength: 8 }), fc.float({ min: -100, max: 100, noNaN: true }), (xs, shift) => {
        const p = softmax(xs);
        expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 9);
        const q = softmax(xs.map((x) => x + shift));
        p.forEach((v, i) => expect(q[i]).toBeCloseTo(v, 6));
        for (let i = 0; i < xs.length; i++) for (let j = 0; j < xs.length; j++) if (xs[i] > xs[j]) expect(p[i]).toBeGreaterThanOrEqual(p[j]);
      }),
    );
  });
});
