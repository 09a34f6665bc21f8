/**
 * `node --import tsx bench/fill-wait.ts`: inference.fillWaitMs off (0) against on (FILL, default 2 ms), two
 * gateways side by side, rounds alternating between them: embeddings of short sentences on the MiniLM-shape
 * stand-in (speed-only, random weights) and on sts-demo, at concurrency 32 and 1. Prints items/s, server CPU
 * per item (all threads, /proc), p50/p99 and each point's batch-size histogram (Prometheus buckets le=1, 2, 4,
 * 8, 16, 32, ...). Env: FILL, ROUNDS (2), SECS (3), MS (models, comma-separated), CS (concurrencies).
 */
import { startGateway } from '../test/helpers/gateway-process.ts';
import { demoZip } from '../test/helpers/app.ts';
import { load, stopLoadGenerator } from './load-client.ts';
import { standIns } from './stand-ins.ts';
const shapes = await standIns(() => {});
const models = JSON.stringify([{ name: 'sts-demo', source: demoZip('sts-demo') }, { name: shapes.minilm.name, source: shapes.minilm.zip }]);
const env = { GATEWAY_SERVER__LOG_LEVEL: 'warn', GATEWAY_MODELS: models, GATEWAY_CACHE__EMBEDDING_BYTES: '0', GATEWAY_CACHE__RESULT_BYTES: '0' };
const gws = { off: await startGateway({ ...env, GATEWAY_INFERENCE__FILL_WAIT_MS: '0' }), on: await startGateway({ ...env, GATEWAY_INFERENCE__FILL_WAIT_MS: process.env.FILL ?? '2' }) };
await Promise.all(Object.values(gws).map((g) => g.waitReady(120000)));
const body = (m: string) => ({ input: 'sentence [<id>] about a package', model: m });
for (const m of (process.env.MS ?? `${shapes.minilm.name},sts-demo`).split(',')) for (const c of (process.env.CS ?? '32,1').split(',').map(Number)) for (let r = 0; r < Number(process.env.ROUNDS ?? 2); r++) for (const [k, g] of Object.entries(gws)) {
  await load(g.url, '/v1/embeddings', body(m), 4, 0.5);
  const h0 = (await (await fetch(g.url + '/metrics')).text()).split('\n').filter((l) => l.startsWith('gateway_batch_size_bucket') && l.includes(m)).map((l) => Number(l.split(' ').pop()));
  const x = await load(g.url, '/v1/embeddings', body(m), c, Number(process.env.SECS ?? 3), undefined, g.child.pid);
  const hist = (await (await fetch(g.url + '/metrics')).text()).split('\n').filter((l) => l.startsWith('gateway_batch_size_bucket') && l.includes(m)).map((l, i) => Number(l.split(' ').pop()) - h0[i]).join(',');
  console.log(`  batches by size (le 1,2,4,8,16,32,...): ${hist}`);
  console.log(m.padEnd(14), `c${c}`.padEnd(4), k.padEnd(4), 'items/s', Math.round(x.rps), 'cpu ms/item', ((x.server!.cpu_s * 1000) / x.requests).toFixed(3), 'p50', x.p50, 'p99', x.p99);
}
stopLoadGenerator();
await Promise.all(Object.values(gws).map((g) => g.stop()));
