import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';

const metrics: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/metrics', {
    schema: { tags: ['ops'], description: 'Prometheus metrics: requests, errors by code, queue/tokenize/inference time, batch sizes, models loaded.', produces: ['text/plain'] },
    handler: async (_req, reply) => {
      const { metrics: m } = app;
      for (const [model, depth] of Object.entries(app.models.queued())) m.queueDepth.set({ model }, depth);
      m.workerRestarts.set(app.models.pool.restarts);
      for (const [cache, c] of Object.entries({ embeddings: app.caches.embeddings, results: app.caches.results })) {
        const st = c.stats();
        m.cacheHits.set({ cache }, st.hits);
        m.cacheMisses.set({ cache }, st.misses);
        m.cacheBytes.set({ cache }, st.bytes);
      }
      const sem = app.caches.semantic?.stats();
      if (sem) {
        m.cacheHits.set({ cache: 'semantic' }, sem.hits);
        m.cacheMisses.set({ cache: 'semantic' }, sem.misses);
        m.cacheBytes.set({ cache: 'semantic' }, sem.bytes);
      }
      return reply.type(m.registry.contentType).send(await m.registry.metrics());
    },
  });
};

export default metrics;
