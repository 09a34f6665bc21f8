import { Type, type Static } from 'typebox';

/**
 * The one config schema. Validated once at boot (src/config/load.ts); every knob is documented here,
 * where it is defined. Defaults are the committed values of config/default.json.
 */
const Strict = { additionalProperties: false } as const;

/**
 * A model whose graph runs on a remote inference server that speaks the Open Inference Protocol (KServe v2:
 * NVIDIA Triton, KServe, another gateway's /v2). The gateway keeps tokenization, batching and the task logic;
 * each batch its scheduler forms is one infer call (docs/remote-backends.md).
 */
export const BackendSchema = Type.Object(
  {
    kind: Type.Literal('kserve-v2'),
    url: Type.String({ pattern: '^https?://', description: 'Base URL of the v2 server, e.g. http://triton:8000 (the routes /v2/... are appended).' }),
    model: Type.Optional(Type.String({ minLength: 1, description: "The model's name on the remote server; the entry's own name when omitted." })),
    version: Type.Optional(Type.String({ minLength: 1, description: 'A model version on the remote server (/versions/<v>); the server picks one when omitted.' })),
    timeoutMs: Type.Integer({ minimum: 50, default: 5000, description: 'One infer call (or probe) may take this long; past it the batch fails with 503 and counts as a failure of the remote.' }),
    retries: Type.Integer({ minimum: 0, default: 1, description: 'Retries of a call that could not reach the remote (connection refused or reset before an answer); a timeout is never retried.' }),
    maxConcurrency: Type.Integer({ minimum: 1, default: 4, description: 'Infer calls in flight at once: the slots of this model\'s scheduler; batches form while all are busy.' }),
    breakAfter: Type.Integer({ minimum: 1, default: 3, description: 'Consecutive failed calls that open the circuit: the model turns degraded and requests get 503 with Retry-After at once.' }),
    probeIntervalMs: Type.Integer({ minimum: 50, default: 1000, description: 'While degraded: how often a half-open probe (model ready, then a one-row infer) checks whether the remote is back. Also Retry-After.' }),
    healthIntervalMs: Type.Integer({ minimum: 100, default: 5000, description: 'While serving: how often the remote model\'s readiness is polled, so a model the remote unloaded turns degraded without traffic.' }),
    bootWaitMs: Type.Integer({ minimum: 0, default: 60_000, description: 'At boot: how long to wait for the remote model to be ready (a Triton container starting beside the gateway) before the model fails.' }),
    binaryData: Type.Boolean({ default: true, description: "Send and fetch tensors with the binary tensor data extension (Triton's; much smaller than JSON for hidden states). false: JSON tensors only." }),
  },
  Strict,
);

export const ModelEntrySchema = Type.Object(
  {
    name: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$', description: 'Name clients select the model by.' }),
    source: Type.String({ minLength: 1, description: 's3://bucket/key.zip, a local .zip path, or a local folder (relative paths are resolved from the working directory).' }),
    sha256: Type.Optional(Type.String({ pattern: '^[a-f0-9]{64}$', description: 'Expected sha256 of the zip; verified after download, and lets a reboot skip the download.' })),
    required: Type.Optional(
      Type.Boolean({
        description:
          'Eager models: a required one that fails stops boot; an optional one is reported failed and the rest serve. Lazy models: a required one is never unloaded to make room. Default: true for eager models, false for lazy ones.',
      }),
    ),
    default: Type.Boolean({ default: false, description: 'The model used for its task when a request names none.' }),
    backend: Type.Optional(BackendSchema),
    load: Type.Union([Type.Literal('eager'), Type.Literal('lazy')], {
      default: 'eager',
      description:
        'eager: fetched, loaded and warmed at boot (predictable latency from the first request; readiness waits for it). lazy: listed as available and loaded by its first request (less memory and disk for models nobody asks for; that first request pays the load, see docs/models-at-run-time.md); readiness never waits for it, and under inference.memoryBudgetMb it may be unloaded when another lazy model needs the room.',
    }),
  },
  Strict,
);

