import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@fastify/type-provider-typebox';
import { GatewayError } from '../../errors.ts';
import { embed } from '../../services/embeddings.ts';
import { inferenceErrors, ModelName } from '../schemas.ts';
import { checkBatch, checkText } from '../../services/limits.ts';
import { ctxOf } from '../context.ts';
import { JSON_UTF8, plainVectors, vectorJson } from '../float32-json.ts';

const Body = Type.Object(
  {
    input: Type.Union([Type.String({ minLength: 1 }), Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })], {
      description: 'A text or a list of texts (token arrays are not accepted)',
    }),
    model: Type.Optional(ModelName),
    encoding_format: Type.Optional(Type.Union([Type.Literal('float'), Type.Literal('base64')], { description: 'base64: little-endian float32, as the OpenAI client asks by default' })),
    dimensions: Type.Optional(Type.Integer({ minimum: 1, description: 'Must equal the model dimension if given (no Matryoshka truncation)' })),
    user: Type.Optional(Type.String()),
    truncate: Type.Optional(Type.Boolean({ description: 'Cut texts longer than the model window instead of answering 413' })),
  },
  { examples: [{ input: ['A man is playing a guitar.', 'Someone plays an instrument.'], model: 'sts-demo' }] },
);

const Embedding = Type.Object({
  object: Type.Literal('embedding'),
  index: Type.Integer(),
  embedding: Type.Union([Type.Array(Type.Number()), Type.String()]),
});

export const EmbeddingsResponse = Type.Object({
  object: Type.Literal('list'),
  data: Type.Array(Embedding),
  model: Type.String(),
  model_version: Type.String({ description: 'The version that answered (manifest version + content digest); a replaced model answers in-flight requests with the version they started on' }),
  usage: Type.Object({ prompt_tokens: Type.Integer(), total_tokens: Type.Integer() }),
});

function toBase64(v: Float32Array): string {
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
}

export interface EmbeddingList {
  object: 'list';
  data: { object: 'embedding'; index: number; embedding: Float32Array | string }[];
  model: string;
  model_version: string;
  usage: { prompt_tokens: number; total_tokens: number };
}

/**
 * The 200 answer in `Response`'s shape and key order, straight from the Float32Arrays (each number with at most 9
 * significant digits that read back as the same float32: float32-json.ts): no number[] copy per vector and no anyOf
 * check of every vector against the union. Undefined where a vector has a non-finite value, so that the schema's own
 * serializer answers exactly as before (Infinity as null, NaN as a serialization error).
 */
export function serializeEmbeddingList(r: EmbeddingList): string | undefined {
  let data = '';
  for (let i = 0; i < r.data.length; i++) {
    const e = r.data[i].embedding;
    const text = typeof e === 'string' ? JSON.stringify(e) : vectorJson(e);
    if (text === undefined) return undefined;
    data += `${i ? ',' : ''}{"object":"embedding","index":${r.data[i].index},"embedding":${text}}`;
  }
  return `{"object":"list","data":[${data}],"model":${JSON.stringify(r.model)},"model_version":${JSON.stringify(r.model_version)},"usage":{"prompt_tokens":${r.usage.prompt_tokens},"total_tokens":${r.usage.total_tokens}}}`;
}

/** OpenAI-compatible embeddings: the `openai` client pointed at the gateway works unchanged. */
const embeddings: FastifyPluginAsyncTypebox = async (app) => {
  const { limits } = app.config;
  app.post('/v1/embeddings', {
    schema: {
      tags: ['sentence-similarity'],
      description: 'OpenAI-style embeddings: sentence vectors pooled and normalised as the model\'s own library does (sentence-transformers\' modules; L2-normalised for models without them).',
      body: Body,
      response: { 200: EmbeddingsResponse, ...inferenceErrors },
    },
    handler: async (req, reply) => {
      const list = Array.isArray(req.body.input);
      const texts = list ? (req.body.input as string[]) : [req.body.input as string];
      checkBatch('input', texts.length, limits.maxBatchItems);
      texts.forEach((t, i) => checkText(list ? `input[${i}]` : 'input', t, limits.maxTextChars));
      const model = await app.models.resolve('sentence-similarity', req.body.model, req.lease);
      const { vectors, tokens } = await embed(model, texts, ctxOf(req), { truncate: req.body.truncate, names: texts.map((_, i) => (list ? `input[${i}]` : 'input')) });
      const dim = vectors[0]?.length ?? 0;
      if (req.body.dimensions !== undefined && req.body.dimensions !== dim) {
        throw new GatewayError('unprocessable_input', `model "${model.name}" gives ${dim} dimensions; "dimensions" must be ${dim} or omitted`);
      }
      const b64 = req.body.encoding_format === 'base64';
      const answer: EmbeddingList = {
        object: 'list',
        data: vectors.map((v, index) => ({ object: 'embedding', index, embedding: b64 ? toBase64(v) : v })),
        model: model.name,
        model_version: model.version,
        usage: { prompt_tokens: tokens, total_tokens: tokens },
      };
      const text = serializeEmbeddingList(answer);
      if (text !== undefined) return reply.type(JSON_UTF8).send(text);
      return { ...answer, data: answer.data.map((d) => ({ ...d, embedding: plainVectors(d.embedding) })) };
    },
  });
};

export default embeddings;
