/**
 * Extractive question answering, post-processing only: from per-window start/end logits to
 * answer spans in the caller's context string. Follows the Hugging Face `question-answering`
 * pipeline (softmax per window with non-context tokens masked, [CLS] kept for the null score,
 * p_start·p_end, SQuAD 2.0 "no answer", spans widened to whole words when word ids are given),
 * with deliberate differences that make it right where the pipeline is not: answers are
 * deduplicated across overlapping windows, every answer carries offsets that index the caller's
 * own (UTF-16) string, and a combining accent right after an answer stays with it.
 */
import { GatewayError } from '../errors.ts';
import { requireOutputs, type TaskSpec } from './spec.ts';

export interface QaWindow {
  /** Per token, [start, end) in the context's UTF-16 indices (meaningful for context tokens). */
  offsets: readonly (readonly [number, number])[];
  /** 1 marks context tokens; anything else (question, specials, padding) is never an answer. */
  sequenceIds: readonly (number | null)[];
  /** Optional word index per token: when present, answers widen to whole words (see alignToWords). */
  wordIds?: readonly (number | null)[];
  /** May be longer than `offsets` (a padded batch row); positions past it are ignored. */
  startLogits: ArrayLike<number>;
  endLogits: ArrayLike<number>;
}

export interface QaOptions {
  topK: number;
  /** Longest answer in tokens: end - start + 1 ≤ maxAnswerLength. */
  maxAnswerLength: number;
  /** SQuAD 2.0: rank the empty answer (scored from [CLS], position 0) with the others. */
  handleImpossibleAnswer: boolean;
  /**
   * Widen spans to whole pre-tokenizer words when windows carry `wordIds` (the pipeline's
   * `align_to_words`, default true there too): "##ing" alone is never an answer, and a combining
   * accent the normalizer dropped is not cut off.
   */
  alignToWords?: boolean;
  /**
   * With handleImpossibleAnswer: the empty answer goes first when null / (null + best span) exceeds this
   * (a threshold calibrated on a dev set, gateway.json "no_answer_threshold"). Unset: the pipeline's rule,
   * the null answer ranked by its own score (which is the same as a threshold of 0.5 for the first answer).
   */
  noAnswerThreshold?: number;
}

export interface QaAnswer {
  answer: string;
  score: number;
  start: number;
  end: number;
}

/** Which sequence id marks the context in a (question, context) encoding. */
const CONTEXT = 1;

/** Softmax over `indices` of `logits` only; everything else counts as masked (probability 0). */
function maskedSoftmax(logits: ArrayLike<number>, indices: readonly number[]): Float64Array {
  const out = new Float64Array(logits.length);
  let max = -Infinity;
  for (const i of indices) if (logits[i] > max) max = logits[i];
  let sum = 0;
  for (const i of indices) {
    const e = Math.exp(logits[i] - max);
    out[i] = e;
    sum += e;
  }
  for (const i of indices) out[i] /= sum;
  return out;
}

/** The k best distinct spans seen so far; a span seen again keeps its best score. */
class TopSpans {
  private readonly best = new Map<string, QaAnswer>();
  /** Scores at or below this cannot enter the top k any more. */
  floor = -Infinity;
  constructor(private readonly k: number) {}

  offer(a: QaAnswer): void {
    if (a.score <= this.floor) return;
    const key = `${a.start}:${a.end}`;
    const prev = this.best.get(key);
    if (prev && prev.score >= a.score) return;
    this.best.set(key, a);
    // Prune lazily so offers stay O(1) amortized even for long windows.
    if (this.best.size > 4 * this.k + 16) this.prune();
  }

  private prune(): void {
    const kept = this.sorted().slice(0, this.k);
    this.best.clear();
    for (const a of kept) this.best.set(`${a.start}:${a.end}`, a);
    if (kept.length === this.k) this.floor = kept[kept.length - 1].score;
  }

  sorted(): QaAnswer[] {
    return [...this.best.values()].sort((x, y) => y.score - x.score || x.start - y.start || x.end - y.end);
  }
}

function validate(opts: QaOptions): void {
  if (!Number.isInteger(opts.topK) || opts.topK < 1) {
    throw new GatewayError('invalid_request', `top_k must be an integer ≥ 1, got ${opts.topK}`);
  }
  if (!Number.isInteger(opts.maxAnswerLength) || opts.maxAnswerLength < 1) {
    throw new GatewayError('invalid_request', `max_answer_length must be an integer ≥ 1, got ${opts.maxAnswerLength}`);
  }
}

/** Per word id, the [start, end) span of that word's context tokens in one window. */
function wordSpans(w: QaWindow, contextIdx: readonly number[]): Map<number, [number, number]> {
  const spans = new Map<number, [number, number]>();
  for (const i of contextIdx) {
    const word = w.wordIds![i];
    if (word === null || word === undefined) continue;
    const [a, b] = w.offsets[i];
    const span = spans.get(word);
    if (!span) spans.set(word, [a, b]);
    else {
      if (a < span[0]) span[0] = a;
      if (b > span[1]) span[1] = b;
    }
  }
  return spans;
}

/**
 * Ranked answers over all windows of one (question, context) pair. Every answer satisfies
 * `context.slice(start, end) === answer`; the null answer is `{ answer: "", start: 0, end: 0 }`.
 */
