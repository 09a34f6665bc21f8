/** One timed warm-up batch: tokens fed (rows × sequence length) and the median milliseconds it took. */
export interface TimedBatch {
  tokens: number;
  ms: number;
}

export interface LatencyBudget {
  /** Fitted cost of a call whatever its size (ms). */
  fixedMs: number;
  /** Fitted cost of each token (ms). */
  msPerToken: number;
  /** Tokens a batch may hold to finish within the target, clamped to [minTokens, maxTokens]. */
  batchTokens: number;
}

/**
 * Least-squares fit of ms ≈ fixed + k·tokens over the timed batches, and the token budget a batch can
 * fill within `targetMs`. Pure, so the rule is tested without timing anything; the warm-up feeds it
 * the measured points.
 */
export function latencyBudget(points: TimedBatch[], targetMs: number, minTokens: number, maxTokens = 65_536): LatencyBudget {
  if (points.length < 2) throw new Error('latencyBudget needs at least two timed batches');
  const n = points.length;
  const mx = points.reduce((a, p) => a + p.tokens, 0) / n;
  const my = points.reduce((a, p) => a + p.ms, 0) / n;
  const sxx = points.reduce((a, p) => a + (p.tokens - mx) ** 2, 0);
  const sxy = points.reduce((a, p) => a + (p.tokens - mx) * (p.ms - my), 0);
  // A flat or falling fit (noise on tiny batches) would mean "tokens are free": floor the slope.
  const msPerToken = Math.max(1e-6, sxx > 0 ? sxy / sxx : 0);
  const fixedMs = Math.max(0, my - msPerToken * mx);
  const batchTokens = Math.round(Math.min(maxTokens, Math.max(minTokens, (targetMs - fixedMs) / msPerToken)));
  return { fixedMs, msPerToken, batchTokens };
}
