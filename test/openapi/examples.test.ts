/**
 * Every example of every JSON request body in the OpenAPI document, sent to its route with the demo models,
 * answers 200; the multipart upload route gets a generated pairs file. Path parameters are filled with each
 * demo model in turn (the Hugging Face route's examples are for different tasks, so each must work for one).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApp, DEMO_MODELS, demoEntries, testConfig } from '../helpers/app.ts';
import { crossEncoderFolder } from '../helpers/real-models.ts';
import { postJson, postMultipart } from '../helpers/http.ts';

interface Media {
  schema?: { examples?: unknown[] };
  examples?: Record<string, { value: unknown }>;
  example?: unknown;
}
interface Op {
  requestBody?: { content: Record<string, Media> };
  parameters?: { in: string; name: string; schema?: { enum?: string[]; anyOf?: { const?: string; enum?: string[] }[] } }[];
}

let app: FastifyInstance;
let paths: Record<string, Record<string, Op>>;
/** Each model's version, for {version} in /v2 paths. */
let versions: Record<string, string>;
beforeAll(async () => {
  // The default config has no text-ranking model yet: the real XLM-R cross-encoder export stands in for the rerank routes.
  const ranker = { name: 'rerank-xlmr', source: await crossEncoderFolder(), required: true, default: true };
  app = await buildApp(testConfig({ models: [...demoEntries(), ranker] }));
  paths = (await app.inject('/docs/json')).json().paths;
  versions = Object.fromEntries((await app.inject('/v1/models')).json().data.map((m: { name: string; version: string }) => [m.name, m.version]));
});
afterAll(async () => app?.close());

function examplesOf(m: Media): unknown[] {
  return [...(m.schema?.examples ?? []), ...Object.values(m.examples ?? {}).map((e) => e.value), ...(m.example === undefined ? [] : [m.example])];
}

/** Concrete URLs for a templated path: {name} over the demo models, {pipeline} over its enum, {version} the named model's. */
function urlsFor(path: string, op: Op): string[] {
  let urls = [path];
  for (const p of op.parameters ?? []) {
    if (p.in !== 'path' || p.name === 'version') continue;
    // Collection routes take the collection their create example made; model routes every demo model.
    const collection = path.startsWith('/v1/collections/') && p.name === 'name' ? ['docs'] : undefined;
    const values = collection ?? p.schema?.enum ?? p.schema?.anyOf?.flatMap((a) => a.enum ?? (a.const === undefined ? [] : [a.const])) ?? (p.name === 'name' ? [...DEMO_MODELS] : []);
    expect(values.length, `${path} {${p.name}}`).toBeGreaterThan(0);
    urls = urls.flatMap((u) => values.map((v) => u.replace(`{${p.name}}`, v)));
  }
  return urls.map((u) => u.replace('{version}', versions[/\/v2\/models\/([^/]+)/.exec(u)?.[1] ?? ''] ?? 'none'));
}

describe('OpenAPI request examples', () => {
  it('every JSON body example succeeds on its route (200, or 201 where it creates)', async () => {
    const checked: string[] = [];
    const failures: string[] = [];
    for (const [path, methods] of Object.entries(paths)) {
      for (const [method, op] of Object.entries(methods)) {
        const json = op.requestBody?.content['application/json'];
        if (method !== 'post' || !json) continue;
        const examples = examplesOf(json);
        if (examples.length === 0) failures.push(`${path}: no request example`);
        for (const ex of examples) {
          const statuses: string[] = [];
          for (const url of urlsFor(path, op)) statuses.push(`${url} ${(await postJson(app, url, ex)).status}`);
          checked.push(path);
          // 201 for the routes that create (a collection, a feedback record).
          if (!statuses.some((s) => / 20[01]$/.test(s))) failures.push(`${path} ${JSON.stringify(ex).slice(0, 120)}: ${statuses.join(', ')}`);
        }
      }
    }
    expect(failures).toEqual([]);
    for (const p of ['/v1/qa', '/v1/qa/batch', '/v1/similarity', '/v1/similarity/batch', '/v1/embeddings', '/v1/essays/score', '/v1/classify', '/models/{name}']) expect(checked).toContain(p);
  });

  it('the multipart upload route takes a generated pairs file', async () => {
    expect(paths['/v1/similarity/file'].post.requestBody ?? paths['/v1/similarity/file'].post).toBeDefined();
    const pairs = [
      { sentence_1: 'A woman is slicing an onion.', sentence_2: 'A woman is cutting an onion.' },
      { sentence_1: 'A man is playing a flute.', sentence_2: 'A dog runs on the beach.' },
    ];
    const res = await postMultipart(app, '/v1/similarity/file', [{ name: 'model', content: 'sts-demo' }, { name: 'file', filename: 'pairs.json', content: JSON.stringify(pairs) }]);
    expect(res.status, res.raw).toBe(200);
    expect(res.body.results).toHaveLength(2);
  });
});
