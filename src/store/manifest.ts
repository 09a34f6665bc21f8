/** What a model folder declares about itself: gateway.json merged with the Hugging Face files (../shared/API.md, "Model artifacts"). */
import type { Task } from '../tasks/spec.ts';

export type { Task };
export type Pooling = 'mean' | 'cls' | 'max';

export interface ModelManifest {
  name: string;
  version: string;
  task: Task;
  /** Longest sequence, in tokens, the model may be fed (special tokens included): the window its own library uses. */
  maxLength: number;
  /** Class labels in output order (classification, essay bands, ranking heads with classes). */
  labels?: string[];
  output: 'softmax' | 'sigmoid' | 'identity';
  /** How token vectors become one sentence vector (sentence-similarity with `last_hidden_state`). */
  pooling?: Pooling;
  /** L2-normalise sentence vectors (sentence-transformers' Normalize module; the gateway's default without modules.json). */
  normalize: boolean;
  /** modules.json lists a Dense module: only a graph with `sentence_embedding` includes it. */
  denseModule?: string;
  /** Essay rubric: the score range and rounding step (e.g. 0.5). For bands, `bandScores` gives each band's score. */
  score?: { min: number; max: number; round?: number; bandScores?: number[] };
  /** Similarity: score at or above which a pair is `similar` (cosine, or the cross-encoder's own score). */
  threshold?: number;
  /**
   * Sentence-similarity models used for collection retrieval: the weight of BM25's list in hybrid retrieval's
   * reciprocal rank fusion (the model's list gets 1 - w; 0.5 is plain RRF), as calibrated for this model.
   */
  hybridKeywordWeight?: number;
  /** QA: with handle_impossible_answer, the empty answer wins when null / (null + best) exceeds this (0.5: the pipeline's rule). */
  noAnswerThreshold?: number;
  /** Ranking heads with classes: the label whose probability is the relevance. */
  positiveLabel?: string;
  /** config.json `type_vocab_size`: 1 means one token type, fed as zeros whatever the tokenizer says. */
  typeVocabSize?: number;
  /** config.json `vocab_size`: token ids at or above it are refused on /v2 (the graph's embedding table would fail on them). */
  vocabSize?: number;
  /** Token id of padding (config.json `pad_token_id`, else tokenizer.json's padding). */
  padId: number;
  description: string;
  /** Relative path of the ONNX graph inside the model folder; empty for a model served by a remote backend. */
  onnxPath: string;
  /** Absolute paths once unpacked. */
  dir: string;
  tokenizerPath: string;
}
