import { LogController, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import fp from 'fastify-plugin';
import { TypeBoxValidatorCompiler } from '@fastify/type-provider-typebox';
import { randomUUID } from 'node:crypto';
import type { GatewayConfig } from './config/schema.ts';
import configPlugin from './plugins/app/config.ts';
import errorsPlugin from './plugins/app/errors.ts';
import metricsPlugin from './plugins/app/metrics.ts';
import modelsPlugin from './plugins/app/models.ts';
import cachesPlugin from './plugins/app/caches.ts';
import collectionsPlugin from './plugins/app/collections.ts';
import feedbackPlugin from './plugins/app/feedback.ts';
import requestContext from './plugins/app/request-context.ts';
import swaggerPlugin from './plugins/external/swagger.ts';
import webPlugin from './plugins/external/web.ts';
import securityPlugin from './plugins/external/security.ts';
import healthRoutes from './routes/health.ts';
import metricsRoutes from './routes/metrics.ts';
import modelRoutes, { ModelInfo, modelAdminRoutes } from './routes/v1/models.ts';
import embeddingRoutes from './routes/v1/embeddings.ts';
import qaRoutes from './routes/v1/qa.ts';
import similarityRoutes from './routes/v1/similarity.ts';
import essayRoutes from './routes/v1/essays.ts';
import classifyRoutes from './routes/v1/classify.ts';
import hfRoutes from './routes/hf.ts';
import rerankRoutes from './routes/v1/rerank.ts';
import teiRoutes from './routes/tei.ts';
import v2Routes from './routes/v2.ts';
import collectionRoutes from './routes/v1/collections.ts';
import feedbackRoutes from './routes/v1/feedback.ts';
import { ErrorResponse } from './routes/schemas.ts';

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Fastify instance options that follow from the config (server.ts and the test helper both use them). */
export function serverOptions(config: GatewayConfig): FastifyServerOptions {
  return {
    bodyLimit: config.server.bodyLimitBytes,
    trustProxy: config.server.trustProxy,
    requestIdHeader: false,
    // Keep a well-formed X-Request-Id from Nginx or the client, so one id follows a request through the stack.
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
    return503OnClosing: true,
    // One access-log line per request (request-context's onResponse), not Fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    forceCloseConnections: 'idle',
  };
}

/** The gateway as a plugin: never listens (server.ts does). Swagger first, so it sees every route. */
async function app(fastify: FastifyInstance, opts: { config: GatewayConfig }) {
  fastify.setValidatorCompiler(TypeBoxValidatorCompiler);
  // JSON (and multipart where a route registers it) only: anything else is a 415, not a string body.
  fastify.removeContentTypeParser('text/plain');
  fastify.addSchema(ErrorResponse);
  fastify.addSchema(ModelInfo);
  await fastify.register(configPlugin, { config: opts.config });
  await fastify.register(metricsPlugin);
  await fastify.register(errorsPlugin);
  await fastify.register(requestContext);
  await fastify.register(securityPlugin);
  await fastify.register(swaggerPlugin);
  await fastify.register(modelsPlugin);
  await fastify.register(cachesPlugin);
  await fastify.register(collectionsPlugin);
  await fastify.register(feedbackPlugin);
  await fastify.register(healthRoutes);
  await fastify.register(metricsRoutes);
  await fastify.register(modelRoutes);
  await fastify.register(modelAdminRoutes);
  await fastify.register(embeddingRoutes);
  await fastify.register(qaRoutes);
  await fastify.register(similarityRoutes);
  await fastify.register(essayRoutes);
  await fastify.register(classifyRoutes);
  await fastify.register(rerankRoutes);
  await fastify.register(hfRoutes);
  await fastify.register(teiRoutes);
  await fastify.register(v2Routes);
  await fastify.register(collectionRoutes);
  await fastify.register(feedbackRoutes);
  await fastify.register(webPlugin);
}

/** Not encapsulated, so server.ts and tests see the decorators (models, metrics, draining). */
export default fp(app, { name: 'gateway' });
