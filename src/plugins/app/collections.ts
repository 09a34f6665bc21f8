import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import type { CollectionStore } from '../../collections/types.ts';
import { MemoryStore } from '../../collections/stores/memory/index.ts';
import { SqliteStore } from '../../collections/stores/sqlite/index.ts';
import { PostgresStore } from '../../collections/stores/postgres/index.ts';
import { CollectionService } from '../../services/collections.ts';
import type { GatewayConfig } from '../../config/schema.ts';

declare module 'fastify' {
  interface FastifyInstance {
    collections: CollectionService;
  }
}

/** The store the config names: the embedded SQLite file by default, PostgreSQL + pgvector to share it between replicas. */
export function storeFor(c: GatewayConfig['collections']): CollectionStore {
  switch (c.store) {
    case 'memory':
      return new MemoryStore();
    case 'sqlite':
      return new SqliteStore(c.dir);
    case 'postgres':
      if (!c.postgres.url) throw new Error('collections.store is postgres but collections.postgres.url is not set (GATEWAY_COLLECTIONS__POSTGRES__URL)');
      return new PostgresStore({ url: c.postgres.url, poolSize: c.postgres.poolSize });
  }
}

/** Collections as a closable service: the store is opened at start (a store that cannot open stops the start, naming it). */
async function collectionsPlugin(app: FastifyInstance) {
  const c = app.config.collections;
  const store = storeFor(c);
  try {
    await store.open();
  } catch (err) {
    const where = c.store === 'postgres' ? `postgres at ${c.postgres.url?.replace(/\/\/[^@/]*@/, '//***@')}` : c.store === 'sqlite' ? (store as SqliteStore).file : 'memory';
    throw new Error(`the collections store (${where}) cannot be opened: ${(err as Error).message}`, { cause: err });
  }
  const { metrics } = app;
  // The bundled config names retrieve-demo; a config whose model list lacks the named model (its own models,
  // deep-merged over the defaults) gets the default sentence-similarity model instead of failing every create.
  const listed = c.embeddingModel === undefined || app.config.models.some((m) => m.name === c.embeddingModel);
  if (!listed) app.log.warn({ embeddingModel: c.embeddingModel }, 'collections.embeddingModel is not in the model list: new collections use the default sentence-similarity model');
  const service = new CollectionService(store, app.models, listed ? c : { ...c, embeddingModel: undefined }, app.log, {
    onIngest: (e) => {
      metrics.collectionChunks.inc({ collection: e.collection }, e.chunks);
      metrics.collectionIngest.observe(e.seconds);
    },
    onRetrieve: (e) => metrics.collectionRetrieval.observe({ mode: e.mode }, e.seconds),
    onRead: (e) => metrics.collectionReading.observe(e.seconds),
  });
  app.decorate('collections', service);
  metrics.sizers.collectionStoreBytes = () => store.sizeBytes();
  app.addHook('onClose', async () => store.close());
}

export default fp(collectionsPlugin, { name: 'collections', dependencies: ['config', 'metrics', 'models'] });
