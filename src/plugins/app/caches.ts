import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import { Caches } from '../../services/caches.ts';

declare module 'fastify' {
  interface FastifyInstance {
    caches: Caches;
  }
}

/** The embedding and result caches, sized from config; their hit, miss and size figures go to /metrics. */
async function cachesPlugin(app: FastifyInstance) {
  const caches = new Caches({ embeddingBytes: app.config.cache.embeddingBytes, resultBytes: app.config.cache.resultBytes });
  app.decorate('caches', caches);
}

export default fp(cachesPlugin, { name: 'caches', dependencies: ['config'] });
