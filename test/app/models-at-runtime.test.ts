/**
 * Models added, replaced and removed at run time (PUT / DELETE /v1/models/{name}), lazy models and the memory
 * budget, against the real demo models.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { craftZip } from '../helpers/zip-craft.ts';
import { readZip } from '../helpers/unzip.ts';
import { buildApp, demoZip, testConfig } from '../helpers/app.ts';
import { buildStandIn } from '../fixtures/stand-in-onnx.ts';

const ADMIN = 'admin-key-0123456789abcdef';
const TEXT = 'a puzzle game with colourful blocks';

/** classify-demo with its labels reversed and a new version: the same weights, answers that tell the versions apart. */
async function classifyV2(change: (files: Record<string, Buffer>) => void = () => undefined): Promise<string> {
  const files = await readZip(demoZip('classify-demo'));
  const g = JSON.parse(files['gateway.json'].toString());
  files['gateway.json'] = Buffer.from(JSON.stringify({ ...g, version: '3.0.0', labels: [...g.labels].reverse() }));
  change(files);
  const path = join(mkdtempSync(join(tmpdir(), 'v2-')), 'classify-v2.zip');
  writeFileSync(path, craftZip(Object.entries(files).map(([name, data]) => ({ name, data }))));
  return path;
}

let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

const admin = { authorization: `Bearer ${ADMIN}` };
const put = (name: string, body: object) => app!.inject({ method: 'PUT', url: `/v1/models/${name}`, headers: admin, payload: body });
const statusOf = async (name: string) => (await app!.inject({ url: `/v1/models/${name}`, headers: admin })).json();
const classify = (model: string) => app!.inject({ method: 'POST', url: '/v1/classify', headers: admin, payload: { inputs: TEXT, model } });
async function settle(name: string, until: (s: { state: string; update?: { state: string }; version?: string }) => boolean, timeout = 60_000) {
  await expect.poll(async () => until(await statusOf(name)), { timeout, interval: 100 }).toBe(true);
  return statusOf(name);
}

