import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@fastify/type-provider-typebox';
import { answerQuestions } from '../../services/qa.ts';
import { checkBatch, checkText } from '../../services/limits.ts';
import { inferenceErrors, ModelName } from '../schemas.ts';
import { ctxOf } from '../context.ts';

const Options = {
  model: Type.Optional(ModelName),
  top_k: Type.Optional(Type.Integer({ minimum: 1, maximum: 20, default: 1, description: 'Answers to return, best first' })),
  max_answer_length: Type.Optional(Type.Integer({ minimum: 1, maximum: 512, default: 30, description: 'Longest answer, in tokens' })),
  handle_impossible_answer: Type.Optional(Type.Boolean({ default: false, description: 'SQuAD 2.0: allow the empty answer (start = end = 0) when the context does not answer' })),
};

const Answer = Type.Object({
  answer: Type.String({ description: 'Exactly context.slice(start, end)' }),
  score: Type.Number(),
  start: Type.Integer({ description: 'UTF-16 index into context (JavaScript string index)' }),
  end: Type.Integer(),
});

const EXAMPLE_CONTEXT =
  'The nginx package provides a small, powerful, scalable web and proxy server. It is maintained by the Debian Nginx Maintainers and is written in C. The package is in the httpd section.';

export const QaBody = Type.Object(
  { question: Type.String({ minLength: 1 }), context: Type.String({ minLength: 1 }), ...Options },
  { examples: [{ question: 'Who maintains the nginx package?', context: EXAMPLE_CONTEXT, model: 'qa-demo', top_k: 2 }] },
);

const QaBatchBody = Type.Object(
  { items: Type.Array(Type.Object({ question: Type.String({ minLength: 1 }), context: Type.String({ minLength: 1 }) }), { minItems: 1 }), ...Options },
  {
    examples: [
      {
        items: [
          { question: 'What language is nginx written in?', context: EXAMPLE_CONTEXT },
          { question: 'Which section is the package in?', context: EXAMPLE_CONTEXT },
        ],
        model: 'qa-demo',
      },
    ],
  },
);

const QaResponse = Type.Object({ model: Type.String(),
  model_version: Type.String({ description: 'The version that answered (manifest version + content digest); a replaced model answers in-flight requests with the version they started on' }), answers: Type.Array(Answer), windows: Type.Integer({ description: 'Windows the context was read in' }) });
const QaBatchResponse = Type.Object({ model: Type.String(),
  model_version: Type.String({ description: 'The version that answered (manifest version + content digest); a replaced model answers in-flight requests with the version they started on' }), results: Type.Array(Type.Object({ answers: Type.Array(Answer), windows: Type.Integer() })) });

/** Extractive question answering: exact offsets, long contexts in overlapping windows, SQuAD 2.0 "no answer". */
const qa: FastifyPluginAsyncTypebox = async (app) => {
  const { limits } = app.config;
  const opts = (b: { top_k?: number; max_answer_length?: number; handle_impossible_answer?: boolean }) => ({
    topK: b.top_k ?? 1,
    maxAnswerLength: b.max_answer_length ?? 30,
    handleImpossibleAnswer: b.handle_impossible_answer ?? false,
    stride: limits.qaStride,
  });

  app.post('/v1/qa', {
    schema: {
      tags: ['question-answering'],
      description: 'Answer spans for a question over a context. Every answer equals context.slice(start, end); contexts longer than the model window are read in overlapping windows, never cut.',
      body: QaBody,
      response: { 200: QaResponse, ...inferenceErrors },
    },
    handler: async (req) => {
      checkText('question', req.body.question, limits.maxTextChars);
      checkText('context', req.body.context, limits.maxContextChars);
      const model = await app.models.resolve('question-answering', req.body.model, req.lease);
      const [r] = await answerQuestions(model, [req.body], ctxOf(req), opts(req.body));
      app.feedback.answered(req.id, model.name, model.version);
      return { model: model.name, model_version: model.version, answers: r.answers, windows: r.windows };
    },
  });

  app.post('/v1/qa/batch', {
    schema: {
      tags: ['question-answering'],
      description: 'Several (question, context) items in one call; all their windows are batched together. Results in input order.',
      body: QaBatchBody,
      response: { 200: QaBatchResponse, ...inferenceErrors },
    },
    handler: async (req) => {
      checkBatch('items', req.body.items.length, limits.maxBatchItems);
      req.body.items.forEach((it, i) => {
        checkText(`items[${i}].question`, it.question, limits.maxTextChars);
        checkText(`items[${i}].context`, it.context, limits.maxContextChars);
      });
      const model = await app.models.resolve('question-answering', req.body.model, req.lease);
      const results = await answerQuestions(model, req.body.items, ctxOf(req), opts(req.body));
      app.feedback.answered(req.id, model.name, model.version);
      return { model: model.name, model_version: model.version, results };
    },
  });
};

export default qa;
