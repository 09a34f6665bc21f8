/**
 * Text classification post-processing: logits to labelled, sorted scores. The activation is what
 * the model declares, never guessed from the scores: softmax for one-of-N, sigmoid for
 * multi-label (each label independent), as the Hugging Face pipeline's `function_to_apply`.
 */
import { GatewayError } from '../errors.ts';
import { logitsSpec, type TaskSpec } from './spec.ts';

export interface LabelScore {
  label: string;
  score: number;
}

export interface Prediction {
  /** The best label and its score. */
  label: string;
  score: number;
  /** Top-k labels (all when top_k is omitted), best first. */
  labels: LabelScore[];
}

export interface ClassifyOptions {
  /** Labels in output order (the manifest's, from `id2label`); `LABEL_i` when the model names none. */
  labels?: readonly string[];
  output: 'softmax' | 'sigmoid' | 'identity';
  /** How many labels to return; all when omitted, capped at the number of labels. */
  topK?: number;
  /** The logits themselves as scores, no activation (TEI's raw_scores). */
  raw?: boolean;
}

export function softmax(logits: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  const out = Float64Array.from(logits, (x) => Math.exp(x - max));
  const sum = out.reduce((s, x) => s + x, 0);
  return out.map((x) => x / sum);
}

export function sigmoid(x: number): number {
  // Two branches so large |x| never overflows exp.
  return x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
}

function validate(opts: ClassifyOptions, width: number): void {
  if (opts.topK !== undefined && (!Number.isInteger(opts.topK) || opts.topK < 1)) {
    throw new GatewayError('invalid_request', `top_k must be an integer ≥ 1, got ${opts.topK}`);
  }
  if (opts.output !== 'softmax' && opts.output !== 'sigmoid') {
    throw new GatewayError('unprocessable_input', `a classifier's output must be softmax or sigmoid, this model declares "${opts.output}"`);
  }
  if (opts.labels && opts.labels.length !== width) {
    throw new GatewayError('internal_error', `model returned ${width} logits but declares ${opts.labels.length} labels`);
  }
}

/**
 * One input's logits to a prediction. A single-logit head is read with a sigmoid whatever it
 * declares (as the Hugging Face pipeline does): a softmax over one value is always 1.0.
 */
export function classifyLogits(logits: ArrayLike<number>, opts: ClassifyOptions): Prediction {
  validate(opts, logits.length);
  const useSigmoid = opts.output === 'sigmoid' || logits.length === 1;
  const scores = opts.raw ? Float64Array.from(logits) : useSigmoid ? Float64Array.from(logits, sigmoid) : softmax(logits);
  const labels = opts.labels ?? Array.from({ length: logits.length }, (_, i) => `LABEL_${i}`);
  const ranked = labels
    .map((label, i) => ({ label, score: scores[i], i }))
    .sort((a, b) => b.score - a.score || a.i - b.i)
    .slice(0, opts.topK ?? labels.length)
    .map(({ label, score }) => ({ label, score }));
  return { label: ranked[0].label, score: ranked[0].score, labels: ranked };
}

/** A [batch, numLabels] logits tensor, row-major, to one prediction per row in input order. */
export function classifyBatch(logits: ArrayLike<number>, dims: readonly [number, number], opts: ClassifyOptions): Prediction[] {
  const [batch, width] = dims;
  if (logits.length !== batch * width) {
    throw new GatewayError('internal_error', `logits have ${logits.length} values, expected ${batch}×${width}`);
  }
  const out: Prediction[] = [];
  for (let b = 0; b < batch; b++) {
    out.push(classifyLogits(Array.prototype.slice.call(logits, b * width, (b + 1) * width) as number[], opts));
  }
  return out;
}

export const classificationTask: TaskSpec = {
  task: 'text-classification',
  reads: 'text',
  runSpec: (_m, io) => logitsSpec('text-classification', io),
  check(m) {
    if (m.output !== 'softmax' && m.output !== 'sigmoid') return `a classifier's output must be softmax or sigmoid; gateway.json "output" is "${m.output}"`;
    return undefined;
  },
  checkRowWidth(m, width) {
    if (m.labels && m.labels.length !== width) return `the graph gives ${width} logits per text but the model declares ${m.labels.length} labels`;
    return undefined;
  },
};
