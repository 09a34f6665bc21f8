import { Worker } from 'node:worker_threads';

const ENTRY = new URL('./ceiling-worker-entry.mjs', import.meta.url);

export interface CeilingResult {
  batch: number;
  items_per_s: number;
  raw_items_per_s: number;
  /** One item alone, tokenized and run at batch 1 on one thread: the least concurrency 1 can take. */
  single_p50_ms: number;
  single_p99_ms: number;
}

/** Items/s of `threads` threads each running its share at `batch`, with tokenization (or without: raw). */
async function measure(opts: { onnx: string; tokenizer: string; maxLength: number; kind: 'single' | 'pair' | 'windows'; items: { a: string; b?: string }[]; batch: number; tokenize: boolean; threads: number }): Promise<{ itemsPerS: number; callMs: number[] }> {
  const share = Math.ceil(opts.items.length / opts.threads);
  const workers = Array.from({ length: opts.threads }, (_, i) => new Worker(ENTRY, { workerData: { ...opts, items: opts.items.slice(i * share, (i + 1) * share) } }));
  // Session creation and tokenizer loading are paid once at boot in the gateway: start the clock after.
  await Promise.all(workers.map((w) => new Promise((resolve, reject) => (w.once('message', resolve), w.once('error', reject)))));
  const done = workers.map((w) => new Promise<{ ms: number; callMs: number[] }>((resolve, reject) => (w.once('message', resolve), w.once('error', reject))));
  for (const w of workers) w.postMessage('go');
  const results = await Promise.all(done);
  await Promise.all(workers.map((w) => w.terminate()));
  return { itemsPerS: (opts.items.length / Math.max(...results.map((r) => r.ms))) * 1000, callMs: results.flatMap((r) => r.callMs) };
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return Number(s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))].toFixed(2));
};

/**
 * The ceiling: the same work in-process, no HTTP, no queue, both cores (two threads, one session each,
 * intra-op 1), at its best batch size; and raw ONNX Runtime alone (pre-tokenized) beside it.
 */
export async function ceiling(opts: { onnx: string; tokenizer: string; maxLength: number; kind: 'single' | 'pair' | 'windows'; items: { a: string; b?: string }[]; batches: number[] }): Promise<CeilingResult & { by_batch: Record<number, { items_per_s: number; raw_items_per_s: number }> }> {
  // Single-item latency (one thread, batch 1, tokenization included): what concurrency 1 could cost at best.
  const single = await measure({ onnx: opts.onnx, tokenizer: opts.tokenizer, maxLength: opts.maxLength, kind: opts.kind, threads: 1, items: opts.items.slice(0, 200), batch: 1, tokenize: true });
  const byBatch: Record<number, { items_per_s: number; raw_items_per_s: number }> = {};
  const base = { onnx: opts.onnx, tokenizer: opts.tokenizer, maxLength: opts.maxLength, kind: opts.kind, threads: 2 };
  for (const batch of opts.batches) {
    const withTok = await measure({ ...base, items: opts.items, batch, tokenize: true });
    const raw = await measure({ ...base, items: opts.items, batch, tokenize: false });
    byBatch[batch] = { items_per_s: Math.round(withTok.itemsPerS), raw_items_per_s: Math.round(raw.itemsPerS) };
  }
  const best = Object.entries(byBatch).sort((a, b) => b[1].items_per_s - a[1].items_per_s)[0];
  return { batch: Number(best[0]), items_per_s: best[1].items_per_s, raw_items_per_s: Math.max(...Object.values(byBatch).map((x) => x.raw_items_per_s)), single_p50_ms: pct(single.callMs, 50), single_p99_ms: pct(single.callMs, 99), by_batch: byBatch };
}
