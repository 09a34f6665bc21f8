import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@fastify/type-provider-typebox';
import { classify, type ClassifyInput } from '../../services/classify.ts';
import { checkBatch, checkText } from '../../services/limits.ts';
import { inferenceErrors, ModelName } from '../schemas.ts';
import { ctxOf } from '../context.ts';

const TextPair = Type.Object({ text: Type.String({ minLength: 1 }), text_pair: Type.String({ minLength: 1 }) }, { additionalProperties: false });

const Body = Type.Object(
  {
    inputs: Type.Union(
      [
        Type.String({ minLength: 1 }),
        Type.Array(Type.Union([Type.String({ minLength: 1 }), TextPair]), { minItems: 1 }),
      ],
      { description: 'A text, or a list of texts and { text, text_pair } pairs (pair classifiers such as NLI read both in their pair template)' },
    ),
    model: Type.Optional(ModelName),
    top_k: Type.Optional(Type.Integer({ minimum: 1, description: 'Labels to return per text, best first; all when omitted' })),
    truncate: Type.Optional(Type.Boolean({ description: 'Cut texts longer than the model window instead of answering 413' })),
  },
  {
    examples: [
      { inputs: 'command-line utility to monitor network traffic and bandwidth usage', model: 'classify-demo', top_k: 3 },
      { inputs: ['a puzzle game with colourful blocks', 'library for numerical linear algebra and statistics'], model: 'classify-demo', top_k: 2 },
      { inputs: [{ text: 'a puzzle game with colourful blocks', text_pair: 'for children' }], model: 'classify-demo', top_k: 1 },
    ],
  },
);

const LabelScore = Type.Object({ label: Type.String(), score: Type.Number() });
const Response = Type.Object({
  model: Type.String(),
  model_version: Type.String({ description: 'The version that answered (manifest version + content digest); a replaced model answers in-flight requests with the version they started on' }),
  predictions: Type.Array(Type.Object({ label: Type.String(), score: Type.Number(), labels: Type.Array(LabelScore) })),
});

/** Text classification: softmax or sigmoid as the model declares, labels from id2label, top_k. */
const classifyRoute: FastifyPluginAsyncTypebox = async (app) => {
  const { limits } = app.config;
  app.post('/v1/classify', {
    schema: { tags: ['text-classification'], description: 'Labels with scores for one text or a list (texts or { text, text_pair } pairs), in input order.', body: Body, response: { 200: Response, ...inferenceErrors } },
    handler: async (req) => {
      const list = Array.isArray(req.body.inputs);
      const raw = list ? (req.body.inputs as (string | { text: string; text_pair: string })[]) : [req.body.inputs as string];
      checkBatch('inputs', raw.length, limits.maxBatchItems);
      const inputs = raw.map((x, i): ClassifyInput => {
        const where = list ? `inputs[${i}]` : 'inputs';
        if (typeof x === 'string') {
          checkText(where, x, limits.maxTextChars);
          return { text: x };
        }
        checkText(`${where}.text`, x.text, limits.maxTextChars);
        checkText(`${where}.text_pair`, x.text_pair, limits.maxTextChars);
        return { text: x.text, textPair: x.text_pair };
      });
      const model = await app.models.resolve('text-classification', req.body.model, req.lease);
      const predictions = await classify(model, inputs, ctxOf(req), { topK: req.body.top_k, truncate: req.body.truncate });
      return { model: model.name, model_version: model.version, predictions };
    },
  });
};

export default classifyRoute;
