import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Fastify, { type FastifyInstance } from 'fastify';
import fc from 'fast-check';
import { EmbeddingsResponse, serializeEmbeddingList, type EmbeddingList } from '../../src/routes/v1/embeddings.ts';

/**
 * /v1/embeddings writes its 200 answer itself (serializeEmbeddingList) instead of through fast-json-stringify:
 * the answer must be the one Fastify's own serializer writes from the route's response schema, keys in the same
 * order, every number reading back as the same float32 (it is printed with at most 9 digits, float32-json.ts).
 */
describe('embeddings answer serializer', () => {
  let app: FastifyInstance;
  let pending: unknown;
  beforeAll(async () => {
    app = Fastify();
    app.post('/ref', { schema: { response: { 200: EmbeddingsResponse } } }, async () => pending);
    await app.ready();
  });
  afterAll(async () => app?.close());

  /** What the schema's serializer writes for the same answer with number[] vectors (as the route sent before). */
  const reference = async (r: EmbeddingList) => {
    pending = { ...r, data: r.data.map((d) => ({ ...d, embedding: typeof d.embedding === 'string' ? d.embedding : Array.from(d.embedding) })) };
    const res = await app.inject({ method: 'POST', url: '/ref' });
    return { status: res.statusCode, body: res.body };
  };

  const float = fc.oneof(fc.float({ noDefaultInfinity: true, noNaN: true }), fc.constantFrom(0, -0, 1e-45, -1e-45, 3.4028234663852886e38, 1, -1, 0.1, 1e-7, 123456.789));
  const vector = fc.array(float, { minLength: 0, maxLength: 40 }).map((xs) => Float32Array.from(xs));
  const answer = fc.record({
    data: fc.array(fc.oneof(vector, fc.base64String({ maxLength: 40 })), { minLength: 1, maxLength: 4 }),
    model: fc.string({ unit: 'binary', minLength: 1, maxLength: 20 }),
    model_version: fc.string({ maxLength: 30 }),
    tokens: fc.nat(100_000),
  }).map(({ data, model, model_version, tokens }): EmbeddingList => ({
    object: 'list',
    data: data.map((embedding, index) => ({ object: 'embedding', index, embedding })),
    model,
    model_version,
    usage: { prompt_tokens: tokens, total_tokens: tokens },
  }));

  /** The answer's text again with every vector's numbers as the float32 they read back as. */
  const asFloat32 = (text: string) => {
    const parsed = JSON.parse(text) as { data: { embedding: number[] | string }[] };
    for (const d of parsed.data) if (typeof d.embedding !== 'string') d.embedding = Array.from(Float32Array.from(d.embedding));
    return JSON.stringify(parsed);
  };

  it('writes the answer the response schema gives (same keys in the same order, the same float32s), for any finite floats, base64 strings and names', async () => {
    await fc.assert(
      fc.asyncProperty(answer, async (r) => {
        const ref = await reference(r);
        expect(ref.status).toBe(200);
        const ours = serializeEmbeddingList(r)!;
        expect(asFloat32(ours)).toBe(asFloat32(ref.body));
        expect(ours.length).toBeLessThanOrEqual(ref.body.length);
      }),
      { numRuns: 300, seed: 14 },
    );
  });

  it('prints the numbers shorter than JavaScript does', () => {
    const r: EmbeddingList = { object: 'list', data: [{ object: 'embedding', index: 0, embedding: Float32Array.of(0.1, -0.012345678, 0.5) }], model: 'm', model_version: 'v', usage: { prompt_tokens: 1, total_tokens: 1 } };
    expect(serializeEmbeddingList(r)).toBe('{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,-0.012345678,0.5]}],"model":"m","model_version":"v","usage":{"prompt_tokens":1,"total_tokens":1}}');
  });

  it('leaves a vector with a non-finite value to the schema serializer', () => {
    const r: EmbeddingList = { object: 'list', data: [{ object: 'embedding', index: 0, embedding: Float32Array.of(1, Infinity) }], model: 'm', model_version: 'v', usage: { prompt_tokens: 1, total_tokens: 1 } };
    expect(serializeEmbeddingList(r)).toBeUndefined();
    expect(serializeEmbeddingList({ ...r, data: [{ object: 'embedding', index: 0, embedding: Float32Array.of(Number.NaN) }] })).toBeUndefined();
  });
});
