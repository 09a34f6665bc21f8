import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@fastify/type-provider-typebox';
import { GatewayError } from '../errors.ts';
import { classify, type ClassifyInput } from '../services/classify.ts';
import { embed } from '../services/embeddings.ts';
import { rerank, scoreTextPairs } from '../services/ranking.ts';
import { checkBatch, checkText } from '../services/limits.ts';
import { inferenceErrors, ModelName } from './schemas.ts';
import { ctxOf } from './context.ts';
import { replyVectors } from './float32-json.ts';

const Truncate = Type.Optional(Type.Boolean({ description: 'Cut inputs over the model window instead of answering 413 (default false, as TEI)' }));
const Direction = Type.Optional(Type.Union([Type.Literal('right'), Type.Literal('Right'), Type.Literal('left'), Type.Literal('Left')], { description: 'Only right truncation is done' }));
const Model = Type.Optional({ ...ModelName, description: 'Not in TEI (which serves one model): the task default when omitted' });

const RerankBody = Type.Object(
  {
    query: Type.String({ minLength: 1 }),
    texts: Type.Array(Type.String({ minLength: 1 }), { minItems: 1 }),
    raw_scores: Type.Optional(Type.Boolean({ description: 'The logit, without the sigmoid' })),
    return_text: Type.Optional(Type.Boolean()),
    truncate: Truncate,
    truncation_direction: Direction,
    model: Model,
  },
  { examples: [{ query: 'a web server', texts: ['nginx serves web pages.', 'vim edits text.'], return_text: true }] },
);

const EmbedBody = Type.Object(
  {
    inputs: Type.Union([Type.String({ minLength: 1 }), Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })]),
    normalize: Type.Optional(Type.Boolean({ default: true, description: 'L2-normalise (TEI default true)' })),
    truncate: Truncate,
    truncation_direction: Direction,
    prompt_name: Type.Optional(Type.Null()),
    dimensions: Type.Optional(Type.Integer({ minimum: 1, description: 'Must equal the model dimension if given' })),
    model: Model,
  },
  { examples: [{ inputs: ['A man is playing a guitar.', 'Someone plays an instrument.'] }] },
);

const PredictBody = Type.Object(
  {
    inputs: Type.Union([Type.String({ minLength: 1 }), Type.Array(Type.Union([Type.String({ minLength: 1 }), Type.Array(Type.String({ minLength: 1 }), { minItems: 1, maxItems: 2 })]), { minItems: 1 })], {
      description: 'A text, a pair [text, text_pair], or a list of texts and pairs. As in TEI, a list of exactly two strings is one pair.',
    }),
    raw_scores: Type.Optional(Type.Boolean({ description: 'Logits instead of probabilities' })),
    truncate: Truncate,
    truncation_direction: Direction,
    model: Model,
  },
  { examples: [{ inputs: 'command-line utility to monitor network traffic' }] },
);

const LabelScore = Type.Object({ score: Type.Number(), label: Type.String() });

function checkDirection(d: string | undefined): void {
  if (d !== undefined && d.toLowerCase() === 'left') throw new GatewayError('unprocessable_input', 'truncation_direction "left" is not supported; inputs are cut on the right');
}

/**
 * Hugging Face text-embeddings-inference's own routes, bodies and answers, so its clients work unchanged:
 * POST /rerank (cross-encoders), /embed (sentence embeddings) and /predict (classifiers and cross-encoders).
 */
