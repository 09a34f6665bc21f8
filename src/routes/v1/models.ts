import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@fastify/type-provider-typebox';
import { GatewayError } from '../../errors.ts';
import { ErrorResponse } from '../schemas.ts';

export const ModelInfo = Type.Object(
  {
    name: Type.String(),
    source: Type.String(),
    required: Type.Boolean(),
    default: Type.Boolean({ description: 'Used for its task when a request names no model' }),
    state: Type.Union(['pending', 'downloading', 'verifying', 'unpacking', 'loading', 'warming', 'ready', 'degraded', 'failed'].map((s) => Type.Literal(s)), {
      description: 'degraded: loaded, but its remote inference server is not answering (requests get 503 with Retry-After until it is back)',
    }),
    error: Type.Optional(Type.String()),
    sha256: Type.Optional(Type.String()),
    version: Type.Optional(Type.String()),
    task: Type.Optional(Type.String()),
    description: Type.Optional(Type.String()),
    labels: Type.Optional(Type.Array(Type.String())),
    max_length: Type.Optional(Type.Integer()),
    score: Type.Optional(Type.Object({ min: Type.Number(), max: Type.Number(), round: Type.Optional(Type.Number()) })),
    threshold: Type.Optional(Type.Number()),
    backend: Type.Optional(
      Type.Object(
        { kind: Type.Literal('kserve-v2'), url: Type.String(), model: Type.String(), version: Type.Optional(Type.String()) },
        { description: 'The remote Open Inference Protocol server that runs this model\'s graph' },
      ),
    ),
    timings: Type.Record(Type.String(), Type.Number(), { description: 'Milliseconds per boot step' }),
    warmup: Type.Optional(
      Type.Object({
        shapes: Type.Array(Type.Object({ batch: Type.Integer(), seq: Type.Integer(), ms: Type.Number() })),
        batch_invariance_max_diff: Type.Optional(Type.Number()),
        tuned: Type.Optional(Type.Object({ target_ms: Type.Number(), fixed_ms: Type.Number(), ms_per_1k_tokens: Type.Number(), batch_tokens: Type.Integer() })),
      }),
    ),
  },
  { $id: 'ModelInfo' },
);

const models: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/v1/models', {
    schema: {
      tags: ['models'],
      description: 'Every configured model with its task, state (failed ones with their error), labels, limits and warm-up timings.',
      response: { 200: Type.Object({ object: Type.Literal('list'), data: Type.Array(Type.Ref('ModelInfo')) }) },
    },
    handler: async () => ({ object: 'list' as const, data: app.models.list() }),
  });

  app.get('/v1/models/:name', {
    schema: {
      tags: ['models'],
      description: 'One model.',
      params: Type.Object({ name: Type.String({ examples: ['qa-demo'] }) }),
      response: { 200: Type.Ref('ModelInfo'), 404: Type.Ref('ErrorResponse') },
    },
    handler: async (req) => {
      const s = app.models.status(req.params.name);
      if (!s) {
        const names = app.models.list().map((m) => m.name);
        throw new GatewayError('model_not_found', `unknown model "${req.params.name}"; models: ${names.join(', ')}`, { details: { models: names } });
      }
      return s;
    },
  });
};

export default models;
export { ErrorResponse };