export const ConfigSchema = Type.Object(
  {
    server: Type.Object(
      {
        host: Type.String({ default: '0.0.0.0' }),
        port: Type.Integer({ minimum: 0, maximum: 65535, default: 8080 }),
        bodyLimitBytes: Type.Integer({ minimum: 1024, default: 2 * 1024 * 1024, description: 'Largest request body; larger gets 413.' }),
        trustProxy: Type.Union([Type.Boolean(), Type.String()], { default: false, description: 'Fastify trustProxy: true, or a comma-separated list of proxy addresses, so rate limits and logs see the client behind Nginx.' }),
        shutdownGraceMs: Type.Integer({ minimum: 0, default: 10_000, description: 'On SIGTERM: how long in-flight requests may take before the process exits anyway.' }),
        drainDelayMs: Type.Integer({ minimum: 0, default: 1000, description: 'On SIGTERM: readiness answers 503 and new requests get 503 for this long (so load balancers move away) before the listener closes.' }),
        logLevel: Type.String({ default: 'info', description: 'pino level. At info every request writes one access line (method, URL without its query, status, ms): about 15-20 µs of CPU a request, a quarter of a cache hit (HIT=1 node --import tsx bench/ab-config.ts); warn leaves only problems, and is what the benchmarks run.' }),
        logFormat: Type.Union([Type.Literal('auto'), Type.Literal('json'), Type.Literal('pretty')], {
          default: 'auto',
          description: 'json: one JSON object per line (for log collectors); pretty: one readable line each (pino-pretty); auto: pretty on a terminal, json otherwise.',
        }),
        serveWebForm: Type.Boolean({ default: true, description: 'Serve web/ at / (the embedded default; behind Nginx the form is served by Nginx).' }),
      },
      { ...Strict, default: {} },
    ),
    store: Type.Object(
      {
        dir: Type.String({ default: 'var/models', description: 'Where unpacked models live (a cache: safe to delete).' }),
        s3: Type.Object(
          {
            endpoint: Type.Optional(Type.String({ description: 'S3-compatible endpoint (MinIO, s3rver); AWS when unset.' })),
            region: Type.String({ default: 'us-east-1' }),
            forcePathStyle: Type.Boolean({ default: true }),
          },
          { ...Strict, default: {} },
        ),
        download: Type.Object(
          {
            retries: Type.Integer({ minimum: 0, default: 4 }),
            backoffMs: Type.Integer({ minimum: 0, default: 500, description: 'First retry delay; doubles each retry.' }),
            timeoutMs: Type.Integer({ minimum: 100, default: 30_000, description: 'Also covers a stalled body stream: no byte for this long aborts and retries.' }),
          },
          { ...Strict, default: {} },
        ),
        limits: Type.Object(
          {
            maxEntries: Type.Integer({ minimum: 1, default: 1000 }),
            maxUncompressedBytes: Type.Integer({ minimum: 1, default: 2 * 1024 ** 3 }),
            maxEntryBytes: Type.Integer({ minimum: 1, default: 2 * 1024 ** 3 }),
          },
          { ...Strict, default: {} },
        ),
      },
      { ...Strict, default: {} },
    ),
    inference: Type.Object(
      {
        workers: Type.Integer({ minimum: 1, default: 2, description: 'Inference worker threads, one ONNX Runtime session per model in each. workers × intraOpThreads should equal the cores.' }),
        intraOpThreads: Type.Integer({ minimum: 1, default: 1 }),
        workerNice: Type.Integer({ minimum: 0, maximum: 19, default: 5, description: 'Linux nice value of the inference threads: above 0 the event loop (probes, admission, responses) keeps the CPU when inference saturates the cores.' }),
        maxBatchSize: Type.Integer({ minimum: 1, default: 32, description: 'Most sequences in one ONNX call.' }),
        maxBatchTokens: Type.Integer({ minimum: 1, default: 512, description: 'Token budget of one call: rows × longest row (padding counts). 512 measured best here (docs/performance.md, Tuning): 32 short sentences, or 2 windows of 256; a window of 384 goes alone (batches of long sequences cost more per item than single ones).' }),
        latencyTargetMs: Type.Number({
          minimum: 0,
          default: 0,
          description: 'When above 0, each model times a few batch sizes at warm-up and gets the token budget whose batches finish within this many ms (replacing maxBatchTokens for it); see /v1/models warmup.tuned.',
        }),
        maxWaitMs: Type.Number({ minimum: 0, default: 0, description: 'How long a batch may wait for more work when a worker is free. 0: send at once; batches still form while workers are busy.' }),
        fillWaitMs: Type.Number({
          minimum: 0,
          default: 2,
          description:
            'Under load only: how long a free worker may wait for a fuller batch while fewer sequences are queued than the model answered in the last fillWaitMs (those clients are about to send their next request). A request on an idle gateway never waits. 0: off.',
        }),
        queueCapacity: Type.Integer({ minimum: 1, default: 2048, description: 'Sequences waiting per model; past it requests get 503 with Retry-After.' }),
        requestDeadlineMs: Type.Integer({ minimum: 1, default: 30_000, description: 'A request still queued after this long gets 503.' }),
        tokenizerThreads: Type.Integer({ minimum: 1, default: 2, description: 'Threads that tokenize long inputs (QA contexts, essays) off the event loop.' }),
        tokenizeInlineMaxChars: Type.Integer({ minimum: 0, default: 2000, description: 'Inputs up to this many characters are tokenized on the event loop (a worker round trip costs more than they do).' }),
        checkBatchInvariance: Type.Boolean({ default: true, description: 'At warm-up, check that a row gives the same output alone and inside a padded batch.' }),
        lazyLoadWaitMs: Type.Integer({ minimum: 0, default: 10_000, description: 'How long a request to a lazy model that is still loading waits before it gets 503 with Retry-After (the load goes on).' }),
        memoryBudgetMb: Type.Integer({
          minimum: 0,
          default: 0,
          description: 'Memory the loaded models may take (each measured at load as the growth of the process RSS, all workers together); loading a lazy model past it first unloads the least recently used lazy models. Eager and required models are never unloaded. 0: no budget.',
        }),
        drainTimeoutMs: Type.Integer({ minimum: 0, default: 30_000, description: 'A replaced or removed model version is unloaded once its in-flight requests are done, or after this long at the latest.' }),
      },
      { ...Strict, default: {} },
    ),
    limits: Type.Object(
      {
        maxBatchItems: Type.Integer({ minimum: 1, default: 64, description: 'Items in one batch request (pairs, texts, essays, QA items).' }),
        maxTextChars: Type.Integer({ minimum: 1, default: 20_000, description: 'Longest sentence/text for embeddings, similarity and classification.' }),
        maxContextChars: Type.Integer({ minimum: 1, default: 200_000, description: 'Longest QA context.' }),
        maxEssayChars: Type.Integer({ minimum: 1, default: 100_000 }),
        qaStride: Type.Integer({ minimum: 0, default: 64, description: 'Tokens of overlap between QA windows.' }),
        essayStride: Type.Integer({ minimum: 0, default: 32, description: 'Tokens of overlap between essay windows.' }),
      },
      { ...Strict, default: {} },
    ),
    cache: Type.Object(
      {
        embeddingBytes: Type.Integer({ minimum: 0, default: 64 * 1024 ** 2, description: 'Memory for cached sentence embeddings (shared by similarity, batch, file, embeddings and HF routes); 0: off.' }),
        resultBytes: Type.Integer({ minimum: 0, default: 32 * 1024 ** 2, description: 'Memory for exact-result caches of QA and classification; 0: off.' }),
        semantic: Type.Object(
          {
            enabled: Type.Boolean({ default: false, description: 'After the exact cache misses, answer QA (same context or collection version), classification and essay requests from an earlier input at least `threshold` similar.' }),
            model: Type.Optional(Type.String({ description: 'The sentence-similarity model that embeds inputs for the cache; the default one when unset.' })),
            threshold: Type.Number({ minimum: 0, maximum: 1, default: 0.999, description: 'Cosine at or above which an earlier input counts as the same (higher: fewer, safer hits). The default is the lowest threshold that kept precision >= 0.98 on both STS-B classification sets with the bundled models (docs/semantic-cache.md); measure again for your own models.' }),
            tasks: Type.Array(Type.Union([Type.Literal('question-answering'), Type.Literal('text-classification'), Type.Literal('essay-scoring')]), {
              default: ['text-classification', 'essay-scoring'],
              uniqueItems: true,
              description: 'The tasks answered from the cache (question-answering covers collection QA). QA is left out by default: with the bundled reader no threshold kept precision >= 0.98, because the reader itself often answers a reworded question differently (docs/semantic-cache.md).',
            }),
            maxEntries: Type.Integer({ minimum: 1, default: 10_000 }),
            maxBytes: Type.Integer({ minimum: 1024, default: 64 * 1024 ** 2 }),
            ttlMs: Type.Integer({ minimum: 0, default: 0, description: 'Entries expire this long after they were stored (hits do not extend it); 0: never.' }),
          },
          { ...Strict, default: {} },
        ),
      },
      { ...Strict, default: {} },
    ),
    security: Type.Object(
      {
        apiKeys: Type.Array(Type.String({ minLength: 16 }), {
          default: [],
          description:
            'Accepted API keys (Authorization: Bearer <key> or X-API-Key), each `[scope:]key` with scope infer (task routes; the default), write (collections, feedback, and infer) or admin (models at run time, and everything). Empty: no auth. Set them through GATEWAY_API_KEYS (comma-separated), not in a committed file.',
        }),
        protectDocs: Type.Boolean({ default: false, description: 'Require a key for /docs and /docs/json too.' }),
        protectMetrics: Type.Boolean({ default: false, description: 'Require a key for /metrics too.' }),
        corsOrigins: Type.Array(Type.String(), { default: [], description: 'Origins allowed to call the API from a browser; empty: no CORS headers.' }),
        rateLimit: Type.Object(
          {
            max: Type.Integer({ minimum: 0, default: 0, description: 'Requests per window per client address (behind Nginx set server.trustProxy); 0: off.' }),
            windowMs: Type.Integer({ minimum: 1, default: 60_000 }),
          },
          { ...Strict, default: {} },
        ),
      },
      { ...Strict, default: {} },
    ),
    collections: Type.Object(
      {
        store: Type.Union([Type.Literal('sqlite'), Type.Literal('postgres'), Type.Literal('memory')], {
          default: 'sqlite',
          description: 'sqlite: one file under collections.dir, no server (the default of npm start and the single-container image). postgres: PostgreSQL with pgvector at collections.postgres.url, shared by every replica. memory: nothing persists (tests, throwaway demos).',
        }),
        dir: Type.String({ default: 'var/collections', description: 'Where the sqlite store keeps collections.sqlite (users\' data: back it up, do not delete it).' }),
        postgres: Type.Object(
          {
            url: Type.Optional(Type.String({ description: 'postgres://user@host:5432/db; the password from PGPASSWORD or the URL of a secret, never a committed file.' })),
            poolSize: Type.Integer({ minimum: 1, default: 10 }),
          },
          { ...Strict, default: {} },
        ),
        embeddingModel: Type.Optional(
          Type.String({ description: 'The sentence-similarity model a new collection embeds with when it names none (the bundled config: retrieve-demo, trained for question-to-passage retrieval); unset, or not in the model list: the default sentence-similarity model.' }),
        ),
        defaultChunkTokens: Type.Integer({ minimum: 8, default: 256, description: 'Chunk size (embedding-model tokens, special tokens included) when a collection names none; never more than the model window.' }),
        defaultOverlapTokens: Type.Integer({ minimum: 0, default: 32, description: 'Tokens consecutive chunks share when a collection names none.' }),
        maxCollections: Type.Integer({ minimum: 1, default: 100 }),
        maxDocumentChars: Type.Integer({ minimum: 1, default: 1_000_000, description: 'Longest document; longer is a 413.' }),
        maxDocumentsPerRequest: Type.Integer({ minimum: 1, default: 1000, description: 'Documents in one ingest request (JSON, NDJSON or files); more is a 413.' }),
        maxChunksPerCollection: Type.Integer({ minimum: 1, default: 500_000 }),
        maxUploadBytes: Type.Integer({ minimum: 1024, default: 64 * 1024 * 1024, description: 'Largest NDJSON or multipart ingest body (JSON bodies keep server.bodyLimitBytes).' }),
      },
      { ...Strict, default: {} },
    ),
    feedback: Type.Object(
      {
        store: Type.Union([Type.Literal('auto'), Type.Literal('journal'), Type.Literal('postgres')], {
          default: 'auto',
          description: 'journal: an fsynced JSON-lines file under feedback.dir; postgres: the collections database (collections.postgres.url), shared by replicas; auto: postgres when collections.store is postgres, else journal.',
        }),
        dir: Type.String({ default: 'var/feedback', description: 'Where the journal lives (users\' data: back it up).' }),
        recentAnswers: Type.Integer({ minimum: 0, default: 10_000, description: 'QA answers remembered by request id, so feedback naming a request id records the model version that answered.' }),
      },
      { ...Strict, default: {} },
    ),
    models: Type.Array(ModelEntrySchema, { default: [] }),
  },
  Strict,
);

export type BackendConfig = Static<typeof BackendSchema>;
/** A model entry once defaults are applied (`required` depends on `load`, see normalizeEntry). */
export type ModelEntry = Omit<Static<typeof ModelEntrySchema>, 'required'> & { required: boolean };
export type GatewayConfig = Omit<Static<typeof ConfigSchema>, 'models'> & { models: ModelEntry[] };

/** Fills the defaults that depend on other fields: `required` is true for eager models, false for lazy ones. */
export function normalizeEntry(entry: Static<typeof ModelEntrySchema>): ModelEntry {
  return { ...entry, required: entry.required ?? entry.load !== 'lazy' };
}
