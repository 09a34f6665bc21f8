/**
 * Essay scoring post-processing: a model's raw head output to a score on the model's rubric.
 * The rule comes from the manifest (`gateway.json` `output`), never from the shape of the output:
 * reading a one-value regression head through a softmax is how a score of 1.0 for every essay
 * happens.
 *
 * - `identity`: one value, already in rubric units (a regression head).
 * - `softmax`: one logit per band; the score is the expected band score, so a model torn between
 *   bands 3 and 4 says 3.5 rather than flipping between them.
 * - `sigmoid`: one value in (0, 1) stretched over [min, max] (a head trained on normalised targets).
 *
 * Long essays are scored per window and the windows' raw scores averaged, weighted by how many
 * essay tokens each window holds, before the one final scaling and rounding.
 */
import { GatewayError } from '../errors.ts';
import type { ModelManifest } from '../store/manifest.ts';
import { sigmoid, softmax } from './classify.ts';
import { logitsSpec, type TaskSpec } from './spec.ts';

export interface Rubric {
  min: number;
  max: number;
  /** Rounding step on the rubric, counted from `min` (e.g. 0.5 for half points); none when omitted. */
  round?: number;
}

/** What essay post-processing needs from a manifest. */
export type EssayHead = Pick<ModelManifest, 'name' | 'output' | 'labels' | 'score'>;

/** A resolved head: checked once, so per-request code cannot meet a half-configured model. */
export interface ResolvedEssayHead {
  output: 'identity' | 'softmax' | 'sigmoid';
  rubric: Rubric;
  /** Softmax only: the score each band stands for, in output order. */
  bandScores?: number[];
}

export interface WindowScore {
  /** Raw score in rubric units, before clamping and rounding. */
  value: number;
  /** Softmax heads: probability of each band. */
  bandProbabilities?: number[];
}

export interface EssayScore {
  /** Clamped to the rubric and rounded to its step. */
  score: number;
  /** The unrounded, unclamped aggregate (useful for ranking and debugging). */
  raw: number;
  /** Number of windows the essay was read in. */
  windows: number;
  scale: { min: number; max: number };
  /** Softmax heads: token-weighted band probabilities over the whole essay. */
  bandProbabilities?: number[];
}

/**
 * Checks a manifest can score essays and settles the band scores: `score.bandScores` when given,
 * else the labels when they are all numbers ("1".."6"), else bands evenly spaced over [min, max].
 */
export function resolveEssayHead(head: EssayHead): ResolvedEssayHead {
  const fail = (why: string): never => {
    throw new GatewayError('unprocessable_input', `model "${head.name}" cannot score essays: ${why}`);
  };
  const s = head.score;
  if (!s) return fail('its gateway.json has no "score" rubric ({ min, max, round })');
  if (!Number.isFinite(s.min) || !Number.isFinite(s.max) || s.min >= s.max) fail(`rubric min ${s.min} must be below max ${s.max}`);
  if (s.round !== undefined && !(s.round > 0)) fail(`rubric round must be positive, got ${s.round}`);
  const rubric: Rubric = { min: s.min, max: s.max, round: s.round };

  if (head.output === 'identity' || head.output === 'sigmoid') return { output: head.output, rubric };
  if (head.output !== 'softmax') return fail(`unsupported output "${String(head.output)}"; valid: identity, softmax, sigmoid`);

  let bandScores = s.bandScores;
  if (!bandScores && head.labels && head.labels.length > 1 && head.labels.every((l) => l.trim() !== '' && Number.isFinite(Number(l)))) {
    bandScores = head.labels.map(Number);
  }
  if (!bandScores && head.labels && head.labels.length > 1) {
    const n = head.labels.length;
    bandScores = head.labels.map((_, i) => s.min + ((s.max - s.min) * i) / (n - 1));
  }
  if (!bandScores || bandScores.length < 2) return fail('a softmax head needs at least two bands (score.bandScores or labels)');
  if (head.labels && head.labels.length !== bandScores.length) {
    fail(`${head.labels.length} labels but ${bandScores.length} band scores`);
  }
  return { output: 'softmax', rubric, bandScores };
}