describe('replace', () => {
  it('swaps versions under 32 concurrent connections for 10 s with zero non-200 answers; answers switch to the new version, the old one is unloaded and its files freed', async () => {
    const config = testConfig({ models: [{ name: 'cls', source: demoZip('classify-demo') }], security: { apiKeys: [`admin:${ADMIN}`] } });
    app = await buildApp(config);
    const v1 = await statusOf('cls');
    const first = (await classify('cls')).json();
    const labelV1 = first.predictions[0].label;
    const source = await classifyV2();
    let stop = false;
    const answers: { status: number; version?: string; label?: string; started: number }[] = [];
    const loop = async () => {
      while (!stop) {
        const started = Date.now();
        const res = await classify('cls');
        const body = res.json();
        answers.push({ status: res.statusCode, version: body.model_version, label: body.predictions?.[0]?.label, started });
      }
    };
    const t0 = Date.now();
    const loops = Array.from({ length: 32 }, loop);
    await new Promise((r) => setTimeout(r, 2500));
    const accepted = await put('cls', { source });
    expect(accepted.statusCode).toBe(202);
    const s = await settle('cls', (x) => x.version !== v1.version && x.state === 'ready');
    const swappedAt = Date.now();
    await new Promise((r) => setTimeout(r, Math.max(0, 10_000 - (Date.now() - t0))));
    stop = true;
    await Promise.all(loops);

    expect(answers.filter((a) => a.status !== 200)).toEqual([]);
    expect(answers.length).toBeGreaterThan(100);
    const versions = new Set(answers.map((a) => a.version));
    expect(versions).toEqual(new Set([v1.version, s.version]));
    expect(s.version).toMatch(/^3\.0\.0\+/);
    // Each answer is its version's: the new one reads the same logits through reversed labels.
    const labels = JSON.parse((await readZip(demoZip('classify-demo')))['gateway.json'].toString()).labels as string[];
    const labelV2 = [...labels].reverse()[labels.indexOf(labelV1)];
    for (const a of answers) expect(a.label).toBe(a.version === v1.version ? labelV1 : labelV2);
    // Requests that started after the swap was reported are answered by the new version.
    expect(answers.filter((a) => a.started > swappedAt + 50 && a.version !== s.version)).toEqual([]);
    // The old version drains and is unloaded; its unpacked folder is freed.
    await expect.poll(async () => (await app!.inject('/metrics')).body, { timeout: 30_000 }).toMatch(/gateway_model_unloads_total\{model="cls",reason="replaced"\} 1/);
    expect(existsSync(join(config.store.dir, 'cls'))).toBe(false);
    expect(readdirSync(config.store.dir).filter((f) => f.startsWith('cls.r'))).toHaveLength(1);
    expect((await app.inject('/metrics')).body).toMatch(/gateway_model_loads_total\{model="cls",result="ok"\} 2/);
  }, 60_000);

  it.each([
    ['a bad sha256', async () => ({ source: await classifyV2(), sha256: 'a'.repeat(64) }), 'verifying', /sha256 mismatch/],
    ['a broken zip', async () => {
      const path = join(mkdtempSync(join(tmpdir(), 'broken-')), 'broken.zip');
      writeFileSync(path, Buffer.from('PK\u0003\u0004 this is not a zip at all'));
      return { source: path };
    }, 'unpacking', /./],
    ['a graph with wrong input names', async () => ({
      source: await classifyV2((files) => {
        files['model.onnx'] = Buffer.from(buildStandIn({ vocabSize: 8192, hidden: 16, layers: 1, heads: 2, intermediate: 32, maxPositions: 256, typeVocabSize: 2, head: { kind: 'classifier', labels: 10 }, renameInputs: { input_ids: 'ids' } }));
      }),
    }), 'loading', /ONNX inputs \["ids","attention_mask","token_type_ids"\] lack input_ids/],
  ])('a failed replacement (%s) leaves the old version serving and shows the step and cause', async (_label, entry, step, cause) => {
    const config = testConfig({ models: [{ name: 'cls', source: demoZip('classify-demo') }], security: { apiKeys: [`admin:${ADMIN}`] } });
    app = await buildApp(config);
    const before = await statusOf('cls');
    const answer = (await classify('cls')).json().predictions[0];
    expect((await put('cls', await entry())).statusCode).toBe(202);
    const s = await settle('cls', (x) => x.update?.state === 'failed');
    expect(s.update).toMatchObject({ state: 'failed', failed_step: step });
    expect(s.update.error).toMatch(cause);
    expect(s).toMatchObject({ state: 'ready', version: before.version });
    const again = await classify('cls');
    expect(again.statusCode).toBe(200);
    expect(again.json().predictions[0]).toEqual(answer);
    expect(again.json().model_version).toBe(before.version);
    // Nothing of the failed attempt stays on disk.
    expect(readdirSync(config.store.dir).filter((f) => f.startsWith('cls.r'))).toEqual([]);
    // A second attempt is accepted (the failed one is over) and this time succeeds.
    expect((await put('cls', { source: await classifyV2() })).statusCode).toBe(202);
    const ok = await settle('cls', (x) => x.state === 'ready' && !x.update && x.version !== before.version);
    expect(ok.version).toMatch(/^3\.0\.0\+/);
  }, 60_000);

  it('refuses a second PUT while one is loading with 409, and bad entries with 400', async () => {
    app = await buildApp(testConfig({ models: [{ name: 'cls', source: demoZip('classify-demo') }], security: { apiKeys: [`admin:${ADMIN}`] } }));
    expect((await put('cls', { source: await classifyV2() })).statusCode).toBe(202);
    const busy = await put('cls', { source: demoZip('classify-demo') });
    expect(busy.statusCode).toBe(409);
    expect(busy.json().error.code).toBe('conflict');
    expect((await put('cls', { source: '' })).statusCode).toBe(400);
    expect((await put('cls', { source: 'x.zip', load: 'sometimes' })).statusCode).toBe(400);
    expect((await put('bad name!', { source: 'x.zip' })).statusCode).toBe(400);
    await app.models.settled();
  });
});

