/**
 * Boot-to-ready of the gateway with every demo model, from the local zips and from a real S3 server
 * (s3rver), cold (empty model cache) and warm (same cache, same sha256: nothing downloaded), plus resident
 * memory after boot. `node --import tsx scripts/measure-boot.ts [runs]`; prints JSON.
 */
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { createBucket, startS3, upload } from '../test/helpers/s3.ts';
import { DEMO_MODELS, demoZip } from '../test/helpers/app.ts';
import { startGateway } from '../test/helpers/gateway-process.ts';

const runs = Number(process.argv[2] ?? 3);
const rssMb = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function bootOnce(env: Record<string, string>) {
  const t0 = performance.now();
  const g = await startGateway(env);
  await g.waitReady(120_000);
  const seconds = (performance.now() - t0) / 1000;
  const rss = rssMb(g.child.pid!);
  await g.stop();
  return { seconds, rss, storeDir: g.storeDir };
}

const local = { GATEWAY_MODELS: JSON.stringify(DEMO_MODELS.map((name) => ({ name, source: demoZip(name) }))), GATEWAY_SERVER__LOG_LEVEL: 'warn' };
const s3 = await startS3();
await createBucket(s3.client, 'models');
const shas: Record<string, string> = {};
for (const name of DEMO_MODELS) {
  const zip = readFileSync(demoZip(name));
  shas[name] = createHash('sha256').update(zip).digest('hex');
  await upload(s3.client, 'models', `${name}.zip`, zip);
}
const fromS3 = {
  GATEWAY_MODELS: JSON.stringify(DEMO_MODELS.map((name) => ({ name, source: `s3://models/${name}.zip`, sha256: shas[name] }))),
  GATEWAY_STORE__S3__ENDPOINT: s3.endpoint,
  AWS_ACCESS_KEY_ID: 'S3RVER',
  AWS_SECRET_ACCESS_KEY: 'S3RVER',
  AWS_REGION: 'us-east-1',
  GATEWAY_SERVER__LOG_LEVEL: 'warn',
};
const result: Record<string, { seconds: number[]; rss_mb: number[] }> = {};
for (const [label, env] of Object.entries({ local, s3: fromS3 })) {
  for (const kind of ['cold', 'warm']) result[`${label}_${kind}`] = { seconds: [], rss_mb: [] };
  for (let i = 0; i < runs; i++) {
    const cold = await bootOnce(env);
    const warm = await bootOnce({ ...env, GATEWAY_STORE__DIR: cold.storeDir });
    for (const [kind, r] of [['cold', cold], ['warm', warm]] as const) {
      result[`${label}_${kind}`].seconds.push(Number(r.seconds.toFixed(2)));
      result[`${label}_${kind}`].rss_mb.push(Math.round(r.rss));
    }
  }
}
await s3.close();
console.log(JSON.stringify({ runs, median_seconds: Object.fromEntries(Object.entries(result).map(([k, v]) => [k, median(v.seconds)])), median_rss_mb: Object.fromEntries(Object.entries(result).map(([k, v]) => [k, median(v.rss_mb)])), all: result }, null, 1));
