/** Answers closer together than this belong to one burst (one batch's items written one after another). */
export const BURST_GAP_MS = 5;

/**
 * The steady-state window of a closed loop, from the answers' arrival times (ms, ascending): it starts at the
 * last answer of the burst holding answer number `skip` (1-based; the queue has filled by then) and ends at
 * the last answer of the burst holding the answer `count` after it, so that each end falls between batches,
 * never inside one. Returns the indices [start, end] (0-based, both the last answers of their bursts; the
 * window's answers are start + 1 … end), or undefined when there are too few answers.
 */
export function steadyWindow(times: number[], skip: number, count: number, gapMs = BURST_GAP_MS): [number, number] | undefined {
  const burstEnd = (i: number) => i === times.length - 1 || times[i + 1] - times[i] > gapMs;
  if (times.length < skip + count) return undefined;
  let s = Math.max(0, skip - 1);
  while (s < times.length - 1 && !burstEnd(s)) s++;
  let e = Math.min(times.length - 1, s + count);
  while (e < times.length - 1 && !burstEnd(e)) e++;
  return e > s ? [s, e] : undefined;
}
