/**
 * `npm run bench` (add `-- --quick` for a run under 90 s): the gateway against the in-process ceiling and a
 * naive transformers.js server, side by side in one run on this machine. Writes bench/results/<time>.json,
 * bench/results/latest.json and docs/performance.md with an SVG plot (docs/performance.svg).
 * `-- --tune`: the batching/threading sweep (bench/results/tuning.json); `-- --render`: the docs again from both files.
 * Every server and load generator it starts is its own process on 127.0.0.1, bounded in time and stopped at the end.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { DEMO_MODELS, demoZip } from '../test/helpers/app.ts';
import { freePort, startGateway, type GatewayProcess } from '../test/helpers/gateway-process.ts';
import { unzipTo } from '../test/helpers/unzip.ts';
import { ceiling } from './ceiling.ts';
import { renderDocs } from './report.ts';
import { load, procStat } from './load-client.ts';

const quick = process.argv.includes('--quick');
const tuneOnly = process.argv.includes('--tune');
const CONCURRENCY = quick ? [1, 32] : [1, 8, 32, 128];
const SECONDS = quick ? 4 : 6;
const WARM_SECONDS = quick ? 1 : 2;

const words = (n: number, seed: number) => Array.from({ length: n }, (_, i) => ['package', 'library', 'tool', 'server', 'the', 'a', 'data', 'network', 'files', 'and'][(i * 7 + seed) % 10]).join(' ');
const QA_300 = `The curl package is maintained by the Debian curl Maintainers. ${words(290, 1)}`;
const QA_3000 = `${words(2980, 2)} The zsh package is maintained by Debian Zsh Maintainers.`;
const ESSAY_400 = `Public libraries matter. ${words(395, 3)}`;

interface CeilingSpec {
  model: string;
  kind: 'single' | 'pair' | 'windows';
  /** The nth ceiling item: the same text the gateway gets, with n in place of the request id. */
  item: (n: number) => { a: string; b?: string };
  count: number;
}
interface Scenario {
  name: string;
  /** Items per request (sentences, texts, QA items): items/s = requests/s × items. */
  items: number;
  gateway: { path: string; body: unknown };
  naive?: { path: string; body: unknown };
  ceiling: CeilingSpec;
  full?: boolean;
}

// [<id>] makes each request unique (no cache can answer): bench/load.ts puts a request counter there, so the
// ceiling, given the same counter n, runs the same texts.
const SCENARIOS: Scenario[] = [
  { name: 'embeddings', items: 1, gateway: { path: '/v1/embeddings', body: { input: 'sentence [<id>] about a package' } }, naive: { path: '/embed', body: { input: 'sentence [<id>] about a package' } }, ceiling: { model: 'sts-demo', kind: 'single', item: (n) => ({ a: `sentence ${n} about a package` }), count: 1200 } },
  { name: 'qa300', items: 1, gateway: { path: '/v1/qa', body: { question: 'Who maintains curl [<id>]?', context: QA_300 } }, naive: { path: '/qa', body: { question: 'Who maintains curl [<id>]?', context: QA_300 } }, ceiling: { model: 'qa-demo', kind: 'pair', item: (n) => ({ a: `Who maintains curl ${n}?`, b: QA_300 }), count: 400 } },
  { name: 'similarity', items: 2, gateway: { path: '/v1/similarity', body: { sentence_1: 'a man plays [<id>] guitar', sentence_2: 'someone plays music [<id>]' } }, ceiling: { model: 'sts-demo', kind: 'single', item: (n) => ({ a: n % 2 ? `a man plays ${n} guitar` : `someone plays music ${n}` }), count: 1200 }, full: true },
  { name: 'qa3000', items: 1, gateway: { path: '/v1/qa', body: { question: 'Who maintains zsh [<id>]?', context: QA_3000 } }, naive: { path: '/qa', body: { question: 'Who maintains zsh [<id>]?', context: QA_3000 } }, ceiling: { model: 'qa-demo', kind: 'pair', item: (n) => ({ a: `Who maintains zsh ${n}?`, b: QA_3000 }), count: 60 }, full: true },
  { name: 'classify16', items: 16, gateway: { path: '/v1/classify', body: { inputs: Array.from({ length: 16 }, (_, i) => `a text editor ${i} [<id>]`) } }, naive: { path: '/classify', body: { inputs: Array.from({ length: 16 }, (_, i) => `a text editor ${i} [<id>]`) } }, ceiling: { model: 'classify-demo', kind: 'single', item: (n) => ({ a: `a text editor ${n % 16} ${n >> 4}` }), count: 1600 }, full: true },
  { name: 'essay400', items: 1, gateway: { path: '/v1/essays/score', body: { essay: `[<id>] ${ESSAY_400}` } }, ceiling: { model: 'essay-demo', kind: 'windows', item: (n) => ({ a: `${n} ${ESSAY_400}` }), count: 300 }, full: true },
];

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

