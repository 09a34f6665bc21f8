/**
 * `npm run bench` (add `-- --quick` for a run under 90 s): the gateway against the in-process ceiling and a
 * naive transformers.js server, side by side in one run on this machine: the demo models, the speed-only
 * realistic shapes (bench/stand-ins.ts), fp32 against int8, the cache-hit path and collection QA
 * (bench/collections.ts). Throughput, latency and the server's CPU per item (all its threads, from /proc; the
 * load generator's CPU never counted). Writes bench/results/<time>.json, bench/results/latest.json and
 * docs/performance.md with its SVG plots.
 * `-- --pinned` adds the pinned configuration to a quick run (the full run always has it): the load generator
 * on one core, each server on the other (taskset). `-- --tune`: the batching/threading sweep
 * (bench/results/tuning.json); `-- --render`: the docs again from both files.
 * Every server and load generator it starts is its own process on 127.0.0.1, bounded in time and stopped at the end.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { DEMO_MODELS, demoZip } from '../test/helpers/app.ts';
import { freePort, startGateway, type GatewayProcess } from '../test/helpers/gateway-process.ts';
import { unzipTo } from '../test/helpers/unzip.ts';
import { ceiling, rate, type CeilingResult } from './ceiling.ts';
import { collectionBench, discardCollectionBench, prepareCollectionBench, type Store } from './collections.ts';
import { renderDocs } from './report.ts';
import { fastifyFloor } from './floor-server.ts';
import { allCpus, load, pin, pinLoadGenerator, procStat, stopLoadGenerator, type LoadResult } from './load-client.ts';
import { SPEED_ONLY, standIns, type StandIn } from './stand-ins.ts';
import { QA_300, QA_3000, ESSAY_400 } from './inputs.ts';

const quick = process.argv.includes('--quick');
const tuneOnly = process.argv.includes('--tune');
const pinned = !quick || process.argv.includes('--pinned');
const CONCURRENCY = quick ? [1, 32] : [1, 8, 32, 128];
const SECONDS = quick ? 1.5 : 6;
/** The demo models the quick run's scenarios use (embeddings: sts-demo; QA-300 and the int8 pair: qa-demo). */
const QUICK_MODELS = ['sts-demo', 'qa-demo'];
const WARM_SECONDS = quick ? 0.5 : 1;
/**
 * The cache-hit point warms up longer: at ~60 µs a request the gateway is still settling after 0.5 s (a first
 * 1.5 s round measured 94-134 µs a request where the next ones measured 69-80) and after 1.5 s (four points in a
 * row in one quick run: 91, 76, 81, 68 µs). Fastify alone, far simpler, warms 1.5 s.
 */
const HIT_WARM_SECONDS = quick ? 3 : 4;
const FLOOR_WARM_SECONDS = quick ? 1.5 : 2;


interface CeilingSpec {
  model: string;
  kind: 'single' | 'pair' | 'windows';
  /** The nth ceiling item: the same text the gateway gets, with n in place of the request id. */
  item: (n: number) => { a: string; b?: string };
  /** Items in a full run (a quick run takes a quarter). */
  count: number;
  batches?: number[];
  /** Items for the single-item latency (default 200). */
  singleItems?: number;
  /** Tokenizing is a rounding error here: skip the raw (pre-tokenized) measurement. */
  noRaw?: boolean;
}
interface Scenario {
  /** Also the prefix of its summary keys. */
  name: string;
  /** Items per request (sentences, texts, QA items): items/s = requests/s × items. */
  items: number;
  gateway: { path: string; body: unknown };
  naive?: { path: string; body: unknown };
  ceiling: CeilingSpec;
  /** Full run only. */
  full?: boolean;
  /** A random-weight stand-in (bench/stand-ins.ts): its rows say so. */
  speedOnly?: boolean;
  concurrency?: number[];
  /** Seconds per point where the default is too short for the model (quick, full). */
  seconds?: [number, number];
  /**
   * Closed-loop points at concurrency 32 are measured at steady state (bench/load.ts Job.steady): this many
   * answers skipped while the queue fills, then at least this many counted between two bursts of answers
   * (quick, full). For models whose batches take hundreds of ms: a fixed window's end cuts off the batches in
   * progress (CPU counted, items not: about 10% on the DistilBERT shape in 4 s), and a fixed number of requests
   * ends in a tail where one worker idles (throughput 0.73 of the ceiling on 40 requests).
   */
  steady?: [{ skip: number; count: number }, { skip: number; count: number }];
  /** No open-loop point (full run). */
  closedOnly?: boolean;
  /** The int8 row of this fp32 scenario. */
  int8Of?: string;
  /** The same model, inputs and requests as that scenario: its ceiling and gateway rows are reused, not measured again. */
  sameAs?: string;
}

const withModel = (spec: { path: string; body: unknown }, model: string) => ({ path: spec.path, body: { ...(spec.body as object), model } });

