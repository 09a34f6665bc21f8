/** What a model zip declares about itself: gateway.json merged with config.json (../shared/API.md, "Model artifacts"). */
export type Task = 'question-answering' | 'sentence-similarity' | 'essay-scoring' | 'text-classification';
export const TASKS: readonly Task[] = ['question-answering', 'sentence-similarity', 'essay-scoring', 'text-classification'];

export interface ModelManifest {
  name: string;
  version: string;
  task: Task;
  /** Longest sequence, in tokens, the model may be fed (special tokens included). */
  maxLength: number;
  /** Class labels in output order (classification, essay bands). */
  labels?: string[];
  output: 'softmax' | 'sigmoid' | 'identity';
  pooling?: 'mean' | 'cls';
  /** Essay rubric: the score range and rounding step (e.g. 0.5). For bands, `bandScores` gives each band's score. */
  score?: { min: number; max: number; round?: number; bandScores?: number[] };
  /** Sentence similarity: cosine at or above which a pair is `similar`. */
  threshold?: number;
  description: string;
  /** Relative path of the ONNX graph inside the model folder. */
  onnxPath: string;
  /** Absolute paths once unpacked. */
  dir: string;
  tokenizerPath: string;
}
