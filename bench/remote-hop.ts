/**
 * The cost of the remote hop: gateway A serving sts-demo and qa-demo itself, against gateway B whose same
 * models run on A's /v2 endpoint (backend kind kserve-v2), measured side by side in one run with the bench's
 * load generator (bench/load.ts, its own process at nice 10). Both processes are up for the whole run; the
 * client talks to A for "A alone" and to B for "B over A". Caches are off on both (every request unique anyway).
 *
 *   npm run bench:remote                  # c1 latency and c32 throughput, embeddings and QA-300; writes bench/results/remote-hop.json
 *   npm run bench:remote -- --seconds 10  # longer runs
 *
 * On one 2-core machine B's own work (HTTP, tokenization, pooling) competes with A's inference for the same
 * cores; on separate machines the throughput cost would be lower and the latency cost about the same.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { setPriority } from 'node:os';
import { parseArgs } from 'node:util';
import { startGateway, type GatewayProcess } from '../test/helpers/gateway-process.ts';
import { histogram } from '../test/helpers/remote.ts';
import { QA_300 } from './inputs.ts';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '6' }, out: { type: 'string', default: 'bench/results/remote-hop.json' } } });
const SECONDS = Number(values.seconds);
const SCENARIOS = [
  { name: 'embeddings', model: 'sts-demo', path: '/v1/embeddings', body: { input: 'sentence [<id>] about a package' } },
  { name: 'qa300', model: 'qa-demo', path: '/v1/qa', body: { question: 'Who maintains curl [<id>]?', context: QA_300 } },
];

interface LoadResult {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
}

function load(url: string, path: string, body: unknown, connections: number, seconds: number): Promise<LoadResult> {
  const opts = { url: `${url}${path}`, method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), idReplacement: true, connections, duration: seconds, timeout: 60 };
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'bench/load.ts', JSON.stringify(opts)], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      setPriority(child.pid!, 10);
    } catch {
      // not permitted: measure at equal priority
    }
    const timer = setTimeout(() => child.kill('SIGKILL'), (seconds + 90) * 1000);
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`load generator exited ${code}`));
      const r = JSON.parse(out) as { requests: number; seconds: number; p50: number; p99: number; errors: number; timeouts: number; non2xx: number };
      resolve({ rps: Number((r.requests / r.seconds).toFixed(1)), p50: r.p50, p99: r.p99, errors: r.errors + r.timeouts, non2xx: r.non2xx });
    });
  });
}

const metrics = async (g: GatewayProcess) => histogram(await (await fetch(`${g.url}/metrics`)).text(), 'gateway_batch_size', 'model');
const env = { GATEWAY_SERVER__LOG_LEVEL: 'warn', GATEWAY_SERVER__LOG_FORMAT: 'json', GATEWAY_CACHE__EMBEDDING_BYTES: '0', GATEWAY_CACHE__RESULT_BYTES: '0' };
const models = SCENARIOS.map((s) => ({ name: s.model, source: `models/${s.model}.zip`, default: true }));

const a = await startGateway({ ...env, GATEWAY_MODELS: JSON.stringify(models) });
await a.waitReady(120_000);
const b = await startGateway({ ...env, GATEWAY_INFERENCE__WORKERS: '1', GATEWAY_MODELS: JSON.stringify(models.map((m) => ({ ...m, backend: { kind: 'kserve-v2', url: a.url } }))) });
await b.waitReady(120_000);

const rows: Record<string, unknown>[] = [];
try {
  for (const s of SCENARIOS) {
    // Warm both paths once (JIT, connections), then measure A alone and B over A back to back.
    await load(a.url, s.path, s.body, 8, 1);
    await load(b.url, s.path, s.body, 8, 1);
    for (const c of [1, 32]) {
      const aRes = await load(a.url, s.path, s.body, c, SECONDS);
      const before = await metrics(a);
      const bBefore = await metrics(b);
      const bRes = await load(b.url, s.path, s.body, c, SECONDS);
      const after = await metrics(a);
      const bAfter = await metrics(b);
      const mean = (x: typeof after, y: typeof before) => Number(((x[s.model].sum - (y[s.model]?.sum ?? 0)) / Math.max(1, x[s.model].count - (y[s.model]?.count ?? 0))).toFixed(2));
      const row = {
        scenario: s.name,
        concurrency: c,
        a_alone: aRes,
        b_over_a: bRes,
        added_p50_ms: Number((bRes.p50 - aRes.p50).toFixed(1)),
        added_p99_ms: Number((bRes.p99 - aRes.p99).toFixed(1)),
        throughput_ratio: Number((bRes.rps / aRes.rps).toFixed(3)),
        mean_batch_on_b: mean(bAfter, bBefore),
        mean_batch_on_a_during_b: mean(after, before),
      };
      rows.push(row);
      console.log(
        `${s.name.padEnd(10)} c${String(c).padEnd(3)} A alone: ${aRes.rps}/s p50 ${aRes.p50} p99 ${aRes.p99} ms | B over A: ${bRes.rps}/s p50 ${bRes.p50} p99 ${bRes.p99} ms | ` +
          `+${row.added_p50_ms}/+${row.added_p99_ms} ms, x${row.throughput_ratio} throughput; batches B ${row.mean_batch_on_b}, A ${row.mean_batch_on_a_during_b}` +
          (aRes.errors + aRes.non2xx + bRes.errors + bRes.non2xx ? ` ERRORS a=${aRes.errors}/${aRes.non2xx} b=${bRes.errors}/${bRes.non2xx}` : ''),
      );
    }
  }
} finally {
  await Promise.all([b.stop(), a.stop()]);
}
mkdirSync('bench/results', { recursive: true });
writeFileSync(values.out!, `${JSON.stringify({ at: new Date().toISOString(), seconds: SECONDS, node: process.version, rows }, null, 2)}\n`);
console.log(`wrote ${values.out}`);
