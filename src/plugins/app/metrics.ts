import fp from 'fastify-plugin';
import type { FastifyInstance, FastifyReply, FastifyRequest, onResponseHookHandler } from 'fastify';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

const MS_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export function createMetrics() {
  const registry = new Registry();
  /** Read at scrape time by gauges whose value lives elsewhere (set by the plugin that owns it). */
  const sizers: { collectionStoreBytes?: () => Promise<number> } = {};
  collectDefaultMetrics({ register: registry, prefix: 'gateway_process_' });
  const m = {
    registry,
    requests: new Counter({ name: 'gateway_requests_total', help: 'HTTP requests answered', labelNames: ['route', 'method', 'status'] as const, registers: [registry] }),
    errors: new Counter({ name: 'gateway_errors_total', help: 'Error responses by error code', labelNames: ['code'] as const, registers: [registry] }),
    duration: new Histogram({ name: 'gateway_request_duration_seconds', help: 'Time to answer a request', labelNames: ['route'] as const, buckets: MS_BUCKETS, registers: [registry] }),
    queue: new Histogram({ name: 'gateway_queue_seconds', help: 'Time a request waited for a worker', labelNames: ['model'] as const, buckets: MS_BUCKETS, registers: [registry] }),
    tokenize: new Histogram({ name: 'gateway_tokenize_seconds', help: 'Time spent tokenizing a request', labelNames: ['model'] as const, buckets: MS_BUCKETS, registers: [registry] }),
    inference: new Histogram({ name: 'gateway_inference_seconds', help: 'ONNX Runtime time of one batch', labelNames: ['model'] as const, buckets: MS_BUCKETS, registers: [registry] }),
    batchSize: new Histogram({ name: 'gateway_batch_size', help: 'Sequences per ONNX Runtime call', labelNames: ['model'] as const, buckets: [1, 2, 4, 8, 16, 32, 64, 128], registers: [registry] }),
    paddingRatio: new Histogram({ name: 'gateway_batch_padding_ratio', help: 'Share of a batch spent on padding tokens', labelNames: ['model'] as const, buckets: [0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75], registers: [registry] }),
    modelsReady: new Gauge({ name: 'gateway_models_loaded', help: 'Models ready to serve', registers: [registry] }),
    queueDepth: new Gauge({ name: 'gateway_queue_depth', help: 'Sequences waiting, per model', labelNames: ['model'] as const, registers: [registry] }),
    cacheHits: new Gauge({ name: 'gateway_cache_hits', help: 'Cache hits since start', labelNames: ['cache'] as const, registers: [registry] }),
    cacheMisses: new Gauge({ name: 'gateway_cache_misses', help: 'Cache misses since start', labelNames: ['cache'] as const, registers: [registry] }),
    cacheBytes: new Gauge({ name: 'gateway_cache_bytes', help: 'Memory held by a cache (estimated)', labelNames: ['cache'] as const, registers: [registry] }),
    workerRestarts: new Gauge({ name: 'gateway_worker_restarts', help: 'Inference workers replaced after a crash', registers: [registry] }),
    modelLoads: new Counter({ name: 'gateway_model_loads_total', help: 'Model loads (boot, lazy first use, replacement) by result', labelNames: ['model', 'result'] as const, registers: [registry] }),
    modelUnloads: new Counter({ name: 'gateway_model_unloads_total', help: 'Model versions unloaded, by reason (replaced, removed, evicted)', labelNames: ['model', 'reason'] as const, registers: [registry] }),
    modelLoadStep: new Histogram({
      name: 'gateway_model_load_step_seconds',
      help: 'Time of each load step (fetch, manifest, tokenizer, session, warmup)',
      labelNames: ['model', 'step'] as const,
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [registry],
    }),
    semanticLookups: new Counter({ name: 'gateway_semantic_cache_lookups_total', help: 'Semantic cache lookups by result (hit, miss)', labelNames: ['result'] as const, registers: [registry] }),
    semanticNearestMiss: new Histogram({
      name: 'gateway_semantic_cache_nearest_miss_similarity',
      help: 'Cosine of the nearest earlier input when the semantic cache missed: where a lower threshold would have hit',
      buckets: [0.5, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99, 0.995, 1],
      registers: [registry],
    }),
    collectionChunks: new Counter({ name: 'gateway_collection_chunks_ingested_total', help: 'Chunks written into collections', labelNames: ['collection'] as const, registers: [registry] }),
    collectionIngest: new Histogram({ name: 'gateway_collection_ingest_seconds', help: 'Time of one ingest request (chunk, embed, write)', buckets: [0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300], registers: [registry] }),
    collectionRetrieval: new Histogram({ name: 'gateway_collection_retrieval_seconds', help: 'Retrieval time of a collection search, by mode (and the rerank step)', labelNames: ['mode'] as const, buckets: MS_BUCKETS, registers: [registry] }),
    collectionReading: new Histogram({ name: 'gateway_collection_reading_seconds', help: 'Time the QA model took to read the retrieved chunks', buckets: MS_BUCKETS, registers: [registry] }),
    collectionStoreBytes: new Gauge({
      name: 'gateway_collection_store_bytes',
      help: 'Size of the collections store (file, or database)',
      registers: [registry],
      async collect() {
        if (sizers.collectionStoreBytes) this.set(await sizers.collectionStoreBytes().catch(() => 0));
      },
    }),
    sizers,
    modelMemory: new Gauge({ name: 'gateway_model_memory_bytes', help: 'Memory each loaded model took at load (growth of the process RSS)', labelNames: ['model'] as const, registers: [registry] }),
  };
  return m;
}

export type Metrics = ReturnType<typeof createMetrics>;

declare module 'fastify' {
  interface FastifyInstance {
    metrics: Metrics;
  }
}

/**
 * Prometheus metrics; its own registry per app, so several apps (tests) never collide. Each route gets its own
 * onResponse hook that knows its URL (the `route` label): reading request.routeOptions builds a new object on
 * every access. Requests that match no route are counted by one global hook as "unmatched".
 */
async function metricsPlugin(app: FastifyInstance) {
  const metrics = createMetrics();
  app.decorate('metrics', metrics);
  const record = (route: string, request: FastifyRequest, reply: FastifyReply) => {
    metrics.requests.inc({ route, method: request.method, status: String(reply.statusCode) });
    metrics.duration.observe({ route }, reply.elapsedTime / 1000);
    const t = request.timings;
    if (t?.model) {
      metrics.queue.observe({ model: t.model }, t.queueMs / 1000);
      metrics.tokenize.observe({ model: t.model }, t.tokenizeMs / 1000);
    }
  };
  app.addHook('onRoute', (route) => {
    const url = route.url;
    const hook: onResponseHookHandler = (request, reply, done) => {
      record(url, request, reply);
      done();
    };
    route.onResponse = [...(route.onResponse === undefined ? [] : [route.onResponse].flat()), hook];
  });
  app.addHook('onResponse', (request, reply, done) => {
    if (request.is404) record('unmatched', request, reply);
    done();
  });
}

export default fp(metricsPlugin, { name: 'metrics' });
