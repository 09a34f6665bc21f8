/**
 * The official SQuAD evaluation (v1.1 / v2.0 `evaluate` script): answer normalisation, token F1, and EM / F1
 * of a prediction against several gold answers. One copy for every script and test that scores answers.
 */

const PUNCT = /[!"#$%&'()*+,\-./:;<=>?@[\\\]^_`{|}~]/g;

/** normalize_answer: lower case, no ASCII punctuation, no articles, single spaces. */
export function normalizeAnswer(s: string): string {
  return s.toLowerCase().replace(PUNCT, '').replace(/\b(a|an|the)\b/g, ' ').split(/\s+/).filter(Boolean).join(' ');
}

/** Token-overlap F1 of a prediction against one gold answer (both empty: 1). */
export function f1(prediction: string, gold: string): number {
  const p = normalizeAnswer(prediction).split(' ').filter(Boolean);
  const g = normalizeAnswer(gold).split(' ').filter(Boolean);
  if (p.length === 0 || g.length === 0) return Number(p.length === g.length);
  const counts = new Map<string, number>();
  for (const t of g) counts.set(t, (counts.get(t) ?? 0) + 1);
  let same = 0;
  for (const t of p) {
    const c = counts.get(t) ?? 0;
    if (c > 0) {
      same++;
      counts.set(t, c - 1);
    }
  }
  if (same === 0) return 0;
  const precision = same / p.length;
  const recall = same / g.length;
  return (2 * precision * recall) / (precision + recall);
}

/** [EM, F1] of a prediction, best over the gold answers (none = unanswerable: only the empty answer is right). */
export function emF1(prediction: string, golds: string[]): [number, number] {
  if (golds.length === 0) return [Number(prediction === ''), Number(prediction === '')];
  const p = normalizeAnswer(prediction);
  let em = 0;
  let best = 0;
  for (const g of golds) {
    em = Math.max(em, Number(p === normalizeAnswer(g)));
    best = Math.max(best, f1(prediction, g));
  }
  return [em, best];
}