function batchHistogram(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/gateway_batch_size_bucket\{le="([^"]+)",model="[^"]+"\} (\d+)/g)) out[m[1]] = (out[m[1]] ?? 0) + Number(m[2]);
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

async function startNaive(dir: string): Promise<{ url: string; child: ChildProcess; bootS: number }> {
  const port = await freePort();
  const t0 = performance.now();
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/naive-server.ts', String(port), dir], { stdio: ['ignore', 'ignore', 'inherit'] });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 600; i++) {
    if (await fetch(`${url}/ready`).then((r) => r.ok, () => false)) return { url, child, bootS: (performance.now() - t0) / 1000 };
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  throw new Error('naive server did not start in 60 s');
}

const gatewayModels = (names: readonly string[]) => JSON.stringify(names.map((name) => ({ name, source: demoZip(name) })));
const CACHES_OFF = { GATEWAY_CACHE__EMBEDDING_BYTES: '0', GATEWAY_CACHE__RESULT_BYTES: '0' };

async function bootGateway(env: Record<string, string>): Promise<{ gw: GatewayProcess; bootS: number }> {
  const t0 = performance.now();
  const gw = await startGateway({ GATEWAY_SERVER__LOG_LEVEL: 'warn', ...env });
  try {
    await gw.waitReady(120_000);
  } catch (err) {
    await gw.stop();
    throw err;
  }
  return { gw, bootS: (performance.now() - t0) / 1000 };
}

type Row = Record<string, unknown>;

/** One measured point against a server process: load, CPU and RSS of that process, gateway batch sizes. */
async function point(o: { scenario: Scenario; server: string; url: string; path: string; body: unknown; pid: number; connections: number; seconds: number; rate?: number; gateway: boolean }): Promise<Row> {
  const hist0 = o.gateway ? batchHistogram(await metricsText(o.url)) : {};
  const before = procStat(o.pid);
  const w0 = performance.now();
  const r = await load(o.url, o.path, o.body, o.connections, o.seconds, o.rate);
  const wall = (performance.now() - w0) / 1000;
  const after = procStat(o.pid);
  const hist1 = o.gateway ? batchHistogram(await metricsText(o.url)) : {};
  const row: Row = {
    scenario: o.scenario.name,
    server: o.server,
    ...(o.rate ? { mode: 'open', rate: o.rate, connections: o.connections } : { mode: 'closed', concurrency: o.connections }),
    rps: Math.round(r.rps * 10) / 10,
    items_per_s: Math.round(r.rps * o.scenario.items),
    p50_ms: r.p50,
    p95_ms: r.p95,
    p99_ms: r.p99,
    errors: r.errors,
    non2xx: r.non2xx,
    cpu_cores: Number(((after.cpuS - before.cpuS) / wall).toFixed(2)),
    rss_mb: after.rssMb,
    batch_histogram: o.gateway ? histogramDelta(hist0, hist1) : undefined,
  };
  console.log(JSON.stringify(row));
  return row;
}

/** Machine load now: other work on the 2 cores skews every figure, so each result file records it. */
const loadNow = () => loadavg().map((x) => Number(x.toFixed(2)));

/**
 * `--tune`: the batching and threading knobs, one gateway per setting (sts-demo and qa-demo only, caches off),
 * embeddings and QA-300 at concurrency 32 and embeddings at concurrency 1.
 */
