import { Worker } from 'node:worker_threads';

const ENTRY = new URL('./ceiling-worker-entry.mjs', import.meta.url);

export interface CeilingResult {
  batch: number;
  items_per_s: number;
  raw_items_per_s: number;
  /** CPU of this process (all threads) per item at that batch, tokenization included: no HTTP, no queue. */
  cpu_ms_per_item: number;
  /** Threads (one ONNX Runtime session each, intra-op 1) the throughput was measured on. */
  threads: number;
  /** One item alone, tokenized and run at batch 1 on one thread: the least concurrency 1 can take. */
  single_p50_ms: number;
  single_p99_ms: number;
}

type Model = { onnx: string; tokenizer: string; maxLength: number; kind: 'single' | 'pair' | 'windows' };

/** Threads holding one session and tokenizer each, loaded once for every measurement of one ceiling. */
async function startWorkers(model: Model, n: number): Promise<Worker[]> {
  const workers = Array.from({ length: n }, () => new Worker(ENTRY, { workerData: model }));
  // Session creation and tokenizer loading are paid once at boot in the gateway: never on the clock.
  await Promise.all(workers.map((w) => reply(w)));
  return workers;
}

/** The worker's next message; the listener for the other outcome goes too (one per call would pile up on a worker). */
const reply = <T>(w: Worker) =>
  new Promise<T>((resolve, reject) => {
    const onMessage = (m: T) => {
      w.off('error', onError);
      resolve(m);
    };
    const onError = (err: Error) => {
      w.off('message', onMessage);
      reject(err);
    };
    w.once('message', onMessage);
    w.once('error', onError);
  });

/** Items/s of these threads each running its share at `batch`, with tokenization (or without: raw). */
async function measure(workers: Worker[], opts: { items: { a: string; b?: string }[]; batch: number; tokenize: boolean }): Promise<{ itemsPerS: number; cpuMsPerItem: number; callMs: number[] }> {
  const share = Math.ceil(opts.items.length / workers.length);
  const prepared = workers.map((w, i) => {
    const r = reply(w);
    w.postMessage({ items: opts.items.slice(i * share, (i + 1) * share), batch: opts.batch, tokenize: opts.tokenize });
    return r;
  });
  await Promise.all(prepared);
  const done = workers.map((w) => reply<{ ms: number; callMs: number[] }>(w));
  // This thread only waits meanwhile: the process's CPU is the workers' (tokenizer pool threads included).
  const cpu0 = process.cpuUsage();
  for (const w of workers) w.postMessage('go');
  const results = await Promise.all(done);
  const cpu = process.cpuUsage(cpu0);
  return { itemsPerS: (opts.items.length / Math.max(...results.map((r) => r.ms))) * 1000, cpuMsPerItem: (cpu.user + cpu.system) / 1000 / opts.items.length, callMs: results.flatMap((r) => r.callMs) };
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return Number(s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))].toFixed(2));
};

/** Items/s to three significant digits below 100 (the DistilBERT shape runs ~6/s: a whole number was ±8%), whole above. */
export const rate = (x: number) => (x >= 100 ? Math.round(x) : Number(x.toPrecision(3)));

type ByBatch = Record<number, { items_per_s: number; raw_items_per_s?: number; cpu_ms_per_item: number }>;

/**
 * The ceiling: the same work in-process, no HTTP, no queue, on `threads` threads (default two: both cores; one
 * session each, intra-op 1), at its best batch size; and raw ONNX Runtime alone (pre-tokenized) beside it
 * (`raw: false` skips it where tokenizing is a rounding error, as on the heavy shapes). `singleItems` items go
 * through the single-item latency measurement (default 200).
 */
export async function ceiling(opts: { onnx: string; tokenizer: string; maxLength: number; kind: 'single' | 'pair' | 'windows'; items: { a: string; b?: string }[]; batches: number[]; threads?: number; raw?: boolean; singleItems?: number }): Promise<CeilingResult & { by_batch: ByBatch }> {
  const threads = opts.threads ?? 2;
  const workers = await startWorkers({ onnx: opts.onnx, tokenizer: opts.tokenizer, maxLength: opts.maxLength, kind: opts.kind }, threads);
  const byBatch: ByBatch = {};
  let single: Awaited<ReturnType<typeof measure>>;
  try {
    // Single-item latency (one thread, batch 1, tokenization included): what concurrency 1 could cost at best.
    single = await measure(workers.slice(0, 1), { items: opts.items.slice(0, opts.singleItems ?? 200), batch: 1, tokenize: true });
    for (const batch of opts.batches) {
      const withTok = await measure(workers, { items: opts.items, batch, tokenize: true });
      const raw = opts.raw === false ? undefined : await measure(workers, { items: opts.items, batch, tokenize: false });
      byBatch[batch] = { items_per_s: rate(withTok.itemsPerS), ...(raw ? { raw_items_per_s: rate(raw.itemsPerS) } : {}), cpu_ms_per_item: Number(withTok.cpuMsPerItem.toFixed(4)) };
    }
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
  const best = Object.entries(byBatch).sort((a, b) => b[1].items_per_s - a[1].items_per_s)[0];
  const raws = Object.values(byBatch).flatMap((x) => (x.raw_items_per_s === undefined ? [] : [x.raw_items_per_s]));
  return { batch: Number(best[0]), items_per_s: best[1].items_per_s, raw_items_per_s: raws.length ? Math.max(...raws) : NaN, cpu_ms_per_item: best[1].cpu_ms_per_item, threads, single_p50_ms: pct(single.callMs, 50), single_p99_ms: pct(single.callMs, 99), by_batch: byBatch };
}
