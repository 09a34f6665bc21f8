import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@fastify/type-provider-typebox';
import { GatewayError } from '../../errors.ts';
import { ErrorResponse } from '../schemas.ts';
import { BackendSchema } from '../../config/schema.ts';

const STATES = ['pending', 'available', 'downloading', 'verifying', 'unpacking', 'loading', 'warming', 'ready', 'degraded', 'failed', 'draining'];

const EntryBody = Type.Object(
  {
    source: Type.String({ minLength: 1, description: 's3://bucket/key.zip, a local .zip path, or a local folder' }),
    sha256: Type.Optional(Type.String({ pattern: '^[a-f0-9]{64}$' })),
    required: Type.Optional(Type.Boolean({ description: 'Never unloaded to make room; counts for readiness once it has been ready' })),
    default: Type.Optional(Type.Boolean()),
    load: Type.Optional(Type.Union([Type.Literal('eager'), Type.Literal('lazy')])),
    // The knobs with defaults are checked (and defaulted) with the whole entry against the config schema.
    backend: Type.Optional(
      Type.Object(
        { kind: Type.Literal('kserve-v2'), url: Type.String({ pattern: '^https?://' }) },
        { description: `A remote Open Inference Protocol server runs the graph; its other keys (${Object.keys(BackendSchema.properties).filter((k) => k !== 'kind' && k !== 'url').join(', ')}) as in the config file (docs/remote-backends.md)` },
      ),
    ),
  },
  { additionalProperties: false, examples: [{ source: 'models/classify-demo.zip', default: true }] },
);

export const ModelInfo = Type.Object(
  {
    name: Type.String(),
    source: Type.String(),
    required: Type.Boolean(),
    default: Type.Boolean({ description: 'Used for its task when a request names no model' }),
    load: Type.Union([Type.Literal('eager'), Type.Literal('lazy')]),
    state: Type.Union(STATES.map((s) => Type.Literal(s)), {
      description: 'available: a lazy model not loaded yet; draining: removed, unloading once its requests finish; degraded: loaded, but its remote inference server is not answering (requests get 503 with Retry-After until it is back)',
    }),
    error: Type.Optional(Type.String()),
    failed_step: Type.Optional(Type.String()),
    sha256: Type.Optional(Type.String()),
    version: Type.Optional(Type.String()),
    task: Type.Optional(Type.String()),
    description: Type.Optional(Type.String()),
    labels: Type.Optional(Type.Array(Type.String())),
    max_length: Type.Optional(Type.Integer()),
    score: Type.Optional(Type.Object({ min: Type.Number(), max: Type.Number(), round: Type.Optional(Type.Number()) })),
    threshold: Type.Optional(Type.Number()),
    backend: Type.Optional(
      Type.Object(
        { kind: Type.Literal('kserve-v2'), url: Type.String(), model: Type.String(), version: Type.Optional(Type.String()) },
        { description: 'The remote Open Inference Protocol server that runs this model\'s graph' },
      ),
    ),
    timings: Type.Record(Type.String(), Type.Number(), { description: 'Milliseconds per boot step' }),
    warmup: Type.Optional(
      Type.Object({
        shapes: Type.Array(Type.Object({ batch: Type.Integer(), seq: Type.Integer(), ms: Type.Number() })),
        batch_invariance_max_diff: Type.Optional(Type.Number()),
        tuned: Type.Optional(Type.Object({ target_ms: Type.Number(), fixed_ms: Type.Number(), ms_per_1k_tokens: Type.Number(), batch_tokens: Type.Integer() })),
      }),
    ),
    memory_mb: Type.Optional(Type.Number({ description: 'Growth of the process RSS while the serving version loaded and warmed up (all workers together)' })),
    in_flight: Type.Optional(Type.Integer({ description: 'Requests holding the serving version now' })),
    last_used: Type.Optional(Type.String()),
    update: Type.Optional(
      Type.Object(
        {
          state: Type.Union(STATES.map((s) => Type.Literal(s))),
          source: Type.String(),
          started_at: Type.String(),
          finished_at: Type.Optional(Type.String()),
          version: Type.Optional(Type.String()),
          error: Type.Optional(Type.String()),
          failed_step: Type.Optional(Type.String()),
          timings: Type.Record(Type.String(), Type.Number()),
        },
        { description: 'A new version being loaded beside the serving one, or the last attempt that failed (the serving version stayed)' },
      ),
    ),
  },
  { $id: 'ModelInfo' },
);

const models: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/v1/models', {
    schema: {
      tags: ['models'],
      description: 'Every configured model with its task, state (failed ones with their error), labels, limits and warm-up timings.',
      response: { 200: Type.Object({ object: Type.Literal('list'), data: Type.Array(Type.Ref('ModelInfo')) }) },
    },
    handler: async () => ({ object: 'list' as const, data: app.models.list() }),
  });

  app.get('/v1/models/:name', {
    schema: {
      tags: ['models'],
      description: 'One model.',
      params: Type.Object({ name: Type.String({ examples: ['qa-demo'] }) }),
      response: { 200: Type.Ref('ModelInfo'), 404: Type.Ref('ErrorResponse') },
    },
    handler: async (req) => {
      const s = app.models.status(req.params.name);
      if (!s) {
        const names = app.models.list().map((m) => m.name);
        throw new GatewayError('model_not_found', `unknown model "${req.params.name}"; models: ${names.join(', ')}`, { details: { models: names } });
      }
      return s;
    },
  });
};

/**
 * Models at run time (admin scope where keys are configured): add or replace with PUT (the whole boot pipeline
 * runs beside the serving version, which keeps answering until the new one is ready), remove with DELETE.
 */
const admin: FastifyPluginAsyncTypebox = async (app) => {
  app.put('/v1/models/:name', {
    config: { scope: 'admin' },
    schema: {
      tags: ['models'],
      description:
        'Add a model, or replace one with a new version, from a model entry as in the config file. 202 at once with the status; poll GET /v1/models/{name}: a replacement shows its progress in `update` and takes over only once ready (a failed one leaves the serving version, with the failed step and cause in `update`).',
      params: Type.Object({ name: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$', examples: ['classify-demo'] }) }),
      body: EntryBody,
      response: { 202: Type.Ref('ModelInfo'), 400: Type.Ref('ErrorResponse'), 401: Type.Ref('ErrorResponse'), 403: Type.Ref('ErrorResponse'), 409: Type.Ref('ErrorResponse') },
    },
    handler: async (req, reply) => reply.status(202).send(app.models.put(req.params.name, req.body)),
  });

  app.delete('/v1/models/:name', {
    config: { scope: 'admin' },
    schema: {
      tags: ['models'],
      description: 'Remove a model: it takes no new requests at once (404 naming the others), its in-flight requests finish, then it is unloaded and its unpacked files are freed.',
      params: Type.Object({ name: Type.String({ examples: ['classify-demo'] }) }),
      response: { 202: Type.Ref('ModelInfo'), 401: Type.Ref('ErrorResponse'), 403: Type.Ref('ErrorResponse'), 404: Type.Ref('ErrorResponse') },
    },
    handler: async (req, reply) => reply.status(202).send(app.models.remove(req.params.name)),
  });
};

export default models;
export { admin as modelAdminRoutes };
export { ErrorResponse };