export function answerSpans(windows: readonly QaWindow[], context: string, opts: QaOptions): QaAnswer[] {
  validate(opts);
  const top = new TopSpans(opts.topK);
  let minNull = Infinity;

  for (const w of windows) {
    const n = Math.min(w.offsets.length, w.sequenceIds.length, w.startLogits.length, w.endLogits.length);
    const contextIdx: number[] = [];
    for (let i = 0; i < n; i++) if (w.sequenceIds[i] === CONTEXT) contextIdx.push(i);
    // [CLS] (position 0) stays in the softmax: its mass is the model's "no answer" vote.
    const softmaxIdx = contextIdx[0] === 0 ? contextIdx : [0, ...contextIdx];
    const pStart = maskedSoftmax(w.startLogits, softmaxIdx);
    const pEnd = maskedSoftmax(w.endLogits, softmaxIdx);
    if (contextIdx[0] !== 0) minNull = Math.min(minNull, pStart[0] * pEnd[0]);

    // Character edges per token, settled once per window rather than once per candidate pair.
    const words = opts.alignToWords !== false && w.wordIds !== undefined ? wordSpans(w, contextIdx) : null;
    const startChar = new Int32Array(n);
    const endChar = new Int32Array(n);
    for (const i of contextIdx) {
      let [start, end] = w.offsets[i];
      const word = words?.get(w.wordIds![i] ?? -1);
      if (word && word[0] < start) start = word[0];
      if (word && word[1] > end) end = word[1];
      startChar[i] = start;
      endChar[i] = extendOverMarks(context, end);
    }

    let maxEnd = 0;
    for (const i of contextIdx) if (pEnd[i] > maxEnd) maxEnd = pEnd[i];
    for (let a = 0; a < contextIdx.length; a++) {
      const s = contextIdx[a];
      // No span from here can beat the k-th best already kept.
      if (pStart[s] === 0 || pStart[s] * maxEnd <= top.floor) continue;
      for (let b = a; b < contextIdx.length && contextIdx[b] - s <= opts.maxAnswerLength - 1; b++) {
        const e = contextIdx[b];
        const score = pStart[s] * pEnd[e];
        if (score <= top.floor) continue;
        const start = startChar[s];
        const end = endChar[e];
        if (end <= start || start < 0 || end > context.length) continue;
        top.offer({ answer: '', score, start, end });
      }
    }
  }

  const withText = (list: QaAnswer[]) => list.slice(0, opts.topK).map((a) => ({ ...a, answer: context.slice(a.start, a.end) }));
  const canAbstain = opts.handleImpossibleAnswer && windows.length > 0 && Number.isFinite(minNull);
  if (canAbstain && opts.noAnswerThreshold === undefined) top.offer({ answer: '', score: minNull, start: 0, end: 0 });
  const spans = top.sorted();
  if (!canAbstain || opts.noAnswerThreshold === undefined) return withText(spans);
  const none: QaAnswer = { answer: '', score: minNull, start: 0, end: 0 };
  const best = spans[0]?.score ?? 0;
  if (minNull / (minNull + best) > opts.noAnswerThreshold) return withText([none, ...spans]);
  // Under the threshold the empty answer never comes first; below that it ranks by its score.
  const lower = spans.findIndex((a) => a.score < minNull);
  const at = Math.max(1, lower < 0 ? spans.length : lower);
  return withText([...spans.slice(0, at), none, ...spans.slice(at)]);
}

const MARK = /^\p{M}$/u;

/**
 * Normalizers that strip accents drop combining marks from every token, so a token ending in
 * "e" of a decomposed "é" would cut the accent off the answer. Marks right after the end belong
 * to the last character.
 */
function extendOverMarks(context: string, end: number): number {
  while (end < context.length) {
    // Every combining mark is at U+0300 or above: the common case needs no regular expression.
    if (context.charCodeAt(end) < 0x300) break;
    const cp = context.codePointAt(end)!;
    const ch = String.fromCodePoint(cp);
    if (!MARK.test(ch)) break;
    end += ch.length;
  }
  return end;
}

/**
 * True when the windows' context tokens, in order, are contiguous slices of the whole context's
 * tokens that start at the first, end at the last and leave no gap between consecutive windows.
 * `allContextOffsets` are the context-token offsets of the unwindowed encoding. Used to check
 * that no window scheme silently drops text.
 */
export function windowsCoverContext(
  windows: readonly Pick<QaWindow, 'offsets' | 'sequenceIds'>[],
  allContextOffsets: readonly (readonly [number, number])[],
): boolean {
  const same = (x: readonly [number, number], y: readonly [number, number]) => x[0] === y[0] && x[1] === y[1];
  let covered = 0;
  let prevStart = 0;
  for (const w of windows) {
    const ctx: (readonly [number, number])[] = [];
    for (let i = 0; i < w.offsets.length; i++) if (w.sequenceIds[i] === CONTEXT) ctx.push(w.offsets[i]);
    let at = -1;
    for (let j = prevStart; j <= covered && at < 0; j++) {
      if (j + ctx.length <= allContextOffsets.length && ctx.every((o, k) => same(o, allContextOffsets[j + k]))) at = j;
    }
    if (at < 0) return false;
    prevStart = at;
    covered = Math.max(covered, at + ctx.length);
  }
  return covered === allContextOffsets.length;
}

export const questionAnsweringTask: TaskSpec = {
  task: 'question-answering',
  reads: 'question-context',
  runSpec(_m, io) {
    requireOutputs('question-answering', io, ['start_logits', 'end_logits']);
    return { fetches: ['start_logits', 'end_logits'], sequenceOutputs: ['start_logits', 'end_logits'], post: 'none' };
  },
  check: () => undefined,
};
