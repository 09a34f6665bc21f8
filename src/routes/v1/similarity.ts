import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@fastify/type-provider-typebox';
import multipart from '@fastify/multipart';
import { Value } from 'typebox/value';
import { GatewayError } from '../../errors.ts';
import type { ServingModel } from '../../inference/registry.ts';
import { scorePairs, scoringOf, type Pair } from '../../services/similarity.ts';
import { checkBatch, checkText } from '../../services/limits.ts';
import { inferenceErrors, ModelName } from '../schemas.ts';
import { ctxOf } from '../context.ts';

const PairSchema = Type.Object({ sentence_1: Type.String({ minLength: 1 }), sentence_2: Type.String({ minLength: 1 }) });
const PairsFile = Type.Union([Type.Array(PairSchema), Type.Object({ pairs: Type.Array(PairSchema) })]);

const Truncate = Type.Optional(Type.Boolean({ description: 'Cut sentences (or, for a cross-encoder, the longer of the pair first) to the model window instead of answering 413' }));
const Scoring = Type.Union([Type.Literal('cosine'), Type.Literal('cross-encoder')], { description: 'cosine: of the two sentence embeddings (sentence-similarity model); cross-encoder: the text-ranking model\'s own score of the pair' });

const SimilarityBody = Type.Object(
  { sentence_1: Type.String({ minLength: 1 }), sentence_2: Type.String({ minLength: 1 }), model: Type.Optional(ModelName), truncate: Truncate },
  { examples: [{ sentence_1: 'A man is playing a guitar.', sentence_2: 'A man plays the guitar.', model: 'sts-demo' }] },
);
const SimilarityResponse = Type.Object({
  model: Type.String(),
  model_version: Type.String({ description: 'The version that answered (manifest version + content digest); a replaced model answers in-flight requests with the version they started on' }),
  score: Type.Number({ description: 'Cosine of the two embeddings in [-1, 1], or the cross-encoder\'s score' }),
  scoring: Scoring,
  similar: Type.Optional(Type.Boolean({ description: 'score ≥ threshold; only where the model declares a threshold' })),
  threshold: Type.Optional(Type.Number({ description: "The model's decision threshold, where it declares one" })),
});
const BatchBody = Type.Object(
  { pairs: Type.Array(PairSchema, { minItems: 1 }), model: Type.Optional(ModelName), truncate: Truncate },
  {
    examples: [
      {
        pairs: [
          { sentence_1: 'A woman is slicing an onion.', sentence_2: 'A woman is cutting an onion.' },
          { sentence_1: 'A man is playing a flute.', sentence_2: 'A dog runs on the beach.' },
        ],
        model: 'sts-demo',
      },
    ],
  },
);
const BatchResponse = Type.Object({
  model: Type.String(),
  model_version: Type.String({ description: 'The version that answered (manifest version + content digest); a replaced model answers in-flight requests with the version they started on' }),
  scoring: Scoring,
  threshold: Type.Optional(Type.Number()),
  results: Type.Array(Type.Object({ score: Type.Number(), similar: Type.Optional(Type.Boolean()) })),
});

/** Bi-encoders (cosine of embeddings) and cross-encoders (their own score) both answer similarity. */
const SIMILARITY_TASKS = ['sentence-similarity', 'text-ranking'] as const;
const facts = (model: ServingModel) => ({ model: model.name, model_version: model.version, scoring: scoringOf(model), ...(model.manifest.threshold === undefined ? {} : { threshold: model.manifest.threshold }) });

