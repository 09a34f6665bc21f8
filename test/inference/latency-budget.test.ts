import { describe, expect, it } from 'vitest';
import { latencyBudget } from '../../src/inference/latency-budget.ts';

// A model costing 0.5 ms per call plus 0.01 ms per token, timed exactly.
const exact = [64, 256, 1024, 2048].map((tokens) => ({ tokens, ms: 0.5 + 0.01 * tokens }));

describe('latencyBudget', () => {
  it('recovers the fixed and per-token cost of exact timings and fills the target with tokens', () => {
    const b = latencyBudget(exact, 20.5, 128);
    expect(b.fixedMs).toBeCloseTo(0.5, 9);
    expect(b.msPerToken).toBeCloseTo(0.01, 9);
    expect(b.batchTokens).toBe(2000);
  });

  it('gives a larger budget for a larger target, and a cheaper model a larger budget for the same target', () => {
    expect(latencyBudget(exact, 40, 128).batchTokens).toBeGreaterThan(latencyBudget(exact, 5, 128).batchTokens);
    const cheaper = exact.map((p) => ({ tokens: p.tokens, ms: 0.5 + 0.002 * p.tokens }));
    expect(latencyBudget(cheaper, 10, 128).batchTokens).toBeGreaterThan(latencyBudget(exact, 10, 128).batchTokens);
  });

  it('never goes below one full-length row nor above the cap', () => {
    expect(latencyBudget(exact, 0.1, 256).batchTokens).toBe(256);
    expect(latencyBudget(exact, 1e9, 256, 4096).batchTokens).toBe(4096);
  });

  it('fits through noise: the least-squares line, not the last point', () => {
    const noisy = exact.map((p, i) => ({ tokens: p.tokens, ms: p.ms + (i % 2 ? 0.3 : -0.3) }));
    const b = latencyBudget(noisy, 20.5, 128);
    expect(b.msPerToken).toBeGreaterThan(0.009);
    expect(b.msPerToken).toBeLessThan(0.011);
    expect(b.batchTokens).toBeGreaterThan(1800);
    expect(b.batchTokens).toBeLessThan(2200);
  });

  it('treats a flat or falling fit (noise on tiny batches) as a tiny per-token cost, not a negative one', () => {
    const falling = [
      { tokens: 64, ms: 2 },
      { tokens: 2048, ms: 1 },
    ];
    const b = latencyBudget(falling, 10, 128, 8192);
    expect(b.msPerToken).toBeGreaterThan(0);
    expect(b.batchTokens).toBe(8192);
  });

  it('refuses fewer than two points', () => {
    expect(() => latencyBudget([{ tokens: 64, ms: 1 }], 10, 128)).toThrow(/two timed batches/);
  });
});