/** One window's raw output (one row of the head) to a raw score. */
export function windowScore(raw: ArrayLike<number>, head: ResolvedEssayHead): WindowScore {
  for (let i = 0; i < raw.length; i++) {
    if (!Number.isFinite(raw[i])) throw new GatewayError('internal_error', 'essay model returned a non-finite value');
  }
  const width = head.output === 'softmax' ? head.bandScores!.length : 1;
  if (raw.length !== width) {
    throw new GatewayError('internal_error', `essay model returned ${raw.length} values, its ${head.output} head expects ${width}`);
  }
  switch (head.output) {
    case 'identity':
      return { value: raw[0] };
    case 'sigmoid':
      return { value: head.rubric.min + sigmoid(raw[0]) * (head.rubric.max - head.rubric.min) };
    case 'softmax': {
      const p = Array.from(softmax(raw));
      return { value: p.reduce((acc, pi, i) => acc + pi * head.bandScores![i], 0), bandProbabilities: p };
    }
  }
}

/**
 * Token-weighted mean of window scores (and band probabilities). Weights are the essay tokens in
 * each window, so a short last window does not count as much as a full one.
 */
export function aggregateWindows(windows: readonly { score: WindowScore; tokens: number }[]): WindowScore & { windows: number } {
  if (windows.length === 0) throw new GatewayError('internal_error', 'no windows to aggregate');
  // A window with no essay tokens (an empty essay) still counts once rather than dividing by zero.
  const weights = windows.map((w) => Math.max(w.tokens, 0));
  const total = weights.reduce((a, b) => a + b, 0);
  const weight = (i: number) => (total > 0 ? weights[i] / total : 1 / windows.length);
  const value = windows.reduce((acc, w, i) => acc + w.score.value * weight(i), 0);
  const first = windows[0].score.bandProbabilities;
  const bandProbabilities = first
    ? first.map((_, b) => windows.reduce((acc, w, i) => acc + (w.score.bandProbabilities?.[b] ?? 0) * weight(i), 0))
    : undefined;
  return bandProbabilities ? { value, bandProbabilities, windows: windows.length } : { value, windows: windows.length };
}

/** Clamps to [min, max] and rounds to the rubric's step, counted from `min`. */
export function scaleToRubric(x: number, rubric: Rubric): number {
  if (!Number.isFinite(x)) throw new GatewayError('internal_error', `cannot scale a non-finite score (${x})`);
  let y = Math.min(rubric.max, Math.max(rubric.min, x));
  if (rubric.round) {
    y = rubric.min + Math.round((y - rubric.min) / rubric.round) * rubric.round;
    // A step that does not divide the range can round past max.
    if (y > rubric.max) y -= rubric.round;
    // Steps like 0.1 leave binary noise (2.3000000000000003); keep what the step can express.
    y = Number(y.toFixed(10));
  }
  return y;
}

/**
 * Whole pipeline for one essay: each window's head output with the number of essay tokens it
 * holds, to the rubric score.
 */
export function scoreEssay(windows: readonly { output: ArrayLike<number>; tokens: number }[], head: ResolvedEssayHead): EssayScore {
  const agg = aggregateWindows(windows.map((w) => ({ score: windowScore(w.output, head), tokens: w.tokens })));
  const out: EssayScore = {
    score: scaleToRubric(agg.value, head.rubric),
    raw: agg.value,
    windows: agg.windows,
    scale: { min: head.rubric.min, max: head.rubric.max },
  };
  if (agg.bandProbabilities) out.bandProbabilities = agg.bandProbabilities;
  return out;
}

export const essayTask: TaskSpec = {
  task: 'essay-scoring',
  reads: 'text',
  runSpec: (_m, io) => logitsSpec('essay-scoring', io),
  check(m) {
    try {
      resolveEssayHead(m);
      return undefined;
    } catch (err) {
      return (err as Error).message;
    }
  },
  checkRowWidth(m, width) {
    const head = resolveEssayHead(m);
    const want = head.output === 'softmax' ? (head.bandScores?.length ?? 0) : 1;
    return width === want ? undefined : `the graph gives ${width} values per essay; a ${head.output} rubric head needs ${want}`;
  },
};
