import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@fastify/type-provider-typebox';
import { GatewayError } from '../../errors.ts';
import { checkText } from '../../services/limits.ts';
import { inferenceErrors, ModelName } from '../schemas.ts';

const Span = (what: string) => Type.Object({ start: Type.Integer({ minimum: 0 }), end: Type.Integer({ minimum: 1 }) }, { additionalProperties: false, description: what });

const Body = Type.Object(
  {
    request_id: Type.Optional(Type.String({ minLength: 1, maxLength: 128, description: 'x-request-id of the answer: ties the feedback to the model version that gave it' })),
    question: Type.String({ minLength: 1 }),
    context: Type.Optional(Type.String({ minLength: 1, description: 'The QA context (or give collection and document_id)' })),
    collection: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    document_id: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
    answer: Type.Optional(Type.Object({ text: Type.String(), start: Type.Integer({ minimum: 0 }) }, { additionalProperties: false, description: 'The answer being judged ("" for no answer)' })),
    correct: Type.Boolean(),
    correction: Type.Optional(Span('The right answer, as [start, end) of the context, when the answer was wrong')),
    model: Type.Optional(ModelName),
    model_version: Type.Optional(Type.String({ maxLength: 128 })),
  },
  {
    additionalProperties: false,
    examples: [
      {
        question: 'Who maintains the nginx package?',
        context: 'The nginx package is maintained by the Debian Nginx Maintainers.',
        answer: { text: 'Debian Nginx Maintainers', start: 39 },
        correct: true,
      },
    ],
  },
);

const SquadAnswer = Type.Object({ text: Type.String(), answer_start: Type.Integer() });
const SquadQa = Type.Object({ id: Type.String(), question: Type.String(), answers: Type.Array(SquadAnswer), is_impossible: Type.Boolean() });
const Squad = Type.Object({ version: Type.String(), data: Type.Array(Type.Object({ title: Type.String(), paragraphs: Type.Array(Type.Object({ context: Type.String(), qas: Type.Array(SquadQa) })) })) });

/** Answer feedback (write scope): stored durably before the 201, exported as SQuAD 2.0. */
const feedback: FastifyPluginAsyncTypebox = async (app) => {
  const { limits } = app.config;
  app.post('/v1/feedback', {
    config: { scope: 'write' },
    schema: {
      tags: ['feedback'],
      description: 'Mark an answer right or wrong, optionally with the right span. Stored durably (on disk, or committed) before the 201.',
      body: Body,
      response: { 201: Type.Object({ id: Type.String(), model_version: Type.Optional(Type.String()) }), ...inferenceErrors },
    },
    handler: async (req, reply) => {
      checkText('question', req.body.question, limits.maxTextChars);
      const r = await app.feedback.add(req.body);
      return reply.status(201).send({ id: r.id, ...(r.model_version ? { model_version: r.model_version } : {}) });
    },
  });

  app.get('/v1/feedback/export', {
    config: { scope: 'write' },
    schema: {
      tags: ['feedback'],
      description: 'All feedback as SQuAD 2.0 JSON: right answers and corrections as answers, "wrong" without a correction as unanswerable. Ready for fine-tuning (scripts/train, FEEDBACK_FILE).',
      querystring: Type.Object({ format: Type.Optional(Type.Literal('squad')) }),
      response: { 200: Squad, 400: inferenceErrors[400] },
    },
    handler: async (req) => {
      if (req.query.format && req.query.format !== 'squad') throw new GatewayError('invalid_request', 'format must be squad');
      return app.feedback.exportSquad();
    },
  });
};

export default feedback;
