/**
 * `node --import tsx bench/ab-config.ts`: two gateways that differ in one setting, side by side, rounds
 * alternating A, B, A, B on every scenario, so both see the same machine state. Concurrency 32, caches off;
 * prints items/s and server CPU per item (all threads, /proc) per round and the median ratio B / A (an item is a request:
 * one sentence, one chunk, one rerank of 8 passages, one question).
 *
 * Env: A and B (JSON objects of GATEWAY_* variables; default: inference.maxBatchTokens 1024 against 512),
 * ROUNDS (3), SECS (2), ONLY (comma-separated scenario names), THREADS=1 (each round also lists the CPU seconds of
 * every other thread of the server: ONNX Runtime's workers, the tokenizer pool, libuv). HIT=1: the cache-hit path instead (caches on, 64
 * repeated sentences, filled first), e.g. A='{"GATEWAY_SERVER__LOG_LEVEL":"warn"}' B='{"GATEWAY_SERVER__LOG_LEVEL":"info"}'. The DistilBERT-shape point is measured at
 * steady state (bench/load.ts Job.steady), as bench/run.ts does.
 */
import { demoZip } from '../test/helpers/app.ts';
import { startGateway } from '../test/helpers/gateway-process.ts';
import { QA_300, words } from './inputs.ts';
import { load, procStat, stopLoadGenerator } from './load-client.ts';
import { standIns } from './stand-ins.ts';

const shapes = await standIns(() => {});
const A = JSON.parse(process.env.A ?? '{"GATEWAY_INFERENCE__MAX_BATCH_TOKENS":"1024"}') as Record<string, string>;
const B = JSON.parse(process.env.B ?? '{"GATEWAY_INFERENCE__MAX_BATCH_TOKENS":"512"}') as Record<string, string>;
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const SECS = Number(process.env.SECS ?? 2);
const scenarios = [
  { name: 'embeddings sts-demo', path: '/v1/embeddings', body: { input: 'sentence [<id>] about a package', model: 'sts-demo' } },
  { name: 'embeddings minilm-shape', path: '/v1/embeddings', body: { input: 'sentence [<id>] about a package', model: shapes.minilm.name } },
  { name: 'embeddings minilm-shape 30 words', path: '/v1/embeddings', body: { input: `sentence [<id>] ${words(28, 4)}`, model: shapes.minilm.name } },
  // A collection's chunks (~128 tokens) and a rerank of 8 passages: the retrieve and rerank models and their int8 variants (A and B name the zip).
  { name: 'embeddings retrieve-demo chunk', path: '/v1/embeddings', body: { input: `passage [<id>] ${words(110, 5)}`, model: 'retrieve-demo' } },
  { name: 'rerank rerank-demo 8 passages', path: '/v1/rerank', body: { query: 'Who maintains curl [<id>]?', documents: Array.from({ length: 8 }, (_, i) => `${words(120, i)} passage ${i}`), model: 'rerank-demo' } },
  { name: 'qa300 qa-demo', path: '/v1/qa', body: { question: 'Who maintains curl [<id>]?', context: QA_300, model: 'qa-demo' } },
  { name: 'qa300 distilbert-shape', path: '/v1/qa', body: { question: 'Who maintains curl [<id>]?', context: QA_300, model: shapes.distilbert.name }, steady: { skip: 8, count: 24 } },
].filter((s) => !process.env.ONLY || process.env.ONLY.split(',').includes(s.name));
const HIT = process.env.HIT === '1';
const repeated = Array.from({ length: 64 }, (_, i) => ({ input: `sentence ${i} about a package`, model: 'sts-demo' }));
if (HIT) scenarios.splice(0, scenarios.length, { name: 'embeddings cache hit', path: '/v1/embeddings', body: repeated as never });
const models = JSON.stringify([
  ...(HIT ? ['sts-demo'] : ['sts-demo', 'qa-demo']).map((name) => ({ name, source: demoZip(name) })),
  ...(HIT ? [] : [shapes.minilm, shapes.distilbert]).map((s) => ({ name: s.name, source: s.zip })),
]);
const env = { GATEWAY_SERVER__LOG_LEVEL: 'warn', GATEWAY_MODELS: models, ...(HIT ? {} : { GATEWAY_CACHE__EMBEDDING_BYTES: '0', GATEWAY_CACHE__RESULT_BYTES: '0' }) };
const gws = { A: await startGateway({ ...env, ...A }), B: await startGateway({ ...env, ...B }) };
await Promise.all(Object.values(gws).map((g) => g.waitReady(180_000)));
console.log(`A ${JSON.stringify(A)}\nB ${JSON.stringify(B)}`);
if (HIT) for (const g of Object.values(gws)) for (const b of repeated) await fetch(`${g.url}/v1/embeddings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(b) });
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
for (const s of scenarios) {
  const got: Record<string, { ips: number[]; cpu: number[] }> = { A: { ips: [], cpu: [] }, B: { ips: [], cpu: [] } };
  for (let r = 0; r < ROUNDS; r++)
    for (const [k, g] of Object.entries(gws)) {
      await load(g.url, s.path, s.body, HIT ? 32 : 4, HIT ? 1.5 : 0.5);
      const x = await load(g.url, s.path, s.body, 32, s.steady ? 120 : SECS, undefined, g.child.pid, s.steady);
      // Let abandoned requests of a steady point finish before the other gateway runs.
      await new Promise((res) => setTimeout(res, s.steady ? 3000 : 200));
      got[k].ips.push(x.rps);
      got[k].cpu.push((x.server!.cpu_s * 1000) / x.requests);
      console.log(`${s.name.padEnd(32)} ${k} round ${r + 1}: ${x.rps.toFixed(1)} items/s, ${((x.server!.cpu_s * 1000) / x.requests).toFixed(HIT ? 4 : 3)} ms CPU/item (main thread ${((x.server!.main_cpu_s * 1000) / x.requests).toFixed(HIT ? 4 : 3)}${process.env.THREADS === '1' ? `; other threads, s: ${x.server!.threads_cpu_s.join(' ')}` : ''}), p99 ${x.p99} ms`);
    }
  const [a, b] = [got.A, got.B];
  console.log(`${s.name.padEnd(32)} B/A items/s ${(median(b.ips) / median(a.ips)).toFixed(2)}, CPU per item ${(median(b.cpu) / median(a.cpu)).toFixed(2)} (medians of ${ROUNDS}); RSS A ${procStat(gws.A.child.pid!).rssMb} MB, B ${procStat(gws.B.child.pid!).rssMb} MB`);
}
stopLoadGenerator();
await Promise.all(Object.values(gws).map((g) => g.stop()));
