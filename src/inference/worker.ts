/**
 * An inference worker thread: one ONNX Runtime session per model, run one batch at a time.
 * session.run() blocks its thread, which is why it lives here and never on the event loop.
 */
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import { applyPost, maskOf } from './post-process.ts';
import type { RunRequest, TensorInfo, TensorOut, WorkerRequest, WorkerResponse } from './protocol.ts';

const { intraOpThreads, nice } = workerData as { intraOpThreads: number; nice: number };
// On Linux the nice value is per thread and pid 0 means the calling thread: a positive value here lets the
// event loop (health probes, admission, responses) win the CPU from inference when the cores are saturated.
try {
  if (nice) setPriority(0, nice);
} catch {
  /* not permitted or not supported: run at normal priority */
}
const sessions = new Map<string, ort.InferenceSession>();
/** Armed by the fault hook: what the next run does instead of running. */
let fault: 'exit' | 'throw' | 'stall' | undefined;
let stallMs = 0;
const port = parentPort!;

function reply(msg: WorkerResponse, transfer: ArrayBuffer[] = []) {
  port.postMessage(msg, transfer);
}

function toInt64(src: Int32Array): BigInt64Array {
  const out = new BigInt64Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = BigInt(src[i]);
  return out;
}

async function run(req: RunRequest): Promise<WorkerResponse & { type: 'ran' }> {
  const session = sessions.get(req.model);
  if (!session) throw new Error(`model ${req.model} is not loaded in this worker`);
  const dims = [req.batch, req.seq];
  const mask = maskOf(req.lengths, req.batch, req.seq);
  const feeds: Record<string, ort.Tensor> = {
    input_ids: new ort.Tensor('int64', toInt64(req.inputIds), dims),
    attention_mask: new ort.Tensor('int64', toInt64(mask), dims),
  };
  if (session.inputNames.includes('token_type_ids')) {
    feeds.token_type_ids = new ort.Tensor('int64', req.zeroTypeIds ? new BigInt64Array(req.batch * req.seq) : toInt64(req.typeIds), dims);
  }
  const t0 = performance.now();
  const result = await session.run(feeds, req.fetches);
  const inferenceMs = performance.now() - t0;
  const outputs: Record<string, TensorOut> = {};
  for (const [k, name] of req.fetches.entries()) {
    const t = result[name];
    const data = t.data as Float32Array;
    // Pooled, or a copy: either way the buffer is owned and can be transferred.
    outputs[name] = k === 0 && req.post !== 'none' ? applyPost(data, t.dims, req.post, mask) : { data: data.slice(), dims: [...t.dims] };
  }
  for (const t of Object.values(result)) t.dispose?.();
  return { type: 'ran', id: req.id, outputs, inferenceMs };
}

function tensorInfo(m: ort.InferenceSession.ValueMetadata): TensorInfo {
  return m.isTensor ? { name: m.name, type: m.type, dims: [...m.shape] } : { name: m.name, type: 'non-tensor', dims: [] };
}

port.on('message', async (msg: WorkerRequest) => {
  try {
    switch (msg.type) {
      case 'load': {
        const session = await ort.InferenceSession.create(msg.onnxPath, {
          intraOpNumThreads: intraOpThreads,
          interOpNumThreads: 1,
          executionMode: 'sequential',
          graphOptimizationLevel: 'all',
          // The arena keeps each session's peak (the warm-up's largest batch) for good: ~70 MB per model per
          // worker here, for no measurable speed-up on these shapes (measured: 480 vs 500 ms for 50 runs of 16x64).
          enableCpuMemArena: false,
        });
        sessions.get(msg.model)?.release();
        sessions.set(msg.model, session);
        reply({
          type: 'loaded',
          id: msg.id,
          inputNames: [...session.inputNames],
          outputNames: [...session.outputNames],
          inputs: session.inputMetadata.map(tensorInfo),
          outputs: session.outputMetadata.map(tensorInfo),
          rssBytes: process.memoryUsage.rss(),
        });
        break;
      }
      case 'run': {
        if (fault === 'exit') process.exit(70);
        if (fault === 'throw') {
          fault = undefined;
          throw new Error('injected inference failure');
        }
        if (fault === 'stall') {
          fault = undefined;
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, stallMs);
        }
        const res = await run(msg);
        reply(res, Object.values(res.outputs).map((o) => o.data.buffer as ArrayBuffer));
        break;
      }
      case 'unload': {
        await sessions.get(msg.model)?.release();
        sessions.delete(msg.model);
        reply({ type: 'done', id: msg.id, rssBytes: process.memoryUsage.rss() });
        break;
      }
      case 'crash':
        fault = msg.how;
        stallMs = msg.ms ?? 0;
        reply({ type: 'done', id: msg.id });
        break;
    }
  } catch (err) {
    reply({ type: 'error', id: msg.id, message: (err as Error).message });
  }
});
