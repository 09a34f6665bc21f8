/**
 * fp32 vs int8 graph of one model with onnxruntime-node, one intra-op thread each, measured side by side in one run
 * (rounds alternate between the two so machine noise hits both): items/s at batch 1 and batch 8 on real inputs, and
 * batch invariance (each row alone vs the same row inside a padded batch of mixed lengths), and the largest output
 * difference int8 vs fp32.
 *
 * usage: node --import tsx scripts/train/bench_int8.ts fp32.onnx int8.onnx inputs.jsonl [--rounds 5] [--n 64] [--batches 1,8] [--out r.json]
 * inputs.jsonl rows: { ids: number[], tt: number[] } (e.g. the QA dev sample windows, or tokenized passages)
 */
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { feeds } from './eval_qa.ts';

/** An input row as a window (every token attended), made once at load for the shared tensor builder. */
interface Row {
  ids: number[];
  attentionMask: number[];
  typeIds: number[];
}

/** Row i of every output, first n positions for per-token outputs. */
function rowOf(res: ort.InferenceSession.OnnxValueMapType, names: readonly string[], i: number, n: number): number[] {
  const out: number[] = [];
  for (const name of names) {
    const o = res[name];
    const per = o.dims.slice(1).reduce((a, b) => a * b, 1);
    const flat = Array.from((o.data as Float32Array).subarray(i * per, (i + 1) * per));
    const keep = o.dims.length >= 2 && name !== 'logits' && name !== 'sentence_embedding' ? n * (o.dims.length === 3 ? o.dims[2] : 1) : flat.length;
    out.push(...flat.slice(0, keep));
  }
  return out;
}

const maxDiff = (a: number[], b: number[]) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

async function throughput(s: ort.InferenceSession, rows: Row[], batch: number): Promise<number> {
  const t0 = performance.now();
  for (let k = 0; k + batch <= rows.length; k += batch) await s.run(feeds(rows.slice(k, k + batch)));
  return (Math.floor(rows.length / batch) * batch) / ((performance.now() - t0) / 1000);
}

async function main(): Promise<void> {
  const { values: a, positionals } = parseArgs({ allowPositionals: true, options: { rounds: { type: 'string', default: '5' }, n: { type: 'string', default: '64' }, batches: { type: 'string', default: '1,8' }, out: { type: 'string' } } });
  const [fp32Path, int8Path, inputs] = positionals;
  const rows = fs.readFileSync(inputs, 'utf8').split('\n').filter(Boolean).slice(0, Number(a.n)).map((l) => {
    const r = JSON.parse(l) as { ids: number[]; tt: number[] };
    return { ids: r.ids, attentionMask: r.ids.map(() => 1), typeIds: r.ids.map((_, j) => r.tt[j] ?? 0) };
  });
  const opts = { intraOpNumThreads: 1, interOpNumThreads: 1 };
  const sessions = { fp32: await ort.InferenceSession.create(fp32Path, opts), int8: await ort.InferenceSession.create(int8Path, opts) };
  const names = sessions.fp32.outputNames;
  const report: Record<string, unknown> = { inputs, rounds: Number(a.rounds), rows: rows.length, mean_tokens: rows.reduce((s, r) => s + r.ids.length, 0) / rows.length };
  // accuracy and invariance
  const batchOrder = rows.slice(0, 8);
  for (const [k, s] of Object.entries(sessions)) {
    const batched = await s.run(feeds(batchOrder));
    let inv = 0;
    for (let i = 0; i < batchOrder.length; i++) {
      const alone = await s.run(feeds([batchOrder[i]]));
      inv = Math.max(inv, maxDiff(rowOf(alone, names, 0, batchOrder[i].ids.length), rowOf(batched, names, i, batchOrder[i].ids.length)));
    }
    report[`${k}_batch_invariance_max_abs_diff`] = inv;
  }
  let diff = 0;
  for (const r of rows.slice(0, 16)) {
    const x = await sessions.fp32.run(feeds([r]));
    const y = await sessions.int8.run(feeds([r]));
    diff = Math.max(diff, maxDiff(rowOf(x, names, 0, r.ids.length), rowOf(y, names, 0, r.ids.length)));
  }
  report.int8_vs_fp32_max_abs_diff = diff;
  // speed: warm up, then alternate rounds; report medians
  for (const s of Object.values(sessions)) await throughput(s, rows.slice(0, 8), 1);
  for (const batch of a.batches!.split(',').map(Number)) {
    const runs: Record<string, number[]> = { fp32: [], int8: [] };
    for (let r = 0; r < Number(a.rounds); r++) {
      for (const [k, s] of Object.entries(sessions)) runs[k].push(await throughput(s, rows, batch));
    }
    const med = (x: number[]) => [...x].sort((p, q) => p - q)[Math.floor(x.length / 2)];
    report[`batch_${batch}`] = { fp32_items_per_s: med(runs.fp32), int8_items_per_s: med(runs.int8), speedup: med(runs.int8) / med(runs.fp32) };
  }
  for (const s of Object.values(sessions)) await s.release();
  const text = JSON.stringify(report, null, 1);
  console.log(text);
  if (a.out) fs.writeFileSync(a.out, text + '\n');
}

await main();