// [<id>] makes each request unique (no cache can answer): bench/load.ts puts a request counter there, so the
// ceiling, given the same counter n, runs the same texts.
const DEMO_SCENARIOS: Scenario[] = [
  { name: 'embeddings', items: 1, gateway: { path: '/v1/embeddings', body: { input: 'sentence [<id>] about a package' } }, naive: { path: '/embed', body: { input: 'sentence [<id>] about a package' } }, ceiling: { model: 'sts-demo', kind: 'single', item: (n) => ({ a: `sentence ${n} about a package` }), count: 1200 } },
  { name: 'qa300', items: 1, gateway: { path: '/v1/qa', body: { question: 'Who maintains curl [<id>]?', context: QA_300 } }, naive: { path: '/qa', body: { question: 'Who maintains curl [<id>]?', context: QA_300 } }, ceiling: { model: 'qa-demo', kind: 'pair', item: (n) => ({ a: `Who maintains curl ${n}?`, b: QA_300 }), count: 400 } },
  { name: 'similarity', items: 2, gateway: { path: '/v1/similarity', body: { sentence_1: 'a man plays [<id>] guitar', sentence_2: 'someone plays music [<id>]' } }, ceiling: { model: 'sts-demo', kind: 'single', item: (n) => ({ a: n % 2 ? `a man plays ${n} guitar` : `someone plays music ${n}` }), count: 1200 }, full: true },
  { name: 'qa3000', items: 1, gateway: { path: '/v1/qa', body: { question: 'Who maintains zsh [<id>]?', context: QA_3000 } }, naive: { path: '/qa', body: { question: 'Who maintains zsh [<id>]?', context: QA_3000 } }, ceiling: { model: 'qa-demo', kind: 'pair', item: (n) => ({ a: `Who maintains zsh ${n}?`, b: QA_3000 }), count: 60 }, full: true },
  { name: 'classify16', items: 16, gateway: { path: '/v1/classify', body: { inputs: Array.from({ length: 16 }, (_, i) => `a text editor ${i} [<id>]`) } }, naive: { path: '/classify', body: { inputs: Array.from({ length: 16 }, (_, i) => `a text editor ${i} [<id>]`) } }, ceiling: { model: 'classify-demo', kind: 'single', item: (n) => ({ a: `a text editor ${n % 16} ${n >> 4}` }), count: 1600 }, full: true },
  { name: 'essay400', items: 1, gateway: { path: '/v1/essays/score', body: { essay: `[<id>] ${ESSAY_400}` } }, ceiling: { model: 'essay-demo', kind: 'windows', item: (n) => ({ a: `${n} ${ESSAY_400}` }), count: 300 }, full: true },
];

/** The demo scenario of a model's task: what its int8 sibling is measured on. */
const TASK_SCENARIO: Record<string, string> = { 'sts-demo': 'embeddings', 'qa-demo': 'qa300', 'classify-demo': 'classify16', 'essay-demo': 'essay400', 'essay-demo-bands': 'essay400' };
const MODEL_TASK: Record<string, string> = { 'sts-demo': 'sentence-similarity', 'qa-demo': 'question-answering', 'classify-demo': 'text-classification', 'essay-demo': 'essay-scoring', 'essay-demo-bands': 'essay-scoring' };

/** The speed-only shapes: MiniLM embeddings of short sentences, DistilBERT QA on the 300-word context (one 384-token window). */
function shapeScenarios(s: { minilm: StandIn; minilmInt8: StandIn; distilbert: StandIn }): Scenario[] {
  const emb = DEMO_SCENARIOS[0];
  const qa = DEMO_SCENARIOS[1];
  const minilm: Scenario = { ...emb, name: 'minilm_embeddings', speedOnly: true, gateway: withModel(emb.gateway, s.minilm.name), naive: withModel(emb.naive!, s.minilm.name), ceiling: { ...emb.ceiling, model: s.minilm.name, count: 600, batches: [1, 8, 32] }, full: false };
  return [
    minilm,
    { ...minilm, name: 'minilm_int8_embeddings', int8Of: 'minilm_embeddings', naive: undefined, gateway: withModel(emb.gateway, s.minilmInt8.name), ceiling: { ...minilm.ceiling, model: s.minilmInt8.name }, concurrency: quick ? [32] : [1, 32], closedOnly: true },
    {
      ...qa,
      name: 'distilbert_qa300',
      speedOnly: true,
      gateway: withModel(qa.gateway, s.distilbert.name),
      // The naive server takes ~10 s a point here (3-4 items/s): full run only.
      naive: quick ? undefined : withModel(qa.naive!, s.distilbert.name),
      // One 384-token window per item: batching does not pay at this length (the demo QA ceiling says so too).
      ceiling: { ...qa.ceiling, model: s.distilbert.name, count: 48, batches: [1], singleItems: quick ? 6 : 16, noRaw: true },
      seconds: [3, 20],
      steady: [{ skip: 8, count: 24 }, { skip: 16, count: 128 }],
      closedOnly: true,
    },
  ];
}

async function metricsText(url: string): Promise<string> {
  return await (await fetch(`${url}/metrics`)).text();
}

function cacheCounts(text: string): Record<string, { hits: number; misses: number }> {
  const out: Record<string, { hits: number; misses: number }> = {};
  for (const m of text.matchAll(/gateway_cache_(hits|misses)\{cache="([^"]+)"\} (\d+)/g)) {
    out[m[2]] ??= { hits: 0, misses: 0 };
    out[m[2]][m[1] as 'hits' | 'misses'] = Number(m[3]);
  }
  return out;
}

function batchHistogram(text: string, model?: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/gateway_batch_size_bucket\{le="([^"]+)",model="([^"]+)"\} (\d+)/g)) if (!model || m[2] === model) out[m[1]] = (out[m[1]] ?? 0) + Number(m[3]);
  return out;
}

/** Cumulative Prometheus buckets to a count per bucket ("≤1", "2", "3-4", …), differenced against `before`. */
function histogramDelta(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const les = Object.keys(after).sort((a, b) => (a === '+Inf' ? 1 : b === '+Inf' ? -1 : Number(a) - Number(b)));
  const out: Record<string, number> = {};
  let prevCum = 0;
  let prevLe = 0;
  for (const le of les) {
    const cum = after[le] - (before[le] ?? 0);
    const n = cum - prevCum;
    const label = le === '+Inf' ? `>${prevLe}` : Number(le) === prevLe + 1 ? le : `${prevLe + 1}-${le}`;
    if (n > 0) out[label] = n;
    prevCum = cum;
    if (le !== '+Inf') prevLe = Number(le);
  }
  return out;
}

