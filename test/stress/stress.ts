/**
 * The heavier reliability checks (`npm run test:stress`, run by CI too; `-- --soak` adds the 10-minute
 * soak). A real gateway process with the demo models; load from autocannon in this process; liveness
 * probed from a separate process so its latencies are not the load generator's; the load generator runs at
 * nice 10, as a remote client would not compete for the gateway's cores. Prints the figures as JSON,
 * writes them to test-output/stress.json, and exits non-zero when a check fails.
 *
 *   overload: measure capacity (closed loop, 32 connections), then 4x that rate open-loop for 30 s:
 *             no crash, only 200/429/503, /health/live p99 within 50 ms (STRESS_LIVE_P99_MS), admitted
 *             requests all answered.
 *   soak:     a steady load over every task route for 10 minutes (a quarter of the embeddings capacity,
 *             or STRESS_SOAK_RPS): every request answered 200, resident memory after warm-up grows < 5 %,
 *             no latency drift (p50 of the last minute within 1.5x of the second minute).
 */
import type autocannon from 'autocannon';
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { DEMO_MODELS, demoZip } from '../helpers/app.ts';
import { startGateway, type GatewayProcess } from '../helpers/gateway-process.ts';

const soak = process.argv.includes('--soak');
const OVERLOAD_S = Number(process.env.STRESS_OVERLOAD_S ?? 30);
const SOAK_S = Number(process.env.STRESS_SOAK_S ?? 600);
/**
 * The liveness bound under overload: 50 ms is the target (docs/reliability.md reports the measured p99).
 * CI sets a looser bound (.ci/run): on its two shared cores the p99 of the same build moved between 31 and
 * 62 ms from run to run, while the regression this guards against, a blocked event loop, costs seconds.
 */
const LIVE_P99_MS = Number(process.env.STRESS_LIVE_P99_MS ?? 50);
/** Soak rate in requests/s; half the measured capacity when unset. */
const SOAK_RPS = process.env.STRESS_SOAK_RPS ? Number(process.env.STRESS_SOAK_RPS) : undefined;
const failures: string[] = [];
let checks = 0;
const check = (ok: boolean, what: string) => {
  checks++;
  if (!ok) failures.push(what);
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
};

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

const percentile = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] : NaN;
};

/** Probes /health/live every 50 ms from its own process; resolves with the latencies (ms) when stopped. */
function probeLiveness(url: string) {
  const code = `
    const lat = []; let stop = false;
    process.on('SIGTERM', () => { stop = true; });
    (async () => {
      while (!stop && lat.length < 100000) {
        const t0 = performance.now();
        try { const r = await fetch(${JSON.stringify(url)} + '/health/live'); await r.arrayBuffer(); lat.push(r.status === 200 ? performance.now() - t0 : -1); }
        catch { lat.push(-1); }
        await new Promise((r) => setTimeout(r, 50));
      }
      process.stdout.write(JSON.stringify(lat));
    })();`;
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  return {
    stop: () =>
      new Promise<number[]>((resolve) => {
        child.once('exit', () => resolve(out ? (JSON.parse(out) as number[]) : []));
        child.kill('SIGTERM');
      }),
  };
}

const QA_CONTEXT = 'The curl package is maintained by the Debian curl Maintainers. It is a command line tool for transferring data with URL syntax, in the web section. ';

/** Every task route in turn, each body made unique by autocannon's id so no cache answers. */
function mixed(url: string, opts: { connections: number; duration: number; overallRate?: number }) {
  const json = { 'content-type': 'application/json' };
  return niced({
    url,
    connections: opts.connections,
    duration: opts.duration,
    overallRate: opts.overallRate,
    idReplacement: true,
    timeout: 30,
    requests: [
      { method: 'POST', path: '/v1/embeddings', headers: json, body: JSON.stringify({ input: ['soak [<id>] sentence one', 'soak [<id>] sentence two'] }) },
      { method: 'POST', path: '/v1/qa', headers: json, body: JSON.stringify({ question: 'Who maintains curl [<id>]?', context: QA_CONTEXT.repeat(4) }) },
      { method: 'POST', path: '/v1/classify', headers: json, body: JSON.stringify({ inputs: ['a text editor [<id>]', 'a puzzle game [<id>]'] }) },
      { method: 'POST', path: '/v1/similarity', headers: json, body: JSON.stringify({ sentence_1: 'a man plays [<id>] guitar', sentence_2: 'someone plays music [<id>]' }) },
      { method: 'POST', path: '/v1/essays/score', headers: json, body: JSON.stringify({ essay: `Libraries matter [<id>]. ${QA_CONTEXT}`, model: 'essay-demo-bands' }) },
    ],
  });
}

/** Runs autocannon in a child process at nice 10 (see load.ts) and returns its result. */
function niced(opts: autocannon.Options): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    const child = spawn('nice', ['-n', '10', process.execPath, '--import', 'tsx', 'test/stress/load.ts', JSON.stringify(opts)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve(JSON.parse(out) as autocannon.Result) : reject(new Error(`load generator exited with ${code}`))));
  });
}

function load(url: string, opts: { connections: number; duration: number; overallRate?: number }) {
  return niced({
    url: `${url}/v1/embeddings`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ input: 'stress sentence number [<id>] about package maintenance and its dependencies' }),
    idReplacement: true,
    connections: opts.connections,
    duration: opts.duration,
    overallRate: opts.overallRate,
    timeout: 30,
  });
}