/** Sentence similarity: one pair, a batch, or an uploaded JSON file of pairs. */
const similarity: FastifyPluginAsyncTypebox = async (app) => {
  const { limits, server } = app.config;
  await app.register(multipart, { limits: { files: 1, fileSize: server.bodyLimitBytes, fields: 4, parts: 5 } });

  const checkPairs = (pairs: Pair[], field: string) => {
    checkBatch(field, pairs.length, limits.maxBatchItems);
    pairs.forEach((p, i) => {
      checkText(`${field}[${i}].sentence_1`, p.sentence_1, limits.maxTextChars);
      checkText(`${field}[${i}].sentence_2`, p.sentence_2, limits.maxTextChars);
    });
  };

  app.post('/v1/similarity', {
    schema: {
      tags: ['sentence-similarity'],
      description:
        'Similarity of two sentences: the cosine of their embeddings with a sentence-similarity model, or the score of a text-ranking model (cross-encoder) reading the pair; `similar` where the model declares a threshold.',
      body: SimilarityBody,
      response: { 200: SimilarityResponse, ...inferenceErrors },
    },
    handler: async (req) => {
      checkText('sentence_1', req.body.sentence_1, limits.maxTextChars);
      checkText('sentence_2', req.body.sentence_2, limits.maxTextChars);
      const model = await app.models.resolve([...SIMILARITY_TASKS], req.body.model, req.lease);
      const [r] = await scorePairs(model, [req.body], ctxOf(req), { truncate: req.body.truncate, prefix: () => '' });
      return { ...facts(model), ...r };
    },
  });

  app.post('/v1/similarity/batch', {
    schema: { tags: ['sentence-similarity'], description: 'Scores for many pairs in one call, in input order (with a bi-encoder each distinct sentence is embedded once).', body: BatchBody, response: { 200: BatchResponse, ...inferenceErrors } },
    handler: async (req) => {
      checkPairs(req.body.pairs, 'pairs');
      const model = await app.models.resolve([...SIMILARITY_TASKS], req.body.model, req.lease);
      const results = await scorePairs(model, req.body.pairs, ctxOf(req), { truncate: req.body.truncate, prefix: (i) => `pairs[${i}].` });
      return { ...facts(model), results };
    },
  });

  app.post('/v1/similarity/file', {
    schema: {
      tags: ['sentence-similarity'],
      description:
        'multipart/form-data upload of a JSON file holding pairs: `[{ "sentence_1", "sentence_2" }]` or `{ "pairs": [...] }`. The model may be given as a `model` form field (before the file) or a `model` query parameter. Answers as /v1/similarity/batch.',
      consumes: ['multipart/form-data'],
      querystring: Type.Object({ model: Type.Optional(ModelName) }),
      response: { 200: BatchResponse, ...inferenceErrors },
    },
    handler: async (req) => {
      if (!req.isMultipart()) throw new GatewayError('unsupported_media_type', 'upload the pairs file as multipart/form-data (field "file")');
      const file = await req.file();
      if (!file) throw new GatewayError('invalid_request', 'no file in the upload; send the pairs JSON as a file field');
      const buf = await file.toBuffer();
      if (file.file.truncated) throw new GatewayError('too_large', `file is over the limit of ${server.bodyLimitBytes} bytes`);
      let parsed: unknown;
      try {
        parsed = JSON.parse(buf.toString('utf8'));
      } catch {
        throw new GatewayError('invalid_request', `file "${file.filename}" is not valid JSON`);
      }
      if (!Value.Check(PairsFile, parsed)) {
        throw new GatewayError('invalid_request', `file "${file.filename}" must hold [{ "sentence_1", "sentence_2" }] or { "pairs": [...] } with non-empty strings`);
      }
      const pairs = Array.isArray(parsed) ? parsed : parsed.pairs;
      checkPairs(pairs, 'pairs');
      const field = (file.fields.model as { value?: unknown } | undefined)?.value;
      const modelName = typeof field === 'string' && field ? field : req.query.model;
      const model = await app.models.resolve([...SIMILARITY_TASKS], modelName, req.lease);
      const results = await scorePairs(model, pairs, ctxOf(req), { prefix: (i) => `pairs[${i}].` });
      return { ...facts(model), results };
    },
  });
};

export default similarity;