async function startNaive(dir: string, lists: Record<string, string[]>): Promise<{ url: string; child: ChildProcess; bootS: number }> {
  const port = await freePort();
  const t0 = performance.now();
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/naive-server.ts', String(port), dir, JSON.stringify(lists)], { stdio: ['ignore', 'ignore', 'inherit'] });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 1200; i++) {
    if (child.exitCode !== null) throw new Error(`naive server exited with ${child.exitCode}`);
    if (await fetch(`${url}/ready`).then((r) => r.ok, () => false)) {
      serverPids.add(child.pid!);
      return { url, child, bootS: (performance.now() - t0) / 1000 };
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  throw new Error('naive server did not start in 120 s');
}

/**
 * The main gateway's model cache, kept across runs like a deployment's var/models: a later run finds the
 * stand-ins (hundreds of MB) unpacked and only hashes their zips. Other gateways of a run use fresh folders.
 */
const MAIN_STORE = join(tmpdir(), 'nlp-gateway-bench-store');
const CACHES_OFF = { GATEWAY_CACHE__EMBEDDING_BYTES: '0', GATEWAY_CACHE__RESULT_BYTES: '0' };

async function bootGateway(models: { name: string; source: string }[], env: Record<string, string>): Promise<{ gw: GatewayProcess; bootS: number }> {
  const t0 = performance.now();
  const gw = await startGateway({ GATEWAY_SERVER__LOG_LEVEL: 'warn', GATEWAY_MODELS: JSON.stringify(models), ...env });
  try {
    await gw.waitReady(300_000);
  } catch (err) {
    await gw.stop();
    throw err;
  }
  serverPids.add(gw.child.pid!);
  return { gw, bootS: (performance.now() - t0) / 1000 };
}

/**
 * Every gateway and naive server this run started (bootGateway, startNaive). A closed-loop point that ends
 * leaves its server working through the requests still in flight (the naive server at c32 on QA-300: ~3 s of CPU),
 * and on two cores that work would be charged to the next point, which may be another server's.
 */
const serverPids = new Set<number>();

/** Waits until the servers (this one and every other the run started) have finished what an earlier point left in
 *  flight: their CPU together below a tenth of a core. */
async function waitIdle(pid: number, maxMs = 60_000): Promise<void> {
  const pids = [...new Set([pid, ...serverPids])];
  const cpu = () => pids.reduce((sum, p) => {
    try {
      return sum + procStat(p).cpuS;
    } catch {
      return sum; // exited
    }
  }, 0);
  const end = performance.now() + maxMs;
  let last = cpu();
  while (performance.now() < end) {
    await new Promise((r) => setTimeout(r, 200));
    const now = cpu();
    if (now - last <= 0.02) return;
    last = now;
  }
}

type Row = Record<string, unknown>;
const round = (x: number, digits: number) => Number(x.toFixed(digits));

/** The server-CPU fields of a point: per item, main thread (event loop) per item, cores; never the client's. */
function cpuFields(r: LoadResult, items: number): Row {
  const s = r.server;
  if (!s || r.requests === 0) return {};
  const n = r.requests * items;
  return {
    server_cpu_ms_per_item: round((s.cpu_s * 1000) / n, 4),
    main_thread_cpu_ms_per_item: round((s.main_cpu_s * 1000) / n, 4),
    cpu_cores: round(s.cpu_s / s.window_s, 2),
    threads_cores: s.threads_cpu_s.slice(0, 4).map((t) => round(t / s.window_s, 2)),
  };
}

/** One measured point against a server process: load, CPU and RSS of that process, gateway batch sizes. */
async function point(o: { scenario: Scenario; server: string; url: string; path: string; body: unknown; pid: number; connections: number; seconds: number; rate?: number; gateway: boolean; model?: string; config?: string }): Promise<Row> {
  await waitIdle(o.pid);
  const hist0 = o.gateway ? batchHistogram(await metricsText(o.url), o.model) : {};
  const steady = !o.rate && o.connections >= 32 && o.scenario.steady ? o.scenario.steady[quick ? 0 : 1] : undefined;
  // A steady point ends itself; `seconds` only bounds it.
  const r = await load(o.url, o.path, o.body, o.connections, steady ? 120 : o.seconds, o.rate, o.pid, steady);
  const hist1 = o.gateway ? batchHistogram(await metricsText(o.url), o.model) : {};
  const row: Row = {
    scenario: o.scenario.name,
    server: o.server,
    ...(o.config ? { config: o.config } : {}),
    ...(o.scenario.speedOnly ? { model: SPEED_ONLY } : {}),
    ...(o.rate ? { mode: 'open', rate: o.rate, connections: o.connections } : { mode: 'closed', concurrency: o.connections }),
    ...(steady ? { window: `steady: ${r.requests} answers after the first ${steady.skip}, between bursts`, requests: r.requests } : {}),
    rps: round(r.rps, 1),
    items_per_s: rate(r.rps * o.scenario.items),
    p50_ms: r.p50,
    p95_ms: r.p95,
    p99_ms: r.p99,
    errors: r.errors,
    non2xx: r.non2xx,
    ...cpuFields(r, o.scenario.items),
    rss_mb: procStat(o.pid).rssMb,
    load_1m: round(loadavg()[0], 2),
    batch_histogram: o.gateway ? histogramDelta(hist0, hist1) : undefined,
  };
  console.log(JSON.stringify(row));
  return row;
}

/** Machine load now: other work on the 2 cores skews every figure, so each result file records it. */
const loadNow = () => loadavg().map((x) => round(x, 2));

/** CPU ticks of every process now, by pid. */
function allTicks(): Map<number, { ticks: number; nice: number; command: string }> {
  const out = new Map<number, { ticks: number; nice: number; command: string }>();
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
      out.set(Number(pid), { ticks: Number(f[11]) + Number(f[12]), nice: Number(f[16]), command: readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim().slice(0, 80) });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** What else used the CPU over one second (other than this bench): each result file says what shared the machine. */
async function otherLoad(): Promise<{ pid: number; command: string; nice: number; cores: number }[]> {
  const a = allTicks();
  await new Promise((r) => setTimeout(r, 1000));
  const b = allTicks();
  return [...b]
    .map(([pid, x]) => ({ pid, command: x.command, nice: x.nice, cores: round((x.ticks - (a.get(pid)?.ticks ?? x.ticks)) / 100, 2) }))
    .filter((x) => x.cores >= 0.1 && x.pid !== process.pid)
    .sort((x, y) => y.cores - x.cores);
}

const machine = async () => ({ cpus: cpus().length, cpu: cpus()[0]?.model, memory_gb: Math.round(totalmem() / 1024 ** 3), node: process.version, loadavg_at_start: loadNow(), other_cpu_at_start: await otherLoad() });

/**
 * `--tune`: the batching and threading knobs, one gateway per setting (sts-demo and qa-demo only, caches off),
 * embeddings and QA-300 at concurrency 32 and embeddings at concurrency 1.
 */
async function tune(): Promise<void> {
  const started = new Date();
  const settings: { name: string; env: Record<string, string> }[] = [
    { name: 'defaults', env: {} },
    { name: 'maxBatchTokens 1024', env: { GATEWAY_INFERENCE__MAX_BATCH_TOKENS: '1024' } },
    { name: 'maxBatchTokens 4096', env: { GATEWAY_INFERENCE__MAX_BATCH_TOKENS: '4096' } },
    { name: 'maxBatchSize 8', env: { GATEWAY_INFERENCE__MAX_BATCH_SIZE: '8' } },
    { name: 'maxWaitMs 2', env: { GATEWAY_INFERENCE__MAX_WAIT_MS: '2' } },
    { name: 'fillWaitMs 0', env: { GATEWAY_INFERENCE__FILL_WAIT_MS: '0' } },
    { name: 'fillWaitMs 5', env: { GATEWAY_INFERENCE__FILL_WAIT_MS: '5' } },
    { name: 'workers 1 × intraOp 2', env: { GATEWAY_INFERENCE__WORKERS: '1', GATEWAY_INFERENCE__INTRA_OP_THREADS: '2' } },
    { name: 'tokenizeInlineMaxChars 0', env: { GATEWAY_INFERENCE__TOKENIZE_INLINE_MAX_CHARS: '0' } },
  ];
  const seconds = 4;
  const [emb, qa] = [DEMO_SCENARIOS[0], DEMO_SCENARIOS[1]];
  const rows: Row[] = [];
  for (const s of settings) {
    const { gw, bootS } = await bootGateway(['sts-demo', 'qa-demo'].map((name) => ({ name, source: demoZip(name) })), { ...CACHES_OFF, ...s.env });
    try {
      const pid = gw.child.pid!;
      const at = (sc: Scenario, c: number) => point({ scenario: sc, server: 'gateway', url: gw.url, path: sc.gateway.path, body: sc.gateway.body, pid, connections: c, seconds, gateway: true });
      await load(gw.url, emb.gateway.path, emb.gateway.body, 8, WARM_SECONDS);
      const e1 = await at(emb, 1);
      const e32 = await at(emb, 32);
      await load(gw.url, qa.gateway.path, qa.gateway.body, 8, WARM_SECONDS);
      const q32 = await at(qa, 32);
      rows.push({ setting: s.name, env: s.env, boot_ready_s: round(bootS, 2), load: loadNow(), embeddings_c1: e1, embeddings_c32: e32, qa300_c32: q32 });
    } finally {
      await gw.stop();
    }
  }
  const out = { started: started.toISOString(), seconds_per_point: seconds, machine: await machine(), rows };
  mkdirSync('bench/results', { recursive: true });
  writeFileSync('bench/results/tuning.json', JSON.stringify(out, null, 1));
  for (const r of rows) console.log(`${String(r.setting).padEnd(32)} emb c1 p99 ${(r.embeddings_c1 as Row).p99_ms} ms, emb c32 ${(r.embeddings_c32 as Row).items_per_s}/s p99 ${(r.embeddings_c32 as Row).p99_ms}, qa300 c32 ${(r.qa300_c32 as Row).items_per_s}/s p99 ${(r.qa300_c32 as Row).p99_ms}`);
}

/** `--render`: docs/performance.md and its plot again from bench/results/latest.json and tuning.json. */
function render(): void {
  const tuning = existsSync('bench/results/tuning.json') ? JSON.parse(readFileSync('bench/results/tuning.json', 'utf8')) : undefined;
  renderDocs(JSON.parse(readFileSync('bench/results/latest.json', 'utf8')), tuning);
}

// ---------- fp32 against int8: output drift through the gateway ----------

function stsSentences(n: number): string[] {
  const tsv = readFileSync(new URL('../../shared/data/stsbenchmark/sts-dev.csv', import.meta.url), 'utf8');
  return [...new Set(tsv.split('\n').filter(Boolean).flatMap((l) => l.split('\t').slice(5, 7)))].slice(0, n);
}

function squadItems(n: number): { question: string; context: string }[] {
  const squad = JSON.parse(gunzipSync(readFileSync(new URL('../../shared/data/qa-train/squad_v1.0_train.json.gz', import.meta.url))).toString('utf8')) as { data: { paragraphs: { context: string; qas: { question: string }[] }[] }[] };
  const out: { question: string; context: string }[] = [];
  for (const art of squad.data) for (const p of art.paragraphs) if (out.length < n) out.push({ question: p.qas[0].question, context: p.context });
  return out;
}

async function postJson(url: string, body: unknown): Promise<Record<string, unknown>> {
  const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(120_000) });
  if (!r.ok) throw new Error(`${url}: ${r.status} ${(await r.text()).slice(0, 200)}`);
  return (await r.json()) as Record<string, unknown>;
}

