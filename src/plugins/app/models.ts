import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import { ModelRegistry } from '../../inference/registry.ts';

declare module 'fastify' {
  interface FastifyInstance {
    models: ModelRegistry;
  }
}

/**
 * The model registry as a closable service. Boot is not started here: server.ts starts it after listen (so
 * /health/live and /health/ready answer during boot) and tests await it.
 */
async function modelsPlugin(app: FastifyInstance) {
  const { metrics } = app;
  const registry = new ModelRegistry(app.config, app.log, {
    onBatch: (e) => {
      metrics.batchSize.observe({ model: e.model }, e.size);
      metrics.inference.observe({ model: e.model }, e.inferenceMs / 1000);
      metrics.paddingRatio.observe({ model: e.model }, e.paddedTokens ? 1 - e.realTokens / e.paddedTokens : 0);
    },
    onLoad: (e) => {
      metrics.modelLoads.inc({ model: e.model, result: e.result });
      for (const [step, ms] of Object.entries(e.steps)) metrics.modelLoadStep.observe({ model: e.model, step }, ms / 1000);
      if (e.memoryBytes !== undefined) metrics.modelMemory.set({ model: e.model }, e.memoryBytes);
    },
    onUnload: (e) => {
      metrics.modelUnloads.inc({ model: e.model, reason: e.reason });
      if (e.reason !== 'replaced') metrics.modelMemory.remove({ model: e.model });
    },
  });
  registry.onState(() => metrics.modelsReady.set(registry.list().filter((m) => m.state === 'ready').length));
  app.decorate('models', registry);
  app.addHook('onClose', async () => registry.close());
}

export default fp(modelsPlugin, { name: 'models', dependencies: ['config', 'metrics'] });
