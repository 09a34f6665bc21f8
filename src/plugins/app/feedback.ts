import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import type { GatewayConfig } from '../../config/schema.ts';
import type { FeedbackStore } from '../../feedback/types.ts';
import { JournalStore } from '../../feedback/stores/journal.ts';
import { PostgresFeedbackStore } from '../../feedback/stores/postgres.ts';
import { FeedbackService } from '../../services/feedback.ts';

declare module 'fastify' {
  interface FastifyInstance {
    feedback: FeedbackService;
  }
}

/** The feedback store the config names: the collections database when it is PostgreSQL, else an fsynced journal. */
export function feedbackStoreFor(config: GatewayConfig): FeedbackStore {
  const { feedback, collections } = config;
  const postgres = feedback.store === 'postgres' || (feedback.store === 'auto' && collections.store === 'postgres');
  if (!postgres) return new JournalStore(feedback.dir);
  if (!collections.postgres.url) throw new Error('feedback.store is postgres but collections.postgres.url is not set');
  return new PostgresFeedbackStore({ url: collections.postgres.url, poolSize: collections.postgres.poolSize });
}

async function feedbackPlugin(app: FastifyInstance) {
  const store = feedbackStoreFor(app.config);
  try {
    await store.open();
  } catch (err) {
    throw new Error(`the feedback store (${store.kind}) cannot be opened: ${(err as Error).message}`, { cause: err });
  }
  app.decorate('feedback', new FeedbackService(store, app.collections.store, { recentAnswers: app.config.feedback.recentAnswers, maxContextChars: app.config.limits.maxContextChars }));
  app.addHook('onClose', async () => store.close());
}

export default fp(feedbackPlugin, { name: 'feedback', dependencies: ['config', 'collections'] });