async function main() {
  mkdirSync('test-output', { recursive: true });
  const gw: GatewayProcess = await startGateway({
    GATEWAY_MODELS: JSON.stringify(DEMO_MODELS.map((name) => ({ name, source: demoZip(name) }))),
    GATEWAY_CACHE__EMBEDDING_BYTES: '0',
    GATEWAY_CACHE__RESULT_BYTES: '0',
    GATEWAY_SERVER__LOG_LEVEL: 'warn',
    // A queue short enough that 256 connections at 4x capacity overflow it (the default, 2048, would absorb them).
    GATEWAY_INFERENCE__QUEUE_CAPACITY: '128',
  });
  const figures: Record<string, unknown> = {};
  try {
    await gw.waitReady();
    const pid = gw.child.pid!;
    await load(gw.url, { connections: 8, duration: 3 }); // warm-up
    const cap = await load(gw.url, { connections: 32, duration: 5 });
    const capacity = cap.requests.average;
    figures.capacity_rps = capacity;
    console.log(`capacity (embeddings, 32 connections): ${capacity.toFixed(0)} req/s, p99 ${cap.latency.p99} ms`);

    const probe = probeLiveness(gw.url);
    const over = await load(gw.url, { connections: 256, duration: OVERLOAD_S, overallRate: Math.round(capacity * 4) });
    const live = await probe.stop();
    const codes = Object.keys(over.statusCodeStats ?? {}).map(Number);
    const liveOk = live.filter((x) => x >= 0);
    figures.overload = {
      offered_rps: Math.round(capacity * 4),
      seconds: OVERLOAD_S,
      answered_rps: over.requests.average,
      status_codes: over.statusCodeStats,
      errors: over.errors,
      timeouts: over.timeouts,
      live_probes: live.length,
      live_failed: live.length - liveOk.length,
      live_p50_ms: percentile(liveOk, 50),
      live_p99_ms: percentile(liveOk, 99),
      live_max_ms: Math.max(...liveOk),
      rss_mb: rssMb(pid),
    };
    console.log(JSON.stringify(figures.overload));
    check(gw.child.exitCode === null, 'the gateway is still running after 4x overload');
    check(codes.every((c) => [200, 429, 503].includes(c)), `only 200/429/503 under overload (got ${codes.join(', ')})`);
    check(codes.includes(200) && codes.includes(503), 'under overload some requests are served and the excess gets 503');
    check(over.errors === 0 && over.timeouts === 0, `no connection errors or timeouts (errors ${over.errors}, timeouts ${over.timeouts})`);
    check(live.length > 0 && liveOk.length === live.length, `every /health/live probe answered 200 (${liveOk.length}/${live.length})`);
    check(percentile(liveOk, 99) <= LIVE_P99_MS, `/health/live p99 ${percentile(liveOk, 99).toFixed(1)} ms ≤ ${LIVE_P99_MS} ms under overload`);
    const after = await fetch(`${gw.url}/v1/embeddings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ input: 'after the storm' }) });
    check(after.status === 200, 'serves normally after the overload');

    if (soak) {
      const samples: { t: number; rss: number; p50: number; p99: number; rps: number; non2xx: number }[] = [];
      const t0 = Date.now();
      for (let i = 0; (Date.now() - t0) / 1000 < SOAK_S && i < 1000; i++) {
        const r = await mixed(gw.url, { connections: 8, duration: 10, overallRate: SOAK_RPS ?? Math.round(capacity / 4) });
        samples.push({ t: Math.round((Date.now() - t0) / 1000), rss: rssMb(pid), p50: r.latency.p50, p99: r.latency.p99, rps: r.requests.average, non2xx: r.non2xx });
        console.log(JSON.stringify(samples.at(-1)));
      }
      const warm = samples.filter((s) => s.t >= 60);
      const rss0 = warm[0]?.rss ?? NaN;
      const rss1 = Math.max(...warm.map((s) => s.rss));
      const early = percentile(samples.filter((s) => s.t > 60 && s.t <= 120).map((s) => s.p50), 50);
      const late = percentile(samples.filter((s) => s.t > SOAK_S - 60).map((s) => s.p50), 50);
      figures.soak = { seconds: SOAK_S, rss_after_warmup_mb: rss0, rss_max_mb: rss1, growth_pct: ((rss1 - rss0) / rss0) * 100, p50_second_minute_ms: early, p50_last_minute_ms: late, samples };
      check(samples.every((x) => x.non2xx === 0), 'every soak request answered 200');
      check((rss1 - rss0) / rss0 < 0.05, `resident memory growth after warm-up ${(((rss1 - rss0) / rss0) * 100).toFixed(1)} % < 5 %`);
      check(late <= early * 1.5 + 1, `no latency drift: p50 ${early} ms in minute 2, ${late} ms in the last minute`);
    }
  } finally {
    const code = await gw.stop();
    figures.exit_code = code;
    writeFileSync('test-output/stress.json', JSON.stringify(figures, null, 2));
  }
  check(figures.exit_code === 0, 'the gateway exits 0 on SIGTERM after the run');
  console.log(`${failures.length === 0 ? 'stress passed' : `stress FAILED: ${failures.length} check(s)`}`);
  console.log(`stress: ${checks - failures.length} passed, ${failures.length} failed`);
  process.exit(failures.length ? 1 : 0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
