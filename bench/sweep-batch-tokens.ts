/** The gateway at several inference.maxBatchTokens values, side by side: QA on 300 words and embeddings at concurrency 32. `node --import tsx bench/sweep-batch-tokens.ts 512,1024,4096` */
import { spawn } from 'node:child_process';
import { DEMO_MODELS, demoZip } from '../test/helpers/app.ts';
import { startGateway } from '../test/helpers/gateway-process.ts';
const ctx = `The curl package is maintained by the Debian curl Maintainers. ` + Array.from({ length: 290 }, (_, i) => ['package', 'library', 'tool', 'server', 'the', 'a', 'data', 'network', 'files', 'and'][(i * 7 + 1) % 10]).join(' ');
const load = (url: string, path: string, body: unknown, c: number) => new Promise<{ rps: number; p99: number }>((res) => {
  const ch = spawn(process.execPath, ['--import', 'tsx', 'test/stress/load.ts', JSON.stringify({ url: url + path, method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), idReplacement: true, connections: c, duration: 4 })]);
  let out = ''; ch.stdout.on('data', (d) => (out += d)); ch.on('exit', () => { const r = JSON.parse(out); res({ rps: r.requests.average, p99: r.latency.p99 }); });
});
for (const budget of (process.argv[2] ?? '512,1024,4096').split(',')) {
  const g = await startGateway({ GATEWAY_MODELS: JSON.stringify(DEMO_MODELS.map((name) => ({ name, source: demoZip(name) }))), GATEWAY_CACHE__EMBEDDING_BYTES: '0', GATEWAY_CACHE__RESULT_BYTES: '0', GATEWAY_INFERENCE__MAX_BATCH_TOKENS: budget, GATEWAY_SERVER__LOG_LEVEL: 'warn' });
  await g.waitReady();
  await load(g.url, '/v1/qa', { question: 'Who maintains curl [<id>]?', context: ctx }, 8);
  const qa = await load(g.url, '/v1/qa', { question: 'Who maintains curl [<id>]?', context: ctx }, 32);
  const em = await load(g.url, '/v1/embeddings', { input: 'sentence [<id>] about a package' }, 32);
  console.log(budget, 'qa300 c32', qa, 'emb c32', em);
  await g.stop();
}
