import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { craftZip } from '../helpers/zip-craft.ts';
import { readZip, unzipTo } from '../helpers/unzip.ts';
import { buildApp, demoZip, testConfig } from '../helpers/app.ts';

/**
 * Edits gateway.json of a demo model, keeping its version: the same version, different answers (labels reversed;
 * a 5-token window, which cuts the test sentence when asked to truncate: sts-demo's graph pools itself).
 */
const editGateway = (g: Record<string, unknown>, kind: 'labels' | 'window') =>
  kind === 'labels' ? { ...g, labels: [...(g.labels as string[])].reverse() } : { ...g, max_length: 5 };

async function folderVariant(from: string, kind: 'labels' | 'window' | 'none'): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), `${from}-`));
  await unzipTo(demoZip(from), dir);
  if (kind !== 'none') writeFileSync(join(dir, 'gateway.json'), JSON.stringify(editGateway(JSON.parse(readFileSync(join(dir, 'gateway.json'), 'utf8')), kind)));
  return dir;
}

async function zipVariant(from: string, kind: 'labels' | 'window'): Promise<string> {
  const files = await readZip(demoZip(from));
  files['gateway.json'] = Buffer.from(JSON.stringify(editGateway(JSON.parse(files['gateway.json'].toString()), kind)));
  const path = join(mkdtempSync(join(tmpdir(), 'zip-variant-')), `${from}.zip`);
  writeFileSync(path, craftZip(Object.entries(files).map(([name, data]) => ({ name, data }))));
  return path;
}

/**
 * No model's cached answer is ever served for another: the result and embedding caches are keyed by the
 * model's load (name, version, content digest, load number), not by gateway.json's version alone.
 */
describe('caches keep models apart', () => {
  it('two folder models and two zips of equal version never answer from each other’s cache entries', async () => {
    const models = [
      { name: 'cls-a', source: await folderVariant('classify-demo', 'none') },
      { name: 'cls-b', source: await folderVariant('classify-demo', 'labels') },
      { name: 'cls-zip-a', source: demoZip('classify-demo') },
      { name: 'cls-zip-b', source: await zipVariant('classify-demo', 'labels') },
      { name: 'sts-a', source: await folderVariant('sts-demo', 'none') },
      { name: 'sts-b', source: await folderVariant('sts-demo', 'window') },
      { name: 'sts-zip-a', source: demoZip('sts-demo') },
      { name: 'sts-zip-b', source: await zipVariant('sts-demo', 'window') },
    ];
    const app = await buildApp(testConfig({ models }));
    try {
      const versions = (await app.inject('/v1/models')).json().data.map((m: { version: string }) => m.version.split('+')[0]);
      expect(new Set(versions)).toEqual(new Set(['2.0.0', '3.0.0'])); // classify-demo 2.0.0, sts-demo 3.0.0
      const text = 'a puzzle game with colourful blocks';
      const top = async (model: string) => (await app.inject({ method: 'POST', url: '/v1/classify', payload: { inputs: text, model } })).json().predictions[0];
      const vec = async (model: string) => (await app.inject({ method: 'POST', url: '/v1/embeddings', payload: { input: text, model, truncate: true } })).json().data[0].embedding as number[];
      for (const [a, b] of [['cls-a', 'cls-b'], ['cls-zip-a', 'cls-zip-b']]) {
        const first = await top(a);
        const second = await top(b); // the same input: a shared cache would answer with a's labels
        expect(second.label).not.toBe(first.label);
        expect(second.score).toBeCloseTo(first.score, 6);
        expect((await top(a)).label).toBe(first.label);
        expect((await top(b)).label).toBe(second.label);
      }
      for (const [a, b] of [['sts-a', 'sts-b'], ['sts-zip-a', 'sts-zip-b']]) {
        const first = await vec(a);
        const second = await vec(b);
        expect(second).not.toEqual(first);
        expect(await vec(a)).toEqual(first);
        expect(await vec(b)).toEqual(second);
      }
      expect(app.caches.results.stats().hits).toBeGreaterThan(0);
      expect(app.caches.embeddings.stats().hits).toBeGreaterThan(0);
    } finally {
      await app.close();
    }
  });
});
