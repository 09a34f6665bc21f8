import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import fc from 'fast-check';
import { mkdirSync, writeFileSync } from 'node:fs';
import { buildApp, demoEntries, testConfig } from '../helpers/app.ts';
import { crossEncoderFolder } from '../helpers/real-models.ts';
import { V2_ROUTE } from '../../src/plugins/app/errors.ts';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
interface Operation {
  path: string;
  examples: Json[];
}

/** Every POST route with a JSON body and its documented examples, read from the app's own OpenAPI document. */
interface Param {
  name: string;
  in: string;
  example?: string;
  schema?: { examples?: string[]; example?: string };
}
type Doc = { paths: Record<string, Record<string, { parameters?: Param[]; requestBody?: { content?: Record<string, { example?: Json; examples?: Record<string, { value: Json }> }> } }>> };

function operations(doc: Doc): Operation[] {
  const ops: Operation[] = [];
  for (const [path, methods] of Object.entries(doc.paths)) {
    const post = methods.post;
    const json = post?.requestBody?.content?.['application/json'];
    // The versioned /v2 routes run the handlers of the unversioned ones, whose path parameters have examples;
    // a model's version is known only once it is loaded.
    if (!json || path.includes('{version}')) continue;
    // @fastify/swagger moves schema examples to `example` (one) or `examples` (several) on the media type.
    const examples = [...(json.example !== undefined ? [json.example] : []), ...Object.values(json.examples ?? {}).map((e) => e.value)];
    // Path parameters take their documented examples.
    const url = path.replace(/\{(\w+)\}/g, (_, n: string) => {
      const p = post.parameters?.find((x) => x.in === 'path' && x.name === n);
      return String(p?.example ?? p?.schema?.example ?? p?.schema?.examples?.[0] ?? n);
    });
    ops.push({ path: url, examples });
  }
  return ops;
}

/** Mutations that keep the shape recognisable but break it: missing, null, wrong types, huge, odd unicode. */
const mutateValue = (v: Json): fc.Arbitrary<Json> =>
  fc.oneof<fc.Arbitrary<Json>[]>(
    fc.constant(null),
    fc.constant(''),
    fc.constant('   '),
    fc.integer(),
    fc.double(),
    fc.boolean(),
    fc.constant([]),
    fc.constant({}),
    fc.string({ unit: 'grapheme', maxLength: 40 }),
    fc.string({ unit: 'binary', maxLength: 40 }),
    fc.constant('x'.repeat(300_000)),
    fc.constant(Array.from({ length: 200 }, () => v)),
    fc.constant([v, v]),
    fc.constant({ nested: v }),
    fc.constant(-1),
    fc.constant(1e308),
  );

function mutations(example: Json): fc.Arbitrary<Json> {
  if (example === null || typeof example !== 'object' || Array.isArray(example)) return mutateValue(example);
  const keys = Object.keys(example);
  return fc.oneof(
    // One field replaced by something else.
    fc.constantFrom(...keys).chain((k) => mutateValue(example[k]).map((v) => ({ ...example, [k]: v }))),
    // One field dropped.
    fc.constantFrom(...keys).map((k) => Object.fromEntries(Object.entries(example).filter(([x]) => x !== k)) as Json),
    // Unknown extra fields.
    fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<Json>, { maxKeys: 3 }).map((extra) => ({ ...extra, ...example })),
    // Something that is not an object at all.
    fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<Json>,
  );
}