async function tune(): Promise<void> {
  const started = new Date();
  const settings: { name: string; env: Record<string, string> }[] = [
    { name: 'defaults', env: {} },
    { name: 'maxBatchTokens 512', env: { GATEWAY_INFERENCE__MAX_BATCH_TOKENS: '512' } },
    { name: 'maxBatchTokens 4096', env: { GATEWAY_INFERENCE__MAX_BATCH_TOKENS: '4096' } },
    { name: 'maxBatchSize 8', env: { GATEWAY_INFERENCE__MAX_BATCH_SIZE: '8' } },
    { name: 'maxWaitMs 2', env: { GATEWAY_INFERENCE__MAX_WAIT_MS: '2' } },
    { name: 'workers 1 × intraOp 2', env: { GATEWAY_INFERENCE__WORKERS: '1', GATEWAY_INFERENCE__INTRA_OP_THREADS: '2' } },
    { name: 'tokenizeInlineMaxChars 0', env: { GATEWAY_INFERENCE__TOKENIZE_INLINE_MAX_CHARS: '0' } },
  ];
  const seconds = 4;
  const [emb, qa] = [SCENARIOS[0], SCENARIOS[1]];
  const rows: Row[] = [];
  for (const s of settings) {
    const { gw, bootS } = await bootGateway({ GATEWAY_MODELS: gatewayModels(['sts-demo', 'qa-demo']), ...CACHES_OFF, ...s.env });
    try {
      const pid = gw.child.pid!;
      const at = (sc: Scenario, c: number) => point({ scenario: sc, server: 'gateway', url: gw.url, path: sc.gateway.path, body: sc.gateway.body, pid, connections: c, seconds, gateway: true });
      await load(gw.url, emb.gateway.path, emb.gateway.body, 8, WARM_SECONDS);
      const e1 = await at(emb, 1);
      const e32 = await at(emb, 32);
      await load(gw.url, qa.gateway.path, qa.gateway.body, 8, WARM_SECONDS);
      const q32 = await at(qa, 32);
      rows.push({ setting: s.name, env: s.env, boot_ready_s: Number(bootS.toFixed(2)), load: loadNow(), embeddings_c1: e1, embeddings_c32: e32, qa300_c32: q32 });
    } finally {
      await gw.stop();
    }
  }
  const out = { started: started.toISOString(), seconds_per_point: seconds, machine: machine(), rows };
  mkdirSync('bench/results', { recursive: true });
  writeFileSync('bench/results/tuning.json', JSON.stringify(out, null, 1));
  for (const r of rows) console.log(`${String(r.setting).padEnd(32)} emb c1 p99 ${(r.embeddings_c1 as Row).p99_ms} ms, emb c32 ${(r.embeddings_c32 as Row).items_per_s}/s p99 ${(r.embeddings_c32 as Row).p99_ms}, qa300 c32 ${(r.qa300_c32 as Row).items_per_s}/s p99 ${(r.qa300_c32 as Row).p99_ms}`);
}

const machine = () => ({ cpus: cpus().length, cpu: cpus()[0]?.model, memory_gb: Math.round(totalmem() / 1024 ** 3), node: process.version, loadavg_at_start: loadNow() });

/** `--render`: docs/performance.md and its plot again from bench/results/latest.json and tuning.json. */
function render(): void {
  const tuning = existsSync('bench/results/tuning.json') ? JSON.parse(readFileSync('bench/results/tuning.json', 'utf8')) : undefined;
  renderDocs(JSON.parse(readFileSync('bench/results/latest.json', 'utf8')), tuning);
}

