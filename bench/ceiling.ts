import { Worker } from 'node:worker_threads';

const ENTRY = new URL('./ceiling-worker-entry.mjs', import.meta.url);

export interface CeilingResult {
  batch: number;
  items_per_s: number;
  raw_items_per_s: number;
}

/** Items/s of `threads` threads each running its share at `batch`, with tokenization (or without: raw). */
async function measure(opts: { onnx: string; tokenizer: string; maxLength: number; kind: 'single' | 'pair'; items: { a: string; b?: string }[]; batch: number; tokenize: boolean; threads: number }): Promise<number> {
  const share = Math.ceil(opts.items.length / opts.threads);
  const workers = Array.from({ length: opts.threads }, (_, i) => new Worker(ENTRY, { workerData: { ...opts, items: opts.items.slice(i * share, (i + 1) * share) } }));
  // Session creation and tokenizer loading are paid once at boot in the gateway: start the clock after.
  await Promise.all(workers.map((w) => new Promise((resolve, reject) => (w.once('message', resolve), w.once('error', reject)))));
  const done = workers.map((w) => new Promise<{ ms: number }>((resolve, reject) => (w.once('message', resolve), w.once('error', reject))));
  for (const w of workers) w.postMessage('go');
  const results = await Promise.all(done);
  await Promise.all(workers.map((w) => w.terminate()));
  return (opts.items.length / Math.max(...results.map((r) => r.ms))) * 1000;
}

/**
 * The ceiling: the same work in-process, no HTTP, no queue, both cores (two threads, one session each,
 * intra-op 1), at its best batch size; and raw ONNX Runtime alone (pre-tokenized) beside it.
 */
export async function ceiling(opts: { onnx: string; tokenizer: string; maxLength: number; kind: 'single' | 'pair'; items: { a: string; b?: string }[]; batches: number[] }): Promise<CeilingResult & { by_batch: Record<number, { items_per_s: number; raw_items_per_s: number }> }> {
  const byBatch: Record<number, { items_per_s: number; raw_items_per_s: number }> = {};
  const base = { onnx: opts.onnx, tokenizer: opts.tokenizer, maxLength: opts.maxLength, kind: opts.kind, threads: 2 };
  for (const batch of opts.batches) {
    const withTok = await measure({ ...base, items: opts.items, batch, tokenize: true });
    const raw = await measure({ ...base, items: opts.items, batch, tokenize: false });
    byBatch[batch] = { items_per_s: Math.round(withTok), raw_items_per_s: Math.round(raw) };
  }
  const best = Object.entries(byBatch).sort((a, b) => b[1].items_per_s - a[1].items_per_s)[0];
  return { batch: Number(best[0]), items_per_s: best[1].items_per_s, raw_items_per_s: Math.max(...Object.values(byBatch).map((x) => x.raw_items_per_s)), by_batch: byBatch };
}
