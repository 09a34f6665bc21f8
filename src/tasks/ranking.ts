/**
 * Text ranking (cross-encoders): a (query, passage) pair in, one relevance score out, as sentence-transformers'
 * CrossEncoder and TEI's rerankers read it. The head is `logits [batch, 1]` read through a sigmoid (or raw,
 * with `output: identity`), or two or more classes with the positive one named (`positive_label`), read
 * through a softmax.
 */
import { GatewayError } from '../errors.ts';
import type { ModelManifest } from '../store/manifest.ts';
import { logitsSpec, type TaskSpec } from './spec.ts';
import { sigmoid, softmax } from './classify.ts';

export type RankingHead = Pick<ModelManifest, 'output' | 'labels' | 'positiveLabel'>;

/** One pair's relevance from its logits row. `raw` skips the activation (TEI's `raw_scores`). */
export function relevance(logits: ArrayLike<number>, head: RankingHead, opts: { raw?: boolean } = {}): number {
  if (logits.length === 1) {
    return opts.raw || head.output === 'identity' ? logits[0] : sigmoid(logits[0]);
  }
  const at = head.labels && head.positiveLabel !== undefined ? head.labels.indexOf(head.positiveLabel) : -1;
  if (at < 0 || at >= logits.length) throw new GatewayError('internal_error', `ranking head has ${logits.length} logits and no positive label among them`);
  return opts.raw || head.output === 'identity' ? logits[at] : softmax(logits)[at];
}

export interface Ranked {
  index: number;
  score: number;
}

/** Indices of `scores`, best first (ties keep input order), the first `topN` only when given. */
export function rankScores(scores: readonly number[], topN?: number): Ranked[] {
  return scores
    .map((score, index) => ({ index, score }))
    .sort((a, b) => b.score - a.score || a.index - b.index)
    .slice(0, topN ?? scores.length);
}

export const rankingTask: TaskSpec = {
  task: 'text-ranking',
  reads: 'pair',
  runSpec: (_m, io) => logitsSpec('text-ranking', io),
  check(m) {
    if (m.output === 'sigmoid' || m.output === 'identity') return undefined;
    if (m.output === 'softmax') {
      if (!m.labels || m.labels.length < 2) return 'a softmax ranking head needs two or more labels (config.json "id2label" or gateway.json "labels")';
      if (m.positiveLabel === undefined) return `a ranking head with classes ${JSON.stringify(m.labels)} needs gateway.json "positive_label" naming the relevant one`;
      if (!m.labels.includes(m.positiveLabel)) return `gateway.json "positive_label" ${JSON.stringify(m.positiveLabel)} is not one of the labels ${JSON.stringify(m.labels)}`;
      return undefined;
    }
    return `output "${m.output}" cannot rank; expected sigmoid, identity or softmax`;
  },
  checkRowWidth(m, width) {
    if (width === 1) return m.output === 'softmax' ? 'the graph gives one logit per pair, but gateway.json "output" is softmax (use sigmoid or identity)' : undefined;
    if (m.output !== 'softmax') return `the graph gives ${width} logits per pair; a ranking model with more than one needs "output": "softmax" and "positive_label"`;
    if (m.labels && m.labels.length !== width) return `the graph gives ${width} logits per pair but the model declares ${m.labels.length} labels`;
    return undefined;
  },
};