/** How far the int8 model's answers move from the fp32 model's, on real inputs, as the gateway serves both. */
async function drift(url: string, task: string, fp32: string, int8: string): Promise<Row> {
  if (task === 'sentence-similarity') {
    const texts = stsSentences(256);
    const vec = async (model: string) => {
      const out: number[][] = [];
      for (let i = 0; i < texts.length; i += 64) out.push(...((await postJson(`${url}/v1/embeddings`, { input: texts.slice(i, i + 64), model })).data as { embedding: number[] }[]).map((d) => d.embedding));
      return out;
    };
    const [a, b] = [await vec(fp32), await vec(int8)];
    const cos = a.map((v, i) => v.reduce((s, x, k) => s + x * b[i][k], 0) / Math.sqrt(v.reduce((s, x) => s + x * x, 0) * b[i].reduce((s, x) => s + x * x, 0)));
    const diffs = a.flatMap((v, i) => v.map((x, k) => Math.abs(x - b[i][k])));
    return { inputs: texts.length, what: 'STS Benchmark dev sentences', cosine_min: round(Math.min(...cos), 4), cosine_mean: round(cos.reduce((s, x) => s + x, 0) / cos.length, 4), abs_diff_max: round(Math.max(...diffs), 4), abs_diff_mean: round(diffs.reduce((s, x) => s + x, 0) / diffs.length, 5) };
  }
  if (task === 'question-answering') {
    const items = squadItems(64);
    const spans = async (model: string) => ((await postJson(`${url}/v1/qa/batch`, { items, model })).results as { answers: { start: number; end: number; score: number }[] }[]).map((r) => r.answers[0]);
    const [a, b] = [await spans(fp32), await spans(int8)];
    const same = a.filter((x, i) => x.start === b[i].start && x.end === b[i].end).length;
    const overlap = a.map((x, i) => {
      const inter = Math.max(0, Math.min(x.end, b[i].end) - Math.max(x.start, b[i].start));
      return inter === 0 ? 0 : (2 * inter) / (x.end - x.start + b[i].end - b[i].start);
    });
    return { inputs: items.length, what: 'SQuAD v1.0 train questions with their paragraphs', span_agreement: round(same / items.length, 3), span_overlap_f1_mean: round(overlap.reduce((s, x) => s + x, 0) / overlap.length, 3), score_abs_diff_max: round(Math.max(...a.map((x, i) => Math.abs(x.score - b[i].score))), 4) };
  }
  if (task === 'text-classification') {
    const texts = stsSentences(128);
    const top = async (model: string) => ((await postJson(`${url}/v1/classify`, { inputs: texts, model })).predictions as { label: string }[]).map((r) => r.label);
    const [a, b] = [await top(fp32), await top(int8)];
    return { inputs: texts.length, what: 'STS Benchmark dev sentences', top_label_agreement: round(a.filter((x, i) => x === b[i]).length / texts.length, 3) };
  }
  return { note: `drift not measured for ${task}` };
}

