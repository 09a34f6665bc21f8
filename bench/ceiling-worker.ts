/**
 * One thread of the in-process ceiling: one ONNX Runtime session (intra-op 1, as the gateway's workers) and a
 * tokenizer, loaded once, then any number of jobs: a loop over its share of the items at a fixed batch size. No
 * HTTP, no queue. Protocol: it posts { ready } once loaded; each job message gets { prepared } (raw mode
 * tokenizes before the clock starts), then 'go' starts it and { items, ms, callMs } ends it.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import { TextTokenizer } from '../src/inference/tokenizer.ts';

interface Model {
  onnx: string;
  tokenizer: string;
  maxLength: number;
  kind: 'single' | 'pair' | 'windows';
}
interface Job {
  items: { a: string; b?: string }[];
  batch: number;
  tokenize: boolean;
}
const model = workerData as Model;

const session = await ort.InferenceSession.create(model.onnx, { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all', enableCpuMemArena: false });
const tok = await TextTokenizer.fromFile(model.tokenizer, { maxLength: model.maxLength });
/** Every window an item needs, as the gateway reads it (a 300-word QA context is two windows). */
const encode = async (it: { a: string; b?: string }) => {
  const ws = model.kind === 'pair' ? await tok.encodePairWindows(it.a, it.b!, { stride: 64 }) : model.kind === 'windows' ? await tok.encodeWindows(it.a, { stride: 32 }) : [await tok.encodeTruncated(it.a)];
  return ws.map((w) => ({ ids: w.ids, typeIds: w.typeIds }));
};

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

const next = () => new Promise<unknown>((r) => parentPort!.once('message', r));
parentPort!.postMessage({ ready: true });
// Runs jobs until the ceiling terminates the thread.
for (;;) {
  const job = (await next()) as Job;
  // Raw mode tokenizes before the clock starts.
  const pre = job.tokenize ? undefined : await Promise.all(job.items.map(encode));
  parentPort!.postMessage({ prepared: true });
  // Start together with the other threads, after all have prepared.
  await next();
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
}
