import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@fastify/type-provider-typebox';
import { GatewayError } from '../../errors.ts';
import { scoreEssays } from '../../services/essays.ts';
import { checkBatch, checkText } from '../../services/limits.ts';
import { inferenceErrors, ModelName } from '../schemas.ts';
import { ctxOf } from '../context.ts';

const EXAMPLE =
  'Public libraries matter more today than ever. First, they give everyone free access to books and to the internet, which many families cannot afford at home. Second, they are quiet places where students can study after school. Finally, libraries organise events that bring neighbours together. For these reasons, cities should keep funding them.';

const Body = Type.Object(
  {
    essay: Type.Optional(Type.String({ minLength: 1, description: 'One essay' })),
    essays: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { minItems: 1, description: 'Several essays (instead of essay)' })),
    model: Type.Optional(ModelName),
  },
  { examples: [{ essay: EXAMPLE, model: 'essay-demo' }, { essays: [EXAMPLE, 'Libraries. Books are. The internet and then nothing because.'], model: 'essay-demo-bands' }] },
);

const Scale = Type.Object({ min: Type.Number(), max: Type.Number() });
const Result = Type.Object({
  score: Type.Number({ description: 'On the model rubric, clamped and rounded to its step' }),
  raw: Type.Number({ description: 'Unrounded aggregate' }),
  scale: Scale,
  windows: Type.Integer({ description: 'Windows the essay was read in (long essays are read whole)' }),
});
const Response = Type.Object({
  model: Type.String(),
  model_version: Type.String({ description: 'The version that answered (manifest version + content digest); a replaced model answers in-flight requests with the version they started on' }),
  score: Type.Optional(Type.Number()),
  raw: Type.Optional(Type.Number()),
  scale: Type.Optional(Scale),
  windows: Type.Optional(Type.Integer()),
  results: Type.Optional(Type.Array(Result)),
});

/** Essay scoring on the model's rubric; the head's rule (regression or bands) comes from gateway.json. */
const essays: FastifyPluginAsyncTypebox = async (app) => {
  const { limits } = app.config;
  app.post('/v1/essays/score', {
    schema: {
      tags: ['essay-scoring'],
      description: 'Scores one essay (`essay`) or several (`essays`). Long essays are read in overlapping windows and aggregated, never cut.',
      body: Body,
      response: { 200: Response, ...inferenceErrors },
    },
    handler: async (req) => {
      const { essay, essays: list } = req.body;
      if ((essay === undefined) === (list === undefined)) throw new GatewayError('invalid_request', 'send exactly one of "essay" (a string) or "essays" (a list of strings)');
      const texts = list ?? [essay!];
      if (list) checkBatch('essays', list.length, limits.maxBatchItems);
      texts.forEach((t, i) => checkText(list ? `essays[${i}]` : 'essay', t, limits.maxEssayChars));
      const model = await app.models.resolve('essay-scoring', req.body.model, req.lease);
      const scores = await scoreEssays(model, texts, ctxOf(req), { stride: limits.essayStride });
      const results = scores.map((s) => ({ score: s.score, raw: s.raw, scale: s.scale, windows: s.windows }));
      return list ? { model: model.name, model_version: model.version, results } : { model: model.name, model_version: model.version, ...results[0] };
    },
  });
};

export default essays;
