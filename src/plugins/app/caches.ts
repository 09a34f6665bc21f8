import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import { Caches } from '../../services/caches.ts';
import { embed } from '../../services/embeddings.ts';
import { SemanticCache } from '../../services/semantic-cache.ts';

declare module 'fastify' {
  interface FastifyInstance {
    caches: Caches;
  }
}

/**
 * The embedding and result caches, sized from config, and the semantic cache when it is on; their hit, miss and
 * size figures go to /metrics.
 */
async function cachesPlugin(app: FastifyInstance) {
  const { cache } = app.config;
  const caches = new Caches({ embeddingBytes: cache.embeddingBytes, resultBytes: cache.resultBytes });
  const s = cache.semantic;
  if (s.enabled) {
    const { metrics } = app;
    caches.semantic = new SemanticCache(
      { threshold: s.threshold, tasks: s.tasks, maxEntries: s.maxEntries, maxBytes: s.maxBytes, ttlMs: s.ttlMs },
      async (texts) => {
        // The cache's own embedding model, through the same batcher as every request (its embedding cache too).
        const model = await app.models.resolve('sentence-similarity', s.model);
        const fits = await Promise.all(texts.map(async (t) => (await model.tokenizer.encodeIds(t)).ids.length <= model.manifest.maxLength));
        const readable = texts.filter((_, i) => fits[i]);
        const ctx = { timings: { tokenizeMs: 0, queueMs: 0, inferenceMs: 0 }, caches };
        const { vectors } = readable.length ? await embed(model, readable, ctx, { normalize: true }) : { vectors: [] };
        let at = 0;
        return { modelKey: model.cacheKey, vectors: fits.map((ok) => (ok ? vectors[at++] : undefined)) };
      },
      (e) => {
        metrics.semanticLookups.inc({ result: e.hit ? 'hit' : 'miss' });
        if (!e.hit && e.similarity !== undefined) metrics.semanticNearestMiss.observe(e.similarity);
      },
    );
    app.log.info({ threshold: s.threshold, tasks: s.tasks, model: s.model ?? '(default sentence-similarity model)' }, 'semantic cache on');
  }
  app.decorate('caches', caches);
}

export default fp(cachesPlugin, { name: 'caches', dependencies: ['config', 'models', 'metrics'] });