async function main() {
  if (process.argv.includes('--render')) return render();
  if (tuneOnly) return await tune();
  const started = new Date();
  const machineAtStart = machine();
  const results: Row[] = [];
  const models = mkdtempSync(join(tmpdir(), 'bench-models-'));
  for (const m of DEMO_MODELS) await unzipTo(demoZip(m), join(models, m), { 'model.onnx': 'onnx/model.onnx' });
  const maxLen = (m: string) => JSON.parse(readFileSync(join(models, m, 'gateway.json'), 'utf8')).max_length as number;
  const scenarios = SCENARIOS.filter((s) => !quick || !s.full);

  // 1. The ceiling, per scenario, before any server runs.
  const ceilings: Record<string, Awaited<ReturnType<typeof ceiling>>> = {};
  for (const s of scenarios) {
    const c = s.ceiling;
    const items = Array.from({ length: quick ? Math.ceil(c.count / 4) : c.count }, (_, i) => c.item(10_000_000 + i));
    ceilings[s.name] = await ceiling({ onnx: join(models, c.model, 'onnx', 'model.onnx'), tokenizer: join(models, c.model, 'tokenizer.json'), maxLength: maxLen(c.model), kind: c.kind, items, batches: quick ? [1, 16] : [1, 4, 16, 32] });
    console.log(`ceiling ${s.name}: ${JSON.stringify(ceilings[s.name])}`);
  }

  // 2. The gateway (caches off: the scenarios measure the model path) and the naive server, side by side.
  const { gw, bootS: bootReadyS } = await bootGateway({ GATEWAY_MODELS: gatewayModels(DEMO_MODELS), ...CACHES_OFF });
  let naive: Awaited<ReturnType<typeof startNaive>> | undefined;
  let cached: GatewayProcess | undefined;
  try {
    naive = await startNaive(models);
    for (const s of scenarios) {
      const servers = [['gateway', gw.url, s.gateway, gw.child.pid!], ['naive', naive.url, s.naive, naive.child.pid!]] as const;
      for (const [server, url, spec, pid] of servers) {
        if (!spec) continue;
        await load(url, spec.path, spec.body, 4, WARM_SECONDS);
        for (const c of CONCURRENCY) results.push(await point({ scenario: s, server, url, path: spec.path, body: spec.body, pid, connections: c, seconds: SECONDS, gateway: server === 'gateway' }));
      }
      // Open loop (full run): a fixed arrival rate, 3/4 of the gateway's best closed-loop rate, for both servers.
      if (!quick) {
        const best = Math.max(...results.filter((r) => r.scenario === s.name && r.server === 'gateway').map((r) => r.rps as number));
        const rate = Math.max(1, Math.round(best * 0.75));
        for (const [server, url, spec, pid] of servers) if (spec) results.push(await point({ scenario: s, server, url, path: spec.path, body: spec.body, pid, connections: 128, seconds: SECONDS, rate, gateway: server === 'gateway' }));
      }
      results.push({ scenario: s.name, server: 'ceiling', ...ceilings[s.name] });
    }
    naive.child.kill('SIGKILL');
    naive = undefined;
    await gw.stop();

    // 3. What the caches do to a repeated-input workload: the same 64 sentences over and over, caches on.
    const booted = await bootGateway({ GATEWAY_MODELS: gatewayModels(['sts-demo', 'qa-demo']) });
    cached = booted.gw;
    const repeated: Scenario = { ...SCENARIOS[0], name: 'embeddings, 64 repeated sentences' };
    const repeatedQa: Scenario = { ...SCENARIOS[1], name: 'qa300, 64 repeated questions' };
    for (const sc of [repeated, repeatedQa]) {
      // Each connection cycles through the same 64 bodies, after one pass that fills the cache (without it all
      // 32 connections send body 0 at once, then body 1…: concurrent identical requests all miss).
      const bodies = Array.from({ length: 64 }, (_, i) => JSON.parse(JSON.stringify(sc.gateway.body).replaceAll('[<id>]', String(i))) as unknown);
      for (const b of bodies) await fetch(`${cached.url}${sc.gateway.path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(b), signal: AbortSignal.timeout(10_000) }).then((r) => r.arrayBuffer());
      const before = cacheCounts(await metricsText(cached.url));
      const row = await point({ scenario: sc, server: 'gateway, caches on', url: cached.url, path: sc.gateway.path, body: bodies, pid: cached.child.pid!, connections: 32, seconds: quick ? 2 : SECONDS, gateway: true });
      const after = cacheCounts(await metricsText(cached.url));
      row.cache = Object.fromEntries(Object.entries(after).map(([k, v]) => [k, { hits: v.hits - (before[k]?.hits ?? 0), misses: v.misses - (before[k]?.misses ?? 0) }]));
      results.push(row);
    }
  } finally {
    naive?.child.kill('SIGKILL');
    await gw.stop().catch(() => undefined);
    await cached?.stop().catch(() => undefined);
    rmSync(models, { recursive: true, force: true });
  }

  const closed = (scenario: string, server: string, c: number) => results.find((r) => r.scenario === scenario && r.server === server && r.concurrency === c);
  const ips = (scenario: string, server: string, c: number) => (closed(scenario, server, c)?.items_per_s as number) ?? NaN;
  const ratio = (a: number, b: number) => Number((a / b).toFixed(2));
  const summary = {
    embeddings_c32_vs_naive: ratio(ips('embeddings', 'gateway', 32), ips('embeddings', 'naive', 32)),
    embeddings_c32_vs_ceiling: ratio(ips('embeddings', 'gateway', 32), ceilings.embeddings.items_per_s),
    qa300_c32_vs_naive: ratio(ips('qa300', 'gateway', 32), ips('qa300', 'naive', 32)),
    qa300_c32_vs_ceiling: ratio(ips('qa300', 'gateway', 32), ceilings.qa300.items_per_s),
    boot_ready_s: Number(bootReadyS.toFixed(2)),
    embeddings_c1_p99_ms: closed('embeddings', 'gateway', 1)?.p99_ms as number,
    embeddings_c1_p99_budget_ms: Number((ceilings.embeddings.single_p99_ms + 5).toFixed(2)),
    qa300_c1_p99_ms: closed('qa300', 'gateway', 1)?.p99_ms as number,
    qa300_c1_p99_budget_ms: Number((ceilings.qa300.single_p99_ms + 5).toFixed(2)),
  };
  const out = { started: started.toISOString(), finished: new Date().toISOString(), quick, seconds_per_point: SECONDS, machine: { ...machineAtStart, loadavg_at_end: loadNow() }, summary, results };
  mkdirSync('bench/results', { recursive: true });
  const stamp = started.toISOString().replace(/[:.]/g, '-');
  writeFileSync(`bench/results/${stamp}.json`, JSON.stringify(out, null, 1));
  writeFileSync('bench/results/latest.json', JSON.stringify(out, null, 1));
  render();
  console.log(JSON.stringify(summary));
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