async function modelStatus(url: string): Promise<Record<string, { batch_invariance_max_diff?: number; state: string }>> {
  const r = (await (await fetch(`${url}/v1/models`)).json()) as { data: { name: string; state: string; warmup?: { batch_invariance_max_diff?: number } }[] };
  return Object.fromEntries(r.data.map((m) => [m.name, { state: m.state, batch_invariance_max_diff: m.warmup?.batch_invariance_max_diff }]));
}

// ---------- the run ----------

async function main() {
  if (process.argv.includes('--render')) return render();
  if (tuneOnly) return await tune();
  const started = new Date();
  const t0 = performance.now();
  const machineAtStart = await machine();
  const results: Row[] = [];
  const shapes = await standIns(console.log);
  const models = mkdtempSync(join(tmpdir(), 'bench-models-'));
  // A quick run boots only the demo models its scenarios use (booting all of them was ~15 s of its wall time).
  const demoModels: string[] = quick ? DEMO_MODELS.filter((m) => QUICK_MODELS.includes(m)) : [...DEMO_MODELS];
  const int8Demo = demoModels.filter((m) => existsSync(demoZip(`${m}-int8`)));
  for (const m of [...demoModels, ...int8Demo.map((m) => `${m}-int8`)]) await unzipTo(demoZip(m), join(models, m), { 'model.onnx': 'onnx/model.onnx' });
  // transformers.js and the ceiling read the stand-ins where every other model is.
  for (const s of [shapes.minilm, shapes.minilmInt8, shapes.distilbert]) symlinkSync(s.dir, join(models, s.name));
  const maxLen = (m: string) => {
    const standIn = [shapes.minilm, shapes.minilmInt8, shapes.distilbert].find((s) => s.name === m);
    return standIn ? standIn.maxLength : (JSON.parse(readFileSync(join(models, m, 'gateway.json'), 'utf8')).max_length as number);
  };
  const demoInt8Scenarios: Scenario[] = int8Demo.flatMap((m) => {
    const base = DEMO_SCENARIOS.find((s) => s.name === TASK_SCENARIO[m]);
    if (!base) return [];
    // Where the task's demo scenario already runs this very model (qa300 on qa-demo), the fp32 row is that one.
    const fp32: Scenario = { ...base, name: `${m.replace(/-/g, '_')}_fp32`, naive: undefined, gateway: withModel(base.gateway, m), ceiling: { ...base.ceiling, model: m }, concurrency: quick ? [32] : [1, 32], closedOnly: true, full: false, ...(base.ceiling.model === m ? { sameAs: base.name } : {}) };
    return [fp32, { ...fp32, sameAs: undefined, name: `${m.replace(/-/g, '_')}_int8`, int8Of: fp32.name, gateway: withModel(base.gateway, `${m}-int8`), ceiling: { ...base.ceiling, model: `${m}-int8` } }];
  });
  // Each int8 pair runs right after the demo scenario it is based on (the figures compared come close in time).
  const scenarios = [...DEMO_SCENARIOS.flatMap((d) => [d, ...demoInt8Scenarios.filter((x) => TASK_SCENARIO[x.ceiling.model.replace(/-int8$/, '')] === d.name)]), ...shapeScenarios(shapes)].filter((s) => !quick || !s.full);
  const secondsOf = (s: Scenario) => (s.seconds ? s.seconds[quick ? 0 : 1] : SECONDS);
  const ceilingOf = (s: Scenario, threads: number) => {
    const c = s.ceiling;
    const items = Array.from({ length: quick ? Math.ceil(c.count / 4) : c.count }, (_, i) => c.item(10_000_000 + i));
    // A quick run measures only the batch size the full run finds best (pairs and windows: 1, where padding the
    // short last window costs more than a call; single texts: the largest) and skips the raw ONNX Runtime figure.
    const batches = c.batches ?? [1, 4, 16, 32];
    const quickBatches = c.kind === 'single' ? [Math.max(...(c.batches ?? [16]))] : [1];
    return ceiling({ onnx: join(models, c.model, 'onnx', 'model.onnx'), tokenizer: join(models, c.model, 'tokenizer.json'), maxLength: maxLen(c.model), kind: c.kind, items, batches: quick ? quickBatches : batches, threads, raw: !quick && !c.noRaw, singleItems: c.singleItems });
  };

  // 1. The ceiling, per scenario, before any server runs (and, pinned, on one core: the core a pinned server gets).
  const ceilings: Record<string, CeilingResult> = {};
  // Where the wall time goes, by phase (seconds), for the docs' account of the quick run's wall time.
  const phases: Record<string, number> = { stand_ins: round((performance.now() - t0) / 1000, 1) };
  let mark = performance.now();
  const lap = (name: string) => {
    phases[name] = round((performance.now() - mark) / 1000 + (phases[name] ?? 0), 1);
    mark = performance.now();
  };
  for (const s of scenarios) {
    ceilings[s.name] = s.sameAs ? ceilings[s.sameAs] : await ceilingOf(s, 2);
    console.log(`ceiling ${s.name} (${((performance.now() - mark) / 1000).toFixed(1)} s): ${JSON.stringify(ceilings[s.name])}`);
    lap(`ceiling ${s.name}`);
  }
  const PINNED = ['embeddings', 'minilm_embeddings'];
  const pinnedCeilings: Record<string, CeilingResult> = {};
  if (pinned) {
    pin(process.pid, '1');
    try {
      for (const s of scenarios.filter((x) => PINNED.includes(x.name))) pinnedCeilings[s.name] = await ceilingOf(s, 1);
    } finally {
      pin(process.pid, allCpus());
    }
  }

  // 2. The gateway (caches off: the scenarios measure the model path) and the naive server, side by side.
  const entries = [...demoModels, ...int8Demo.map((m) => `${m}-int8`)].map((name) => ({ name, source: demoZip(name) })).concat([shapes.minilm, shapes.minilmInt8, shapes.distilbert].map((s) => ({ name: s.name, source: s.zip })));
  const naiveLists = { embed: ['sts-demo', shapes.minilm.name], classify: demoModels.filter((m) => m === 'classify-demo'), qa: ['qa-demo', shapes.distilbert.name] };
  // The cache-hit path's gateway (caches on) boots beside them and waits idle until step 4 (quick: with the
  // one model its one hit point uses).
  // So does the collection bench's gateway per store (step 5): its boot is not on the wall time either.
  const collectionStores: Store[] = quick ? ['sqlite'] : ['sqlite', 'postgres'];
  const collectionsReady = prepareCollectionBench(collectionStores);
  const [{ gw, bootS: bootReadyS }, naiveBooted, hitBooted] = await Promise.all([bootGateway(entries, { ...CACHES_OFF, GATEWAY_STORE__DIR: MAIN_STORE }), startNaive(models, naiveLists), bootGateway((quick ? ['sts-demo'] : ['sts-demo', 'qa-demo']).map((name) => ({ name, source: demoZip(name) })), {}), collectionsReady]).catch(async (err: unknown) => {
    await discardCollectionBench(collectionsReady);
    throw err;
  });
  let naive: Awaited<ReturnType<typeof startNaive>> | undefined = naiveBooted;
  let hit: GatewayProcess | undefined = hitBooted.gw;
  console.log(`booted: gateway ${bootReadyS.toFixed(1)} s, naive ${naiveBooted.bootS.toFixed(1)} s, cache-hit gateway ${hitBooted.bootS.toFixed(1)} s`);
  lap('boot');
  let other: GatewayProcess | undefined;
  const int8: Row[] = [];
  let status: Awaited<ReturnType<typeof modelStatus>> = {};
  try {
    status = await modelStatus(gw.url);
    for (const s of scenarios) {
      if (s.sameAs) {
        const cs = s.concurrency ?? CONCURRENCY;
        for (const r of results.filter((x) => x.scenario === s.sameAs && x.server === 'gateway' && x.mode === 'closed' && cs.includes(x.concurrency as number))) results.push({ ...r, scenario: s.name, same_as: s.sameAs });
        results.push({ scenario: s.name, server: 'ceiling', same_as: s.sameAs, ...ceilings[s.name] });
        continue;
      }
      const servers = [['gateway', gw.url, s.gateway, gw.child.pid!], ['naive', naive.url, s.naive, naive.child.pid!]] as const;
      const model = (s.gateway.body as { model?: string }).model;
      for (const [server, url, spec, pid] of servers) {
        if (!spec) continue;
        await waitIdle(pid);
        await load(url, spec.path, spec.body, 4, WARM_SECONDS);
        const cs = s.concurrency ?? (server === 'naive' && quick ? [32] : CONCURRENCY);
        for (const c of cs) results.push(await point({ scenario: s, server, url, path: spec.path, body: spec.body, pid, connections: c, seconds: secondsOf(s), gateway: server === 'gateway', model }));
        lap(`points ${s.name}`);
      }
      // Open loop (full run): a fixed arrival rate, 3/4 of the gateway's best closed-loop rate, for both servers.
      if (!quick && !s.closedOnly) {
        const best = Math.max(...results.filter((r) => r.scenario === s.name && r.server === 'gateway').map((r) => r.rps as number));
        const rate = Math.max(1, Math.round(best * 0.75));
        for (const [server, url, spec, pid] of servers) if (spec) results.push(await point({ scenario: s, server, url, path: spec.path, body: spec.body, pid, connections: 128, seconds: SECONDS, rate, gateway: server === 'gateway', model }));
      }
      results.push({ scenario: s.name, server: 'ceiling', ...(s.speedOnly ? { model: SPEED_ONLY } : {}), ...ceilings[s.name] });
    }
    // fp32 against int8: the output drift, through the gateway, on real inputs.
    for (const s of scenarios.filter((x) => x.int8Of)) {
      const fp32 = scenarios.find((x) => x.name === s.int8Of)!;
      const [a, b] = [fp32.ceiling.model, s.ceiling.model];
      const task = a === shapes.minilm.name ? 'sentence-similarity' : MODEL_TASK[a];
      int8.push({ fp32: a, int8: b, fp32_scenario: fp32.name, int8_scenario: s.name, ...(fp32.speedOnly ? { model: SPEED_ONLY } : {}), batch_invariance_max_diff: { fp32: status[a]?.batch_invariance_max_diff, int8: status[b]?.batch_invariance_max_diff }, drift: await drift(gw.url, task, a, b) });
      console.log(JSON.stringify(int8.at(-1)));
    }

    // 3. Pinned: the load generator on core 0, the server on core 1, against the ceiling on one thread.
    if (pinned) {
      const booted = await bootGateway(['sts-demo', shapes.minilm.name].map((name) => ({ name, source: name === 'sts-demo' ? demoZip(name) : shapes.minilm.zip })), { ...CACHES_OFF, GATEWAY_INFERENCE__WORKERS: '1' });
      other = booted.gw;
      pin(other.child.pid!, '1');
      pin(naive.child.pid!, '1');
      pinLoadGenerator('0');
      try {
        for (const s of scenarios.filter((x) => PINNED.includes(x.name))) {
          const model = (s.gateway.body as { model?: string }).model;
          for (const [server, url, spec, pid] of [['gateway', other.url, s.gateway, other.child.pid!], ['naive', naive.url, s.naive!, naive.child.pid!]] as const) {
            await load(url, spec.path, spec.body, 4, WARM_SECONDS);
            results.push(await point({ scenario: s, server, url, path: spec.path, body: spec.body, pid, connections: 32, seconds: SECONDS, gateway: server === 'gateway', model, config: 'pinned' }));
          }
          results.push({ scenario: s.name, server: 'ceiling', config: 'pinned', ...(s.speedOnly ? { model: SPEED_ONLY } : {}), ...pinnedCeilings[s.name] });
        }
      } finally {
        pinLoadGenerator(undefined);
        await other.stop();
        other = undefined;
      }
    }
    naive.child.kill('SIGKILL');
    naive = undefined;
    await gw.stop();

    lap('int8 drift, pinned, stop');
    // 4. The cache-hit path: the same 64 request bodies over and over, caches on.
    other = hit;
    hit = undefined;
    const repeated: Scenario = { ...DEMO_SCENARIOS[0], name: 'embeddings, 64 repeated sentences' };
    const repeatedQa: Scenario = { ...DEMO_SCENARIOS[1], name: 'qa300, 64 repeated questions' };
    // The quick run measures the embeddings hit only (the one with a target; the QA hit costs about the same).
    for (const sc of quick ? [repeated] : [repeated, repeatedQa]) {
      // Each connection cycles through the same 64 bodies, after one pass that fills the cache (without it all
      // 32 connections send body 0 at once, then body 1…: concurrent identical requests all miss).
      const bodies = Array.from({ length: 64 }, (_, i) => JSON.parse(JSON.stringify(sc.gateway.body).replaceAll('[<id>]', String(i))) as unknown);
      for (const b of bodies) await fetch(`${other.url}${sc.gateway.path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(b), signal: AbortSignal.timeout(10_000) }).then((r) => r.arrayBuffer());
      await load(other.url, sc.gateway.path, bodies, 32, HIT_WARM_SECONDS);
      const before = cacheCounts(await metricsText(other.url));
      const row = await point({ scenario: sc, server: 'gateway, caches on', url: other.url, path: sc.gateway.path, body: bodies, pid: other.child.pid!, connections: 32, seconds: SECONDS, gateway: true });
      const after = cacheCounts(await metricsText(other.url));
      row.cache = Object.fromEntries(Object.entries(after).map(([k, v]) => [k, { hits: v.hits - (before[k]?.hits ?? 0), misses: v.misses - (before[k]?.misses ?? 0) }]));
      results.push(row);
      if (sc === repeated) {
        // Fastify alone answering the same bytes (bench/fastify-floor.ts), right after the hit point: the floor
        // of this stack on this machine at this moment (the hit's µs move ±30% with the machine, the ratio less).
        const answer = await (await fetch(`${other.url}${sc.gateway.path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(bodies[0]) })).text();
        const floor = await fastifyFloor(answer);
        try {
          await load(floor.url, sc.gateway.path, bodies, 32, FLOOR_WARM_SECONDS);
          results.push(await point({ scenario: { ...sc, name: 'embeddings, 64 repeated sentences, Fastify alone' }, server: floor.label, url: floor.url, path: sc.gateway.path, body: bodies, pid: floor.child.pid!, connections: 32, seconds: SECONDS, gateway: false }));
        } finally {
          await floor.stop();
        }
      }
    }
    await other.stop();
    other = undefined;
  } catch (err) {
    await discardCollectionBench(collectionsReady);
    throw err;
  } finally {
    naive?.child.kill('SIGKILL');
    await hit?.stop().catch(() => undefined);
    await gw.stop().catch(() => undefined);
    await other?.stop().catch(() => undefined);
    rmSync(models, { recursive: true, force: true });
  }

  // 5. Collection QA, per store (quick: the embedded SQLite store and a small collection).
  lap('cache hit');
  const collections = await collectionBench({ quick, stores: collectionStores }, collectionsReady);
  stopLoadGenerator();
  lap('collections');

  const summary = summarize(results, ceilings, pinnedCeilings, int8, collections, scenarios, bootReadyS);
  const out = { started: started.toISOString(), finished: new Date().toISOString(), wall_s: Math.round((performance.now() - t0) / 1000), phases_s: phases, quick, pinned, seconds_per_point: SECONDS, machine: { ...machineAtStart, loadavg_at_end: loadNow(), other_cpu_at_end: await otherLoad() }, speed_only_models: [shapes.minilm, shapes.minilmInt8, shapes.distilbert].map((s) => ({ name: s.name, like: s.like, parameters: s.params, max_length: s.maxLength })), summary, results, int8, collections };
  mkdirSync('bench/results', { recursive: true });
  const stamp = started.toISOString().replace(/[:.]/g, '-');
  writeFileSync(`bench/results/${stamp}.json`, JSON.stringify(out, null, 1));
  writeFileSync('bench/results/latest.json', JSON.stringify(out, null, 1));
  render();
  console.log(JSON.stringify(summary));
  console.log(`bench: ${out.wall_s} s`);
}