describe('requests generated from the OpenAPI document', () => {
  let app: FastifyInstance;
  let ops: Operation[];
  beforeAll(async () => {
    const ranker = { name: 'rerank-xlmr', source: await crossEncoderFolder(), required: true, default: true };
    app = await buildApp(testConfig({ limits: { maxBatchItems: 16 }, models: [...demoEntries(), ranker] }));
    ops = operations((await app.inject('/docs/json')).json());
  });
  afterAll(async () => app?.close());

  it('finds the inference routes and their examples in the document', () => {
    const paths = ops.map((o) => o.path);
    for (const p of ['/v1/qa', '/v1/qa/batch', '/v1/similarity', '/v1/similarity/batch', '/v1/embeddings', '/v1/essays/score', '/v1/classify', '/models/qa-demo']) expect(paths).toContain(p);
    for (const o of ops) expect(o.examples.length, o.path).toBeGreaterThan(0);
  });

  it('answers 2,000 valid and mutated requests with no status of 500 or above, and stays healthy', async () => {
    const statuses = new Map<number, number>();
    const bad: string[] = [];
    const send = async (path: string, payload: string | Buffer, contentType = 'application/json') => {
      const res = await app.inject({ method: 'POST', url: path, headers: { 'content-type': contentType }, payload });
      statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
      if (res.statusCode >= 500) bad.push(`${path} ${res.statusCode} ${String(payload).slice(0, 200)} -> ${res.body.slice(0, 200)}`);
      else if (res.statusCode >= 400) {
        const body = res.json();
        // The Open Inference Protocol routes answer errors in the protocol's own body, { "error": "..." }.
        const ok = V2_ROUTE.test(path) ? typeof body?.error === 'string' && Object.keys(body).length === 1 : typeof body?.error?.code === 'string' && typeof body?.error?.message === 'string';
        if (!ok) bad.push(`${path} ${res.statusCode} without the error body: ${res.body.slice(0, 200)}`);
      }
      return res;
    };
    // Valid requests: every example as documented.
    for (const o of ops) for (const ex of o.examples) expect([200, 201], o.path).toContain((await send(o.path, JSON.stringify(ex))).statusCode);
    // Mutated JSON, per route, seeded so a failure can be replayed.
    const perRoute = Math.ceil(1700 / ops.length);
    for (const [i, o] of ops.entries()) {
      const samples = fc.sample(fc.constantFrom(...o.examples).chain(mutations), { numRuns: perRoute, seed: 4242 + i });
      for (const s of samples) await send(o.path, JSON.stringify(s));
    }
    // Bytes that are not JSON, not UTF-8, or not what the header says.
    const raw: [string, Buffer][] = [
      ['application/json', Buffer.from([0x7b, 0x22, 0x69, 0x6e, 0x70, 0x75, 0x74, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d])],
      ['application/json', Buffer.from('{"input": "unterminated')],
      ['application/json', Buffer.from('')],
      ['application/json', Buffer.from('[]')],
      ['application/json', Buffer.from('{"__proto__": {"polluted": true}, "input": "x"}')],
      ['text/plain', Buffer.from('hello')],
      ['application/x-www-form-urlencoded', Buffer.from('input=hello')],
      ['multipart/form-data; boundary=x', Buffer.from('--x\r\nContent-Disposition: form-data; name="a"\r\n\r\nb\r\n--x--\r\n')],
    ];
    for (let k = 0; k < 300; k++) {
      const [type, body] = raw[k % raw.length];
      await send(ops[k % ops.length].path, body, type);
    }
    expect(bad).toEqual([]);
    // The mix shows the generator reached past validation into the services, and into each kind of refusal.
    for (const code of [200, 400, 404, 413, 415]) expect(statuses.get(code) ?? 0, `status ${code}: ${JSON.stringify([...statuses])}`).toBeGreaterThan(0);
    const total = [...statuses.values()].reduce((a, b) => a + b, 0);
    mkdirSync('test-output', { recursive: true });
    writeFileSync('test-output/fuzz.json', JSON.stringify({ total, statuses: Object.fromEntries([...statuses].sort()) }, null, 1));
    expect(total).toBeGreaterThanOrEqual(2000);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect((await app.inject('/health/ready')).statusCode).toBe(200);
    expect((await app.inject({ method: 'POST', url: '/v1/embeddings', payload: { input: 'still fine' } })).statusCode).toBe(200);
  }, 600_000);
});
