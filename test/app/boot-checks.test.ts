import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { craftZip } from '../helpers/zip-craft.ts';
import { readZip } from '../helpers/unzip.ts';
import { buildApp, demoZip, testConfig } from '../helpers/app.ts';

async function variant(name: string, from: string, change: (gateway: Record<string, unknown>) => Record<string, unknown>): Promise<string> {
  const files = await readZip(demoZip(from));
  const gateway = change(JSON.parse(files['gateway.json'].toString()));
  files['gateway.json'] = Buffer.from(JSON.stringify(gateway));
  const path = join(mkdtempSync(join(tmpdir(), 'variant-')), `${name}.zip`);
  writeFileSync(path, craftZip(Object.entries(files).map(([n, data]) => ({ name: n, data }))));
  return path;
}

describe('boot checks of a model against its task', () => {
  it('fails a model whose ONNX outputs do not fit its declared task, naming the outputs, and keeps serving the others', async () => {
    const wrong = await variant('qa-as-classifier', 'qa-demo', (g) => ({ ...g, task: 'text-classification', output: 'softmax', labels: ['a', 'b'] }));
    const app = await buildApp(
      testConfig({
        models: [
          { name: 'classify-demo', source: demoZip('classify-demo') },
          { name: 'qa-as-classifier', source: wrong, required: false },
        ],
      }),
    );
    const status = (await app.inject('/v1/models/qa-as-classifier')).json();
    expect(status.state).toBe('failed');
    expect(status.error).toMatch(/failed at loading: ONNX outputs \["start_logits","end_logits"\] lack logits needed for text-classification/);
    expect((await app.inject('/health/ready')).statusCode).toBe(200);
    const res = await app.inject({ method: 'POST', url: '/v1/classify', payload: { inputs: 'text editor', model: 'qa-as-classifier' } });
    expect(res.statusCode).toBe(503);
    expect(res.json().error.message).toContain('failed');
    await app.close();
  });

  it('refuses a classifier whose output is identity at boot, naming the field, instead of failing every request', async () => {
    const bad = await variant('identity-classifier', 'classify-demo', (g) => ({ ...g, output: 'identity' }));
    const app = await buildApp(testConfig({ models: [{ name: 'identity-classifier', source: bad }] }), { boot: false });
    await expect(app.models.boot()).rejects.toThrow(/model "identity-classifier" failed at loading: a classifier's output must be softmax or sigmoid; gateway\.json "output" is "identity"/);
    await app.close();
  });

  it('refuses a classifier whose graph gives another number of logits than its labels, at warm-up', async () => {
    const bad = await variant('three-labels', 'classify-demo', (g) => ({ ...g, labels: ['a', 'b', 'c'] }));
    const app = await buildApp(testConfig({ models: [{ name: 'three-labels', source: bad }] }), { boot: false });
    await expect(app.models.boot()).rejects.toThrow(/failed at warming: the graph gives 10 logits per text but the model declares 3 labels/);
    await app.close();
  });

  it('rejects a required model with an unknown task at boot', async () => {
    const bad = await variant('bad-task', 'classify-demo', (g) => ({ ...g, task: 'translation' }));
    const app = await buildApp(testConfig({ models: [{ name: 'bad-task', source: bad }] }), { boot: false });
    await expect(app.models.boot()).rejects.toThrow(/model "bad-task" failed at loading: .*task/);
    expect((await app.inject('/health/ready')).statusCode).toBe(503);
    await app.close();
  });

  it('keeps the first of two defaults for one task and uses it when a request names no model', async () => {
    const second = await variant('classify-two', 'classify-demo', (g) => g);
    const app = await buildApp(
      testConfig({
        models: [
          { name: 'classify-demo', source: demoZip('classify-demo'), default: true },
          { name: 'classify-two', source: second, default: true },
        ],
      }),
    );
    const res = await app.inject({ method: 'POST', url: '/v1/classify', payload: { inputs: 'text editor' } });
    expect(res.json().model).toBe('classify-demo');
    const defaults = (await app.inject('/v1/models')).json().data.filter((m: { default: boolean }) => m.default);
    expect(defaults.map((m: { name: string }) => m.name)).toEqual(['classify-demo']);
    await app.close();
  });
});

describe('batch budget from a latency target', () => {
  // The rule itself (larger target, larger budget; clamps) is tested without timing in
  // test/inference/latency-budget.test.ts. Here: warm-up times the real model, applies that rule to what it
  // measured, reports it, and the model serves with the budget. Timings on a shared machine vary between
  // boots, so nothing here compares two boots.
  it('times each model at warm-up and gives it the token budget the fitted cost allows under the target', async () => {
    const target = 40;
    const app = await buildApp(
      testConfig({
        models: ['classify-demo', 'qa-demo'].map((name) => ({ name, source: demoZip(name) })),
        inference: { latencyTargetMs: target },
      }),
    );
    const models = (await app.inject('/v1/models')).json().data;
    expect(models.map((m: { name: string }) => m.name).sort()).toEqual(['classify-demo', 'qa-demo']);
    for (const m of models) {
      const t = m.warmup.tuned;
      expect(t.target_ms).toBe(target);
      expect(t.ms_per_1k_tokens).toBeGreaterThan(0);
      expect(t.fixed_ms).toBeGreaterThanOrEqual(0);
      // The reported budget is the rule applied to the reported fit (fit values are rounded to 3 decimals).
      const expected = Math.min(65_536, Math.max(m.max_length, (target - t.fixed_ms) / (t.ms_per_1k_tokens / 1000)));
      expect(Math.abs(t.batch_tokens - expected)).toBeLessThanOrEqual(Math.max(2, expected * 0.01));
    }
    // The model serves with it.
    expect((await app.inject({ method: 'POST', url: '/v1/classify', payload: { inputs: ['a', 'b', 'c'] } })).statusCode).toBe(200);
    await app.close();
  });
});
