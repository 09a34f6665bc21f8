/**
 * `npm run bench` (add `-- --quick` for a run under 90 s): the gateway against the in-process ceiling and a
 * naive transformers.js server, side by side in one run on this machine. Writes bench/results/<time>.json,
 * bench/results/latest.json and docs/performance.md with an SVG plot (docs/performance.svg).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir, loadavg } from 'node:os';
import { join } from 'node:path';
import { DEMO_MODELS, demoZip } from '../test/helpers/app.ts';
import { freePort, startGateway, type GatewayProcess } from '../test/helpers/gateway-process.ts';
import { unzipTo } from '../test/helpers/unzip.ts';
import { ceiling } from './ceiling.ts';
import { renderDocs } from './report.ts';

const quick = process.argv.includes('--quick');
const CONCURRENCY = quick ? [1, 32] : [1, 8, 32, 128];
const SECONDS = quick ? 4 : 8;

const words = (n: number, seed: number) => Array.from({ length: n }, (_, i) => ['package', 'library', 'tool', 'server', 'the', 'a', 'data', 'network', 'files', 'and'][(i * 7 + seed) % 10]).join(' ');
const QA_300 = `The curl package is maintained by the Debian curl Maintainers. ${words(290, 1)}`;
const QA_3000 = `${words(2980, 2)} The zsh package is maintained by Debian Zsh Maintainers.`;
const ESSAY_400 = `Public libraries matter. ${words(395, 3)}`;

interface Scenario {
  name: string;
  items: number;
  gateway: { path: string; body: unknown };
  naive?: { path: string; body: unknown };
  ceiling?: { model: string; kind: 'single' | 'pair'; item: { a: string; b?: string } };
  full?: boolean;
}

// [<id>] makes each request unique (no cache can answer); the ceiling runs the same texts.
const SCENARIOS: Scenario[] = [
  { name: 'embeddings', items: 1, gateway: { path: '/v1/embeddings', body: { input: 'sentence [<id>] about a package' } }, naive: { path: '/embed', body: { input: 'sentence [<id>] about a package' } }, ceiling: { model: 'sts-demo', kind: 'single', item: { a: 'sentence 12345678 about a package' } } },
  { name: 'qa300', items: 1, gateway: { path: '/v1/qa', body: { question: 'Who maintains curl [<id>]?', context: QA_300 } }, naive: { path: '/qa', body: { question: 'Who maintains curl [<id>]?', context: QA_300 } }, ceiling: { model: 'qa-demo', kind: 'pair', item: { a: 'Who maintains curl 12345678?', b: QA_300 } } },
  { name: 'similarity', items: 1, gateway: { path: '/v1/similarity', body: { sentence_1: 'a man plays [<id>] guitar', sentence_2: 'someone plays music [<id>]' } }, full: true },
  { name: 'qa3000', items: 1, gateway: { path: '/v1/qa', body: { question: 'Who maintains zsh [<id>]?', context: QA_3000 } }, naive: { path: '/qa', body: { question: 'Who maintains zsh [<id>]?', context: QA_3000 } }, full: true },
  { name: 'classify16', items: 16, gateway: { path: '/v1/classify', body: { inputs: Array.from({ length: 16 }, (_, i) => `a text editor ${i} [<id>]`) } }, naive: { path: '/classify', body: { inputs: Array.from({ length: 16 }, (_, i) => `a text editor ${i} [<id>]`) } }, full: true },
  { name: 'essay400', items: 1, gateway: { path: '/v1/essays/score', body: { essay: `[<id>] ${ESSAY_400}` } }, full: true },
];

function procStat(pid: number): { cpuS: number; rssMb: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  const ticks = Number(stat[11]) + Number(stat[12]);
  const rss = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
  return { cpuS: ticks / 100, rssMb: Math.round(rss) };
}

/** autocannon in its own process (bench/load.ts), so the load generator never shares the server's event loop. */
function load(url: string, path: string, body: unknown, connections: number): Promise<{ rps: number; p50: number; p95: number; p99: number; errors: number; non2xx: number }> {
  const opts = { url: `${url}${path}`, method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), idReplacement: true, connections, duration: SECONDS, timeout: 60 };
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/stress/load.ts', JSON.stringify(opts)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`load generator exited ${code}`));
      const r = JSON.parse(out);
      resolve({ rps: r.requests.average, p50: r.latency.p50, p95: r.latency.p97_5 ?? r.latency.p90, p99: r.latency.p99, errors: r.errors + r.timeouts, non2xx: r.non2xx });
    });
  });
}

async function batchHistogram(url: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/gateway_batch_size_bucket\{le="([^"]+)",model="[^"]+"\} (\d+)/g)) out[m[1]] = (out[m[1]] ?? 0) + Number(m[2]);
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
  throw new Error('naive server did not start');
}