const tei: FastifyPluginAsyncTypebox = async (app) => {
  const { limits } = app.config;

  app.post('/rerank', {
    schema: {
      tags: ['text-ranking'],
      description: 'TEI rerank: `[{ index, score, text? }]`, best first.',
      body: RerankBody,
      response: { 200: Type.Array(Type.Object({ index: Type.Integer(), score: Type.Number(), text: Type.Optional(Type.String()) })), ...inferenceErrors },
    },
    handler: async (req) => {
      const b = req.body;
      checkDirection(b.truncation_direction);
      checkText('query', b.query, limits.maxTextChars);
      checkBatch('texts', b.texts.length, limits.maxBatchItems);
      b.texts.forEach((t, i) => checkText(`texts[${i}]`, t, limits.maxTextChars));
      const model = await app.models.resolve('text-ranking', b.model, req.lease);
      const ranked = await rerank(model, b.query, b.texts, ctxOf(req), { truncate: b.truncate, raw: b.raw_scores, fields: { query: 'query', documents: 'texts' } });
      return ranked.map((r) => ({ index: r.index, score: r.score, ...(b.return_text ? { text: b.texts[r.index] } : {}) }));
    },
  });

  app.post('/embed', {
    schema: {
      tags: ['sentence-similarity'],
      description: 'TEI embed: one vector per input, `[[...], ...]`.',
      body: EmbedBody,
      response: { 200: Type.Array(Type.Array(Type.Number())), ...inferenceErrors },
    },
    handler: async (req, reply) => {
      const b = req.body;
      checkDirection(b.truncation_direction);
      const texts = typeof b.inputs === 'string' ? [b.inputs] : b.inputs;
      const names = texts.map((_, i) => (typeof b.inputs === 'string' ? 'inputs' : `inputs[${i}]`));
      checkBatch('inputs', texts.length, limits.maxBatchItems);
      texts.forEach((t, i) => checkText(names[i], t, limits.maxTextChars));
      const model = await app.models.resolve('sentence-similarity', b.model, req.lease);
      const { vectors } = await embed(model, texts, ctxOf(req), { truncate: b.truncate, names, normalize: b.normalize ?? true });
      if (b.dimensions !== undefined && b.dimensions !== vectors[0].length) {
        throw new GatewayError('unprocessable_input', `model "${model.name}" gives ${vectors[0].length} dimensions; "dimensions" must be ${vectors[0].length} or omitted`);
      }
      return replyVectors(reply, vectors);
    },
  });

  app.post('/predict', {
    schema: {
      tags: ['text-classification'],
      description: 'TEI predict: `[{ score, label }]` for one input (every label, best first), `[[...], ...]` for a list. Serves text-classification models, and text-ranking ones by name.',
      body: PredictBody,
      response: { 200: Type.Union([Type.Array(LabelScore), Type.Array(Type.Array(LabelScore))]), ...inferenceErrors },
    },
    handler: async (req) => {
      const b = req.body;
      checkDirection(b.truncation_direction);
      const single = typeof b.inputs === 'string' || (b.inputs.length === 2 && b.inputs.every((x) => typeof x === 'string'));
      const raw = single ? [b.inputs as string | string[]] : (b.inputs as (string | string[])[]);
      checkBatch('inputs', raw.length, limits.maxBatchItems);
      const inputs = raw.map((x, i): ClassifyInput => {
        const where = single ? 'inputs' : `inputs[${i}]`;
        const [text, textPair] = typeof x === 'string' ? [x, undefined] : x;
        checkText(textPair === undefined ? where : `${where}[0]`, text, limits.maxTextChars);
        if (textPair !== undefined) checkText(`${where}[1]`, textPair, limits.maxTextChars);
        return { text, textPair };
      });
      const model = await app.models.resolve(['text-classification', 'text-ranking'], b.model, req.lease);
      const ctx = ctxOf(req);
      let out: { score: number; label: string }[][];
      if (model.manifest.task === 'text-ranking') {
        if (inputs.some((it) => it.textPair === undefined)) throw new GatewayError('unprocessable_input', `model "${model.name}" is a cross-encoder: every input must be a pair [text, text_pair]`);
        const scores = await scoreTextPairs(model, inputs.map((it, i) => ({ text: it.text, textPair: it.textPair!, names: [`inputs[${i}][0]`, `inputs[${i}][1]`] })), ctx, { truncate: b.truncate, raw: b.raw_scores });
        const label = model.manifest.positiveLabel ?? 'LABEL_0';
        out = scores.map((score) => [{ score, label }]);
      } else {
        const preds = await classify(model, inputs, ctx, { truncate: b.truncate, raw: b.raw_scores });
        out = preds.map((p) => p.labels.map((l) => ({ score: l.score, label: l.label })));
      }
      return single ? out[0] : out;
    },
  });
};

export default tei;
