/**
 * Collection QA, measured: ingest (chunks/s through the gateway against the embedding ceiling at the same chunk
 * length) and questions at concurrency 1 and 32 on a collection of 10,000+ chunks, for each store (the embedded
 * SQLite file; PostgreSQL + pgvector, here PGlite over the wire), against an in-process ceiling that does the
 * same work with no HTTP, no queue and no scheduler: embed the question (ONNX Runtime), search the same store
 * (vector and BM25, fused), read the top chunks (one ONNX Runtime batch) and pick the spans.
 *
 *   node --import tsx bench/collections.ts [--quick] [--stores sqlite,postgres]   (also run by npm run bench)
 *   COLL_SECONDS=30: longer QA points (default 10, quick 1.5), e.g. for PGlite at c32, whose answers all come at once.
 * Real text: SQuAD train paragraphs from ../shared/data/qa-train and their questions.
 */
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import * as ort from 'onnxruntime-node';
import { demoZip } from '../test/helpers/app.ts';
import { startGateway, type GatewayProcess } from '../test/helpers/gateway-process.ts';
import { startPostgres } from '../test/helpers/pglite.ts';
import { unzipTo } from '../test/helpers/unzip.ts';
import { TextTokenizer } from '../src/inference/tokenizer.ts';
import { l2Normalize } from '../src/tasks/similarity.ts';
import { applyPost } from '../src/inference/post-process.ts';
import { answerSpans } from '../src/tasks/qa.ts';
import { queryTerms } from '../src/collections/analyzer.ts';
import { reciprocalRankFusion } from '../src/collections/fusion.ts';
import { chunkKey, type CollectionStore } from '../src/collections/types.ts';
import { SqliteStore } from '../src/collections/stores/sqlite/index.ts';
import { PostgresStore } from '../src/collections/stores/postgres/index.ts';
import { ceiling } from './ceiling.ts';
import { load, procStat, stopLoadGenerator } from './load-client.ts';

const SQUAD = new URL('../../shared/data/qa-train/squad_v1.0_train.json.gz', import.meta.url);
const CHUNK_TOKENS = 128;
const READ_K = 5;
/** The bundled config's collection embedding model. */
const EMBEDDER = 'retrieve-demo';

interface Paragraph {
  id: string;
  text: string;
  question: string;
}

function paragraphs(n: number): Paragraph[] {
  const squad = JSON.parse(gunzipSync(readFileSync(SQUAD)).toString('utf8')) as { data: { paragraphs: { context: string; qas: { question: string }[] }[] }[] };
  const out: Paragraph[] = [];
  for (const [a, art] of squad.data.entries()) for (const [i, p] of art.paragraphs.entries()) if (out.length < n) out.push({ id: `p${a}-${i}`, text: p.context, question: p.qas[0].question });
  return out;
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return Number(s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))].toFixed(2));
};

