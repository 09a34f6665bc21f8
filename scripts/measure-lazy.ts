/**
 * The cost of a lazy model, measured: for each bundled demo model loaded lazily, the latency of its first
 * request (which fetches, unpacks, loads and warms it) against the median of the next 20, and the memory it
 * took. `node --import tsx scripts/measure-lazy.ts` (docs/models-at-run-time.md has the figures).
 */
import Fastify from 'fastify';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import app, { serverOptions } from '../src/app.ts';
import { loadConfig } from '../src/config/load.ts';

const MODELS: Record<string, { url: string; body: object }> = {
  'qa-demo': { url: '/v1/qa', body: { question: 'Who maintains the package?', context: 'The curl package is maintained by the Debian curl Maintainers.' } },
  'sts-demo': { url: '/v1/embeddings', body: { input: 'A man is playing a guitar.' } },
  'classify-demo': { url: '/v1/classify', body: { inputs: 'a puzzle game with colourful blocks' } },
  'essay-demo': { url: '/v1/essays/score', body: { essay: 'The package provides a small web server. It is written in C and maintained by a team.' } },
};

const models = Object.keys(MODELS).map((name) => ({ name, source: resolve('models', `${name}.zip`), load: 'lazy' }));
const config = loadConfig({ env: {}, overrides: { store: { dir: mkdtempSync(join(tmpdir(), 'lazy-')) }, server: { logLevel: 'silent' }, models, cache: { embeddingBytes: 0, resultBytes: 0 } } });
const fastify = Fastify({ ...serverOptions(config), logger: false });
await fastify.register(app, { config });
await fastify.ready();
await fastify.models.boot();
const rows: string[] = ['| model | first request (load) ms | later requests p50 ms | memory_mb |', '| --- | --- | --- | --- |'];
for (const [name, { url, body }] of Object.entries(MODELS)) {
  const t0 = performance.now();
  const first = await fastify.inject({ method: 'POST', url, payload: { ...body, model: name } });
  const firstMs = performance.now() - t0;
  if (first.statusCode !== 200) throw new Error(`${name}: ${first.statusCode} ${first.body}`);
  const later: number[] = [];
  for (let i = 0; i < 20; i++) {
    const t = performance.now();
    await fastify.inject({ method: 'POST', url, payload: { ...body, model: name } });
    later.push(performance.now() - t);
  }
  later.sort((a, b) => a - b);
  rows.push(`| ${name} | ${firstMs.toFixed(0)} | ${later[10].toFixed(1)} | ${fastify.models.status(name)?.memory_mb} |`);
}
await fastify.close();
process.stdout.write(`${rows.join('\n')}\n`);