describe('add and remove', () => {
  it('adds a model that boots while others serve, removes one: 404 naming the rest, in-flight requests finish, files freed', async () => {
    const config = testConfig({ models: [{ name: 'cls', source: demoZip('classify-demo') }], security: { apiKeys: [`admin:${ADMIN}`] } });
    app = await buildApp(config);
    const added = await put('sts', { source: demoZip('sts-demo') });
    expect(added.statusCode).toBe(202);
    expect(added.json().state).toMatch(/pending|downloading|verifying|unpacking|loading|warming/);
    // Meanwhile the other model serves.
    expect((await classify('cls')).statusCode).toBe(200);
    await settle('sts', (x) => x.state === 'ready');
    const embed = () => app!.inject({ method: 'POST', url: '/v1/embeddings', headers: admin, payload: { input: 'hello there', model: 'sts' } });
    expect((await embed()).statusCode).toBe(200);
    expect(existsSync(join(config.store.dir, 'sts'))).toBe(true);

    // Both workers held for a moment, so these requests are in flight (holding the model) when DELETE comes.
    await Promise.all(app.models.pool.slots().map((slot) => app!.models.pool.injectFault('stall', 800, slot)));
    const inFlight = Array.from({ length: 8 }, (_, i) => app!.inject({ method: 'POST', url: '/v1/embeddings', headers: admin, payload: { input: Array.from({ length: 16 }, (_, j) => `sentence ${i} ${j}`), model: 'sts' } }));
    await expect.poll(async () => (await statusOf('sts')).in_flight, { timeout: 10_000, interval: 5 }).toBe(8);
    const removed = await app.inject({ method: 'DELETE', url: '/v1/models/sts', headers: admin });
    expect(removed.statusCode).toBe(202);
    expect(removed.json().state).toBe('draining');
    const gone = await embed();
    expect(gone.statusCode).toBe(404);
    expect(gone.json().error.message).toMatch(/unknown model "sts"; sentence-similarity models: \(none\)/);
    expect((await app.inject({ method: 'POST', url: '/v1/classify', headers: admin, payload: { inputs: 'x', model: 'sts' } })).json().error.message).toContain('text-classification models: cls');
    for (const r of await Promise.all(inFlight)) expect(r.statusCode).toBe(200);
    await app.models.settled();
    expect((await app.inject({ url: '/v1/models/sts', headers: admin })).statusCode).toBe(404);
    expect(existsSync(join(config.store.dir, 'sts'))).toBe(false);
    expect((await app.inject('/metrics')).body).toMatch(/gateway_model_unloads_total\{model="sts",reason="removed"\} 1/);
    expect((await app.inject({ method: 'DELETE', url: '/v1/models/sts', headers: admin })).statusCode).toBe(404);
  });

  it('admin routes refuse infer and write keys (403) and no key (401)', async () => {
    const INFER = 'infer-key-0123456789abcdef';
    const WRITE = 'write-key-0123456789abcdef';
    app = await buildApp(testConfig({ models: [{ name: 'cls', source: demoZip('classify-demo') }], security: { apiKeys: [INFER, `write:${WRITE}`, `admin:${ADMIN}`] } }));
    for (const method of ['PUT', 'DELETE'] as const) {
      const call = (headers: Record<string, string>) => app!.inject({ method, url: '/v1/models/cls', headers, ...(method === 'PUT' ? { payload: { source: demoZip('classify-demo') } } : {}) });
      expect((await call({})).statusCode).toBe(401);
      expect((await call({ authorization: `Bearer ${INFER}` })).statusCode).toBe(403);
      expect((await call({ authorization: `Bearer ${WRITE}` })).statusCode).toBe(403);
    }
    expect((await app.inject({ url: '/v1/models/cls', headers: { authorization: `Bearer ${INFER}` } })).statusCode).toBe(200);
  });
});