/** The ceiling's own models: sessions of 1 intra-op thread, the gateway's tokenizer, no batcher. */
async function ceilingModels(dir: string) {
  const opts = { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential' as const, graphOptimizationLevel: 'all' as const, enableCpuMemArena: false };
  const load = async (name: string, maxLength: number) => {
    const d = join(dir, name);
    await unzipTo(demoZip(name), d);
    return { session: await ort.InferenceSession.create(join(d, 'model.onnx'), opts), tok: await TextTokenizer.fromFile(join(d, 'tokenizer.json'), { maxLength }) };
  };
  return { embedder: await load(EMBEDDER, 256), qa: await load('qa-demo', 256) };
}

function tensors(rows: { ids: number[]; typeIds: number[] }[], withTypes: boolean) {
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
  const dims = [rows.length, seq];
  return { seq, mask, feeds: { input_ids: new ort.Tensor('int64', ids, dims), attention_mask: new ort.Tensor('int64', mask, dims), ...(withTypes ? { token_type_ids: new ort.Tensor('int64', types, dims) } : {}) } };
}

/** One question, the whole way, in this process: what the route's work costs without HTTP, queue or scheduler. */
async function ceilingQuestion(m: Awaited<ReturnType<typeof ceilingModels>>, store: CollectionStore, question: string) {
  const q = await m.embedder.tok.encodeTruncated(question);
  const t = tensors([q], m.embedder.session.inputNames.includes('token_type_ids'));
  // As the gateway does: a graph's own sentence_embedding (retrieve-demo 3) as it is, else token vectors mean-pooled.
  const fetch = m.embedder.session.outputNames.includes('sentence_embedding') ? 'sentence_embedding' : 'last_hidden_state';
  const h = (await m.embedder.session.run(t.feeds, [fetch]))[fetch];
  const vec = l2Normalize(applyPost(h.data as Float32Array, h.dims, fetch === 'sentence_embedding' ? 'none' : 'mean-pool', t.mask).data);
  const [v, k] = await Promise.all([store.vectorSearch('bench', vec, READ_K * 2), store.keywordSearch('bench', queryTerms(question), READ_K * 2)]);
  const hits = reciprocalRankFusion([v, k], (x) => chunkKey(x.documentId, x.chunkIndex)).slice(0, READ_K).map((x) => x.item);
  const windows = (await Promise.all(hits.map((hit) => m.qa.tok.encodePairWindows(question, hit.text, { stride: 64 })))).map((ws) => ws);
  const flat = windows.flat();
  const qt = tensors(flat, true);
  const r = await m.qa.session.run(qt.feeds, ['start_logits', 'end_logits']);
  const s = r.start_logits.data as Float32Array;
  const e = r.end_logits.data as Float32Array;
  let at = 0;
  return hits.map((hit, i) => answerSpans(windows[i].map((w) => {
    const row = at++;
    return { offsets: w.offsets, sequenceIds: w.sequenceIds, wordIds: w.wordIds, startLogits: s.subarray(row * qt.seq, (row + 1) * qt.seq), endLogits: e.subarray(row * qt.seq, (row + 1) * qt.seq) };
  }), hit.text, { topK: 1, maxAnswerLength: 30, handleImpossibleAnswer: false })[0]);
}

/**
 * Quick: 300 paragraphs (~630 chunks), 2 s per point; full: 6,000 paragraphs (~12,600 chunks), 10 s per point.
 * The gateway's CPU is its process's (all threads) over each load window; with PostgreSQL, the database's own
 * work is not in it (PGlite runs in this process), while the ceiling's figures include it.
 */
export type Store = 'sqlite' | 'postgres';
interface Prepared {
  tmp: string;
  models: Awaited<ReturnType<typeof ceilingModels>>;
  gateways: Map<Store, { gw: GatewayProcess; pg?: Awaited<ReturnType<typeof startPostgres>>; dir: string }>;
}

async function stopGateways(gateways: Prepared['gateways']): Promise<void> {
  for (const g of gateways.values()) {
    await g.gw.stop();
    await g.pg?.stop();
  }
}

/**
 * What the bench needs before it measures: the ceiling's models and one ready gateway per store. bench/run.ts
 * starts it while its other servers boot, so these boots are not on its wall time; they idle until step 5.
 */
export async function prepareCollectionBench(stores: Store[]): Promise<Prepared> {
  const tmp = mkdtempSync(join(tmpdir(), 'bench-collections-'));
  const gateways: Prepared['gateways'] = new Map();
  const boot = async (kind: Store) => {
    const pg = kind === 'postgres' ? await startPostgres() : undefined;
    const dir = join(tmp, `store-${kind}`);
    const env: Record<string, string> = {
      GATEWAY_SERVER__LOG_LEVEL: 'warn',
      GATEWAY_CACHE__EMBEDDING_BYTES: '0',
      GATEWAY_CACHE__RESULT_BYTES: '0',
      GATEWAY_MODELS: JSON.stringify([EMBEDDER, 'qa-demo'].map((name) => ({ name, source: demoZip(name) }))),
      GATEWAY_COLLECTIONS__STORE: kind,
      GATEWAY_COLLECTIONS__DIR: dir,
      GATEWAY_COLLECTIONS__MAX_DOCUMENTS_PER_REQUEST: '1000',
      ...(pg ? { GATEWAY_COLLECTIONS__POSTGRES__URL: pg.url } : {}),
    };
    const gw = await startGateway(env);
    gateways.set(kind, { gw, pg, dir });
    await gw.waitReady(180_000);
  };
  const [models] = await Promise.all([ceilingModels(tmp), ...stores.map(boot)]).catch(async (err: unknown) => {
    await stopGateways(gateways);
    throw err;
  });
  return { tmp, models, gateways };
}

/** Stops what prepareCollectionBench started, when the run ends before step 5. */
export async function discardCollectionBench(ready: Promise<Prepared>): Promise<void> {
  const p = await ready.catch(() => undefined);
  if (p) await stopGateways(p.gateways);
}

export async function collectionBench(o: { quick: boolean; stores: Store[] }, ready?: Promise<Prepared>): Promise<Record<string, unknown>[]> {
  const n = o.quick ? 300 : 6000;
  const seconds = Number(process.env.COLL_SECONDS ?? (o.quick ? 1.5 : 10));
  const paras = paragraphs(n);
  // 200 distinct questions, cycled (caches are off, so a repeat costs what a new one does).
  const questions = paras.slice(0, 200).map((p) => ({ question: p.question, top_k: 1, retrieve_k: READ_K, mode: 'hybrid' }));
  const { tmp, models, gateways } = await (ready ?? prepareCollectionBench(o.stores));
  const rows: Record<string, unknown>[] = [];
  try {
    for (const kind of o.stores) {
      const { gw, pg, dir } = gateways.get(kind)!;
      try {
        const post = async (path: string, body: unknown, type = 'application/json') => {
          const r = await fetch(`${gw.url}${path}`, { method: 'POST', headers: { 'content-type': type }, body: typeof body === 'string' ? body : JSON.stringify(body) });
          if (r.status >= 300) throw new Error(`${path}: ${r.status} ${(await r.text()).slice(0, 300)}`);
          return (await r.json()) as Record<string, unknown>;
        };
        await post('/v1/collections', { name: 'bench', chunking: { max_tokens: CHUNK_TOKENS, overlap_tokens: 16 } });
        const cpu0 = procStat(gw.child.pid!).cpuS;
        const t0 = performance.now();
        let chunks = 0;
        for (let i = 0; i < paras.length; i += 500) {
          const body = paras.slice(i, i + 500).map((p) => JSON.stringify({ id: p.id, text: p.text })).join('\n');
          chunks += (await post('/v1/collections/bench/documents', `${body}\n`, 'application/x-ndjson')).chunks as number;
        }
        const ingestS = (performance.now() - t0) / 1000;
        const ingestCpu = procStat(gw.child.pid!).cpuS - cpu0;
        // The embedding ceiling at the same chunk length: the chunks' own texts through ONNX Runtime on both cores.
        const storeForCeiling: CollectionStore = kind === 'sqlite' ? new SqliteStore(dir) : new PostgresStore({ url: pg!.url, poolSize: 2 });
        await storeForCeiling.open();
        const sample = (await storeForCeiling.chunkTexts('bench')).slice(0, o.quick ? 300 : 2000).map((c) => ({ a: c.text }));
        const embedCeiling = await ceiling({ onnx: join(tmp, EMBEDDER, 'model.onnx'), tokenizer: join(tmp, EMBEDDER, 'tokenizer.json'), maxLength: 256, kind: 'single', items: sample, batches: o.quick ? [16] : [16, 32], raw: false, singleItems: 20 });
        rows.push({
          scenario: 'collection-ingest',
          store: kind,
          chunks,
          documents: paras.length,
          seconds: Number(ingestS.toFixed(1)),
          chunks_per_s: Math.round(chunks / ingestS),
          server_cpu_ms_per_chunk: Number(((ingestCpu * 1000) / chunks).toFixed(3)),
          ceiling_chunks_per_s: embedCeiling.items_per_s,
          ceiling_cpu_ms_per_chunk: embedCeiling.cpu_ms_per_item,
          ratio_to_ceiling: Number((chunks / ingestS / embedCeiling.items_per_s).toFixed(2)),
        });
        console.log(JSON.stringify(rows.at(-1)));
        // The ceiling's latency at concurrency 1: the same questions, one at a time, in this process.
        const single: number[] = [];
        const singleCpu0 = process.cpuUsage();
        const asked = paras.slice(0, o.quick ? 40 : 200);
        for (const q of asked) {
          const c0 = performance.now();
          await ceilingQuestion(models, storeForCeiling, q.question);
          single.push(performance.now() - c0);
        }
        const singleCpu = process.cpuUsage(singleCpu0);
        await storeForCeiling.close();
        await load(gw.url, '/v1/collections/bench/qa', questions, 4, 1);
        for (const c of [1, 32]) {
          const r = await load(gw.url, '/v1/collections/bench/qa', questions, c, seconds, undefined, gw.child.pid!);
          const cpu = r.server?.cpu_s ?? NaN;
          const ceilingQps = Math.round((2 * 1000) / (single.reduce((a, b) => a + b, 0) / single.length));
          rows.push({
            scenario: 'collection-qa',
            store: kind,
            chunks,
            concurrency: c,
            rps: Number(r.rps.toFixed(1)),
            p50_ms: r.p50,
            p99_ms: r.p99,
            errors: r.errors + r.non2xx,
            server_cpu_ms_per_question: Number(((cpu * 1000) / Math.max(1, r.requests)).toFixed(2)),
            ceiling_single_p50_ms: pct(single, 50),
            ceiling_single_p99_ms: pct(single, 99),
            ceiling_cpu_ms_per_question: Number(((singleCpu.user + singleCpu.system) / 1000 / asked.length).toFixed(2)),
            // c32: against twice the one-at-a-time rate (both cores, if it scaled perfectly): an estimate, not a measurement.
            ...(c === 1 ? { p50_ratio_to_ceiling: Number((r.p50 / pct(single, 50)).toFixed(2)) } : { ceiling_2core_qps: ceilingQps, qps_ratio_to_ceiling: Number((r.rps / ceilingQps).toFixed(2)) }),
          });
          console.log(JSON.stringify(rows.at(-1)));
        }
      } finally {
        await gw.stop();
        await pg?.stop();
        gateways.delete(kind);
      }
    }
  } finally {
    // The stores a failure never reached.
    await stopGateways(gateways);
  }
  return rows;
}

if (process.argv[1] && new URL(import.meta.url).pathname === process.argv[1]) {
  const quick = process.argv.includes('--quick');
  const at = process.argv.indexOf('--stores');
  const stores = (at > 0 ? process.argv[at + 1] : 'sqlite,postgres').split(',') as Store[];
  const rows = await collectionBench({ quick, stores });
  stopLoadGenerator();
  mkdirSync('bench/results', { recursive: true });
  writeFileSync('bench/results/collections.json', `${JSON.stringify({ at: new Date().toISOString(), quick, rows }, null, 2)}\n`);
}
