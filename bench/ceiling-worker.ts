/**
 * One thread of the in-process ceiling: one ONNX Runtime session (intra-op 1, as the gateway's workers),
 * a tokenizer, and a loop over its share of the items at a fixed batch size. No HTTP, no queue.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import { TextTokenizer } from '../src/inference/tokenizer.ts';

interface Job {
  onnx: string;
  tokenizer: string;
  maxLength: number;
  kind: 'single' | 'pair' | 'windows';
  items: { a: string; b?: string }[];
  batch: number;
  tokenize: boolean;
}
const job = workerData as Job;

const session = await ort.InferenceSession.create(job.onnx, { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all', enableCpuMemArena: false });
const tok = await TextTokenizer.fromFile(job.tokenizer, { maxLength: job.maxLength });
/** Every window an item needs, as the gateway reads it (a 300-word QA context is two windows). */
const encode = async (it: { a: string; b?: string }) => {
  const ws = job.kind === 'pair' ? await tok.encodePairWindows(it.a, it.b!, { stride: 64 }) : job.kind === 'windows' ? await tok.encodeWindows(it.a, { stride: 32 }) : [await tok.encodeTruncated(it.a)];
  return ws.map((w) => ({ ids: w.ids, typeIds: w.typeIds }));
};
// Raw mode tokenizes before the clock starts.
const pre = job.tokenize ? undefined : await Promise.all(job.items.map(encode));

async function runBatch(rows: { ids: number[]; typeIds: number[] }[]) {
  const seq = Math.max(...rows.map((r) => r.ids.length));
  const n = rows.length * seq;
  const ids = new BigInt64Array(n);
  const mask = new BigInt64Array(n);
  const types = new BigInt64Array(n);
  rows.forEach((r, b) => r.ids.forEach((id, t) => {
    ids[b * seq + t] = BigInt(id);
    mask[b * seq + t] = 1n;
    types[b * seq + t] = BigInt(r.typeIds[t]);
  }));
  const feeds: Record<string, ort.Tensor> = { input_ids: new ort.Tensor('int64', ids, [rows.length, seq]), attention_mask: new ort.Tensor('int64', mask, [rows.length, seq]) };
  if (session.inputNames.includes('token_type_ids')) feeds.token_type_ids = new ort.Tensor('int64', types, [rows.length, seq]);
  await session.run(feeds);
}

// Start together with the other thread, after both have loaded.
parentPort!.postMessage({ ready: true });
await new Promise((r) => parentPort!.once('message', r));
const t0 = performance.now();
const callMs: number[] = [];
for (let i = 0; i < job.items.length; i += job.batch) {
  const c0 = performance.now();
  const slice = job.items.slice(i, i + job.batch);
  const rows = (pre ? pre.slice(i, i + job.batch) : await Promise.all(slice.map(encode))).flat();
  // `batch` counts items; their windows go in rows of at most `batch` windows.
  for (let k = 0; k < rows.length; k += job.batch) await runBatch(rows.slice(k, k + job.batch));
  callMs.push(performance.now() - c0);
}
parentPort!.postMessage({ items: job.items.length, ms: performance.now() - t0, callMs });
