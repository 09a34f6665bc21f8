/** Pure per-task pre/post-processing: no HTTP, no ONNX. The table of tasks is catalog.ts. */
export * from './qa.ts';
export * from './similarity.ts';
export * from './classify.ts';
export * from './essay.ts';
export * from './ranking.ts';
export * from './catalog.ts';
