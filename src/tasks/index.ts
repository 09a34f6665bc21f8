/** Pure per-task pre/post-processing: no HTTP, no ONNX. */
export * from './qa.ts';
export * from './similarity.ts';
export * from './classify.ts';
export * from './essay.ts';
