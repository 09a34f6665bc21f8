/**
 * The one table of tasks, as transformers.js's SUPPORTED_TASKS: each task module says what it needs from a
 * model (what it reads, which ONNX outputs, pooling) and checks a manifest at boot; this file only lists
 * them. Adding a task is one module plus its routes. Pure: no HTTP, no ONNX Runtime.
 */
import type { Task, TaskSpec } from './spec.ts';
import { classificationTask } from './classify.ts';
import { essayTask } from './essay.ts';
import { questionAnsweringTask } from './qa.ts';
import { rankingTask } from './ranking.ts';
import { similarityTask } from './similarity.ts';

export type { Task, TaskSpec, RunSpec, PostProcess, GraphIo } from './spec.ts';

export const TASKS: Record<Task, TaskSpec> = {
  'question-answering': questionAnsweringTask,
  'sentence-similarity': similarityTask,
  'essay-scoring': essayTask,
  'text-classification': classificationTask,
  'text-ranking': rankingTask,
};

export const TASK_NAMES = Object.keys(TASKS) as Task[];