async function main() {
  const started = new Date();
  const results: Record<string, unknown>[] = [];
  const models = mkdtempSync(join(tmpdir(), 'bench-models-'));
  for (const m of DEMO_MODELS) await unzipTo(demoZip(m), join(models, m), { 'model.onnx': 'onnx/model.onnx' });
  const maxLen = (m: string) => JSON.parse(readFileSync(join(models, m, 'gateway.json'), 'utf8')).max_length as number;
  const scenarios = SCENARIOS.filter((s) => !quick || !s.full);

  // 1. The ceiling, per scenario that has one.
  const ceilings: Record<string, Awaited<ReturnType<typeof ceiling>>> = {};
  for (const s of scenarios) {
    if (!s.ceiling) continue;
    const items = Array.from({ length: quick ? 400 : 1200 }, (_, i) => ({ a: s.ceiling!.item.a.replace('12345678', String(10_000_000 + i)), b: s.ceiling!.item.b }));
    ceilings[s.name] = await ceiling({ onnx: join(models, s.ceiling.model, 'onnx', 'model.onnx'), tokenizer: join(models, s.ceiling.model, 'tokenizer.json'), maxLength: maxLen(s.ceiling.model), kind: s.ceiling.kind, items, batches: quick ? [1, 16] : [1, 4, 16, 32] });
    console.log(`ceiling ${s.name}: ${JSON.stringify(ceilings[s.name])}`);
  }

  // 2. The gateway (caches off: every body is unique anyway).
  const t0 = performance.now();
  const gw: GatewayProcess = await startGateway({ GATEWAY_MODELS: JSON.stringify(DEMO_MODELS.map((name) => ({ name, source: demoZip(name) }))), GATEWAY_CACHE__EMBEDDING_BYTES: '0', GATEWAY_CACHE__RESULT_BYTES: '0', GATEWAY_SERVER__LOG_LEVEL: 'warn' });
  await gw.waitReady(120_000);
  const bootReadyS = (performance.now() - t0) / 1000;
  const naive = await startNaive(models);
  try {
    for (const s of scenarios) {
      for (const [server, url, spec, pid] of [
        ['gateway', gw.url, s.gateway, gw.child.pid!],
        ['naive', naive.url, s.naive, naive.child.pid!],
      ] as const) {
        if (!spec) continue;
        await load(url, spec.path, spec.body, 4); // warm the path
        for (const c of CONCURRENCY) {
          const hist0 = server === 'gateway' ? await batchHistogram(url) : {};
          const before = procStat(pid);
          const w0 = performance.now();
          const r = await load(url, spec.path, spec.body, c);
          const wall = (performance.now() - w0) / 1000;
          const after = procStat(pid);
          const hist1 = server === 'gateway' ? await batchHistogram(url) : {};
          const row = { scenario: s.name, server, concurrency: c, rps: Math.round(r.rps * 10) / 10, items_per_s: Math.round(r.rps * s.items), p50_ms: r.p50, p95_ms: r.p95, p99_ms: r.p99, errors: r.errors, non2xx: r.non2xx, cpu_cores: Number(((after.cpuS - before.cpuS) / wall).toFixed(2)), rss_mb: after.rssMb, batch_histogram: server === 'gateway' ? Object.fromEntries(Object.entries(hist1).map(([k, v]) => [k, v - (hist0[k] ?? 0)])) : undefined };
          results.push(row);
          console.log(JSON.stringify(row));
        }
      }
      if (ceilings[s.name]) results.push({ scenario: s.name, server: 'ceiling', ...ceilings[s.name] });
    }
  } finally {
    await gw.stop();
    naive.child.kill('SIGKILL');
  }

  const rps = (scenario: string, server: string, c: number) => (results.find((r) => r.scenario === scenario && r.server === server && r.concurrency === c)?.items_per_s as number) ?? NaN;
  const ratio = (a: number, b: number) => Number((a / b).toFixed(2));
  const summary = {
    embeddings_c32_vs_naive: ratio(rps('embeddings', 'gateway', 32), rps('embeddings', 'naive', 32)),
    embeddings_c32_vs_ceiling: ratio(rps('embeddings', 'gateway', 32), ceilings.embeddings?.items_per_s),
    qa300_c32_vs_naive: ratio(rps('qa300', 'gateway', 32), rps('qa300', 'naive', 32)),
    qa300_c32_vs_ceiling: ratio(rps('qa300', 'gateway', 32), ceilings.qa300?.items_per_s),
    boot_ready_s: Number(bootReadyS.toFixed(2)),
    naive_boot_ready_s: Number(naive.bootS.toFixed(2)),
  };
  const machine = { cpus: cpus().length, cpu: cpus()[0]?.model, memory_gb: Math.round(totalmem() / 1024 ** 3), node: process.version, loadavg_at_start: loadavg() };
  const out = { started: started.toISOString(), quick, seconds_per_point: SECONDS, machine, summary, results };
  mkdirSync('bench/results', { recursive: true });
  const stamp = started.toISOString().replace(/[:.]/g, '-');
  writeFileSync(`bench/results/${stamp}.json`, JSON.stringify(out, null, 1));
  writeFileSync('bench/results/latest.json', JSON.stringify(out, null, 1));
  renderDocs(out as unknown as Parameters<typeof renderDocs>[0]);
  console.log(JSON.stringify(summary));
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
