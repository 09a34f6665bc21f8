import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@fastify/type-provider-typebox';

const ModelStates = Type.Record(Type.String(), Type.String(), { description: 'State of each model' });

/** Liveness answers while the process can; readiness only when every required model is ready and not draining. */
const health: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/health/live', {
    schema: { tags: ['ops'], description: 'Liveness: 200 while the process can answer.', response: { 200: Type.Object({ status: Type.Literal('ok') }) } },
    handler: async () => ({ status: 'ok' as const }),
  });

  app.get('/health/ready', {
    schema: {
      tags: ['ops'],
      description: 'Readiness: 200 only when every required model is ready and the inference workers run; 503 with per-model states before that, while draining, and when the workers keep failing to start.',
      response: {
        200: Type.Object({ status: Type.Literal('ready'), models: ModelStates }),
        503: Type.Object({
          status: Type.Union([Type.Literal('starting'), Type.Literal('draining'), Type.Literal('unhealthy')]),
          models: ModelStates,
          reason: Type.Optional(Type.String({ description: 'Why an unhealthy replica cannot serve (e.g. inference workers that keep failing to start)' })),
        }),
      },
    },
    handler: async (_req, reply) => {
      const models = Object.fromEntries(app.models.list().map((m) => [m.name, m.state]));
      if (app.draining) return reply.status(503).header('retry-after', '1').send({ status: 'draining' as const, models });
      const reason = app.models.unhealthy();
      if (reason) return reply.status(503).header('retry-after', '5').send({ status: 'unhealthy' as const, models, reason });
      if (!app.models.isReady()) return reply.status(503).header('retry-after', '2').send({ status: 'starting' as const, models });
      return { status: 'ready' as const, models };
    },
  });
};

export default health;