describe('lazy models and the memory budget', () => {
  it('a lazy model is available, readiness does not wait for it, its first requests share one load', async () => {
    app = await buildApp(testConfig({ models: [{ name: 'cls', source: demoZip('classify-demo') }, { name: 'lazy-sts', source: demoZip('sts-demo'), load: 'lazy' }] }));
    expect((await app.inject('/v1/models/lazy-sts')).json()).toMatchObject({ state: 'available', load: 'lazy' });
    expect((await app.inject('/health/ready')).statusCode).toBe(200);
    const t0 = performance.now();
    const firsts = await Promise.all(Array.from({ length: 5 }, (_, i) => app!.inject({ method: 'POST', url: '/v1/embeddings', payload: { input: `first ${i}`, model: 'lazy-sts' } })));
    const firstMs = performance.now() - t0;
    for (const r of firsts) expect(r.statusCode).toBe(200);
    const t1 = performance.now();
    expect((await app.inject({ method: 'POST', url: '/v1/embeddings', payload: { input: 'later', model: 'lazy-sts' } })).statusCode).toBe(200);
    const laterMs = performance.now() - t1;
    process.stdout.write(`lazy sts-demo: first request ${firstMs.toFixed(0)} ms (load), a later one ${laterMs.toFixed(1)} ms\n`);
    expect((await app.inject('/metrics')).body).toMatch(/gateway_model_loads_total\{model="lazy-sts",result="ok"\} 1\n/);
    expect((await app.inject('/v1/models/lazy-sts')).json()).toMatchObject({ state: 'ready', task: 'sentence-similarity', memory_mb: expect.any(Number) });
  });

  it('a request that waits past lazyLoadWaitMs gets 503 with Retry-After while the load goes on', async () => {
    app = await buildApp(testConfig({ models: [{ name: 'lazy-cls', source: demoZip('classify-demo'), load: 'lazy' }], inference: { lazyLoadWaitMs: 1 } }));
    const early = await app.inject({ method: 'POST', url: '/v1/classify', payload: { inputs: TEXT, model: 'lazy-cls' } });
    expect(early.statusCode).toBe(503);
    expect(Number(early.headers['retry-after'])).toBeGreaterThan(0);
    await app.models.settled();
    expect((await app.inject({ method: 'POST', url: '/v1/classify', payload: { inputs: TEXT, model: 'lazy-cls' } })).statusCode).toBe(200);
  });

  it('under a budget that fits one of two lazy models, alternating requests evict the least recently used and never fail', async () => {
    app = await buildApp(
      testConfig({
        models: [
          { name: 'cls', source: demoZip('classify-demo') },
          { name: 'lazy-a', source: demoZip('sts-demo'), load: 'lazy' },
          { name: 'lazy-b', source: demoZip('sts-demo'), load: 'lazy' },
        ],
        inference: { memoryBudgetMb: 12 },
      }),
    );
    // Each sts-demo counts at least its 7.7 MB on disk: 12 MB holds one of them, not two.
    const loaded = async () => (await app!.inject('/v1/models')).json().data.filter((m: { name: string; state: string }) => m.name.startsWith('lazy') && m.state === 'ready').map((m: { name: string }) => m.name);
    for (const [i, model] of ['lazy-a', 'lazy-b', 'lazy-a', 'lazy-b', 'lazy-a'].entries()) {
      const r = await app.inject({ method: 'POST', url: '/v1/embeddings', payload: { input: `turn ${i}`, model } });
      expect(r.statusCode, `${model} turn ${i}`).toBe(200);
      await app.models.settled();
      expect(await loaded()).toEqual([model]);
    }
    const metrics = (await app.inject('/metrics')).body;
    expect(metrics).toMatch(/gateway_model_unloads_total\{model="lazy-a",reason="evicted"\} 2/);
    expect(metrics).toMatch(/gateway_model_unloads_total\{model="lazy-b",reason="evicted"\} 2/);
    // The eager model is never evicted.
    expect((await app.inject('/v1/models/cls')).json().state).toBe('ready');
  }, 60_000);
});