/** The stable keys of bench/results/latest.json `summary` (docs/performance.md lists them with their targets). */
function summarize(results: Row[], ceilings: Record<string, CeilingResult>, pinnedCeilings: Record<string, CeilingResult>, int8: Row[], collections: Row[], scenarios: Scenario[], bootReadyS: number): Record<string, number | null> {
  const closed = (scenario: string, server: string, c: number, config?: string) => results.find((r) => r.scenario === scenario && r.server === server && r.concurrency === c && r.config === config);
  const num = (x: unknown) => (typeof x === 'number' && Number.isFinite(x) ? x : null);
  const ratio = (a: unknown, b: unknown, digits = 2) => (num(a) !== null && num(b) !== null && (b as number) > 0 ? round((a as number) / (b as number), digits) : null);
  const s: Record<string, number | null> = {};
  for (const sc of scenarios) {
    const k = sc.name;
    const g32 = closed(k, 'gateway', 32);
    const n32 = closed(k, 'naive', 32);
    const c = ceilings[k];
    s[`${k}_c32_items_per_s`] = num(g32?.items_per_s);
    s[`${k}_c32_vs_ceiling`] = ratio(g32?.items_per_s, c.items_per_s);
    s[`${k}_c32_cpu_ms_per_item`] = num(g32?.server_cpu_ms_per_item);
    s[`${k}_ceiling_cpu_ms_per_item`] = num(c.cpu_ms_per_item);
    s[`${k}_c32_cpu_vs_ceiling`] = ratio(g32?.server_cpu_ms_per_item, c.cpu_ms_per_item);
    if (sc.naive) {
      s[`${k}_c32_vs_naive`] = ratio(g32?.items_per_s, n32?.items_per_s);
      s[`${k}_c32_naive_cpu_vs_gateway`] = ratio(n32?.server_cpu_ms_per_item, g32?.server_cpu_ms_per_item);
    }
    const g1 = closed(k, 'gateway', 1);
    if (g1) {
      s[`${k}_c1_p99_ms`] = num(g1.p99_ms);
      s[`${k}_c1_p99_budget_ms`] = round(c.single_p99_ms + 5, 2);
    }
    if (pinnedCeilings[k]) {
      const gp = closed(k, 'gateway', 32, 'pinned');
      const np = closed(k, 'naive', 32, 'pinned');
      s[`${k}_pinned_c32_vs_ceiling`] = ratio(gp?.items_per_s, pinnedCeilings[k].items_per_s);
      s[`${k}_pinned_c32_vs_naive`] = ratio(gp?.items_per_s, np?.items_per_s);
      s[`${k}_pinned_c32_cpu_vs_ceiling`] = ratio(gp?.server_cpu_ms_per_item, pinnedCeilings[k].cpu_ms_per_item);
    }
  }
  const budgets = scenarios.filter((sc) => s[`${sc.name}_c1_p99_ms`] !== undefined);
  s.c1_p99_budgets_met = budgets.filter((sc) => (s[`${sc.name}_c1_p99_ms`] ?? Infinity) <= (s[`${sc.name}_c1_p99_budget_ms`] ?? -Infinity)).length;
  s.c1_p99_budgets_total = budgets.length;
  for (const r of int8) {
    const key = String(r.int8_scenario);
    s[`${key}_vs_fp32_c32`] = ratio(closed(key, 'gateway', 32)?.items_per_s, closed(String(r.fp32_scenario), 'gateway', 32)?.items_per_s);
    s[`${key}_vs_fp32_ceiling`] = ratio(ceilings[key]?.items_per_s, ceilings[String(r.fp32_scenario)]?.items_per_s);
    s[`${key}_cpu_vs_fp32_c32`] = ratio(closed(key, 'gateway', 32)?.server_cpu_ms_per_item, closed(String(r.fp32_scenario), 'gateway', 32)?.server_cpu_ms_per_item);
  }
  s.int8_pairs = int8.length;
  const hit = results.find((r) => r.scenario === 'embeddings, 64 repeated sentences');
  const hitQa = results.find((r) => r.scenario === 'qa300, 64 repeated questions');
  s.cache_hit_embeddings_cpu_us_per_request = hit ? round((hit.server_cpu_ms_per_item as number) * 1000, 1) : null;
  s.cache_hit_embeddings_main_thread_us_per_request = hit ? round((hit.main_thread_cpu_ms_per_item as number) * 1000, 1) : null;
  s.cache_hit_embeddings_rps = num(hit?.rps);
  const floor = results.find((r) => r.scenario === 'embeddings, 64 repeated sentences, Fastify alone');
  s.fastify_floor_cpu_us_per_request = floor ? round((floor.server_cpu_ms_per_item as number) * 1000, 1) : null;
  s.cache_hit_embeddings_vs_fastify_floor = ratio(hit?.server_cpu_ms_per_item, floor?.server_cpu_ms_per_item);
  s.cache_hit_qa_cpu_us_per_request = hitQa ? round((hitQa.server_cpu_ms_per_item as number) * 1000, 1) : null;
  s.cache_hit_qa_rps = num(hitQa?.rps);
  for (const r of collections) {
    if (r.scenario === 'collection-ingest') s[`collection_ingest_vs_ceiling_${r.store}`] = num(r.ratio_to_ceiling);
    if (r.scenario === 'collection-qa' && r.concurrency === 1) s[`collection_qa_c1_p50_vs_ceiling_${r.store}`] = num(r.p50_ratio_to_ceiling);
    if (r.scenario === 'collection-qa' && r.concurrency === 32) s[`collection_qa_c32_vs_ceiling_${r.store}`] = num(r.qps_ratio_to_ceiling);
  }
  s.collection_chunks = num(collections.find((r) => r.scenario === 'collection-ingest')?.chunks);
  s.boot_ready_s = round(bootReadyS, 2);
  return s;
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
