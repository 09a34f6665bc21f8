/**
 * The Open Inference Protocol (KServe v2) REST API, so Triton and KServe clients and tools can use the gateway's
 * models: health, server and model metadata, and inference with JSON tensors or the binary tensor data
 * extension. Errors on these routes have the protocol's body, `{ "error": "..." }` (src/plugins/app/errors.ts);
 * health answers have empty bodies, 200 for true and 4xx for false, as the protocol says.
 */
import { readFileSync } from 'node:fs';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type, type TSchema } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { GatewayError } from '../errors.ts';
import type { Lease, ServingModel } from '../inference/registry.ts';
import { modelMetadata } from '../inference/v2/model-io.ts';
import { encodeMessage, HEADER_LENGTH, ProtocolError, splitBody, type InferenceRequest } from '../inference/v2/tensors.ts';
import { inferV2 } from '../services/v2.ts';
import { ctxOf } from './context.ts';

const PKG = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { name: string; version: string };
/** Extensions of the protocol this server implements (reported in server metadata, as Triton reports its own). */
export const V2_EXTENSIONS = ['binary_tensor_data'];

declare module 'fastify' {
  interface FastifyRequest {
    /** /v2 infer: the binary tensor data after the JSON header (Inference-Header-Content-Length). */
    v2Binary?: Buffer;
  }
}

const V2Error = (description: string) => Type.Object({ error: Type.String({ description: 'What went wrong' }) }, { description }) as unknown as TSchema;
/** A health answer: the status is the answer, the body is empty. */
const Empty = (description: string) => ({ description }) as unknown as TSchema;

const Parameters = Type.Record(Type.String(), Type.Union([Type.String(), Type.Number(), Type.Boolean()]), { description: 'Key/value parameters' });
const Shape = Type.Array(Type.Integer({ minimum: 0 }), { description: 'Dimensions, row-major' });
const MetadataTensor = Type.Object({ name: Type.String(), datatype: Type.String({ description: 'INT64 inputs, FP32 outputs' }), shape: Type.Array(Type.Integer(), { description: '-1 for a dynamic axis' }) });

const InferenceRequestSchema = Type.Object(
  {
    id: Type.Optional(Type.String({ description: 'Returned in the response' })),
    parameters: Type.Optional(Parameters),
    inputs: Type.Array(
      Type.Object({
        name: Type.String(),
        shape: Shape,
        datatype: Type.String({ description: 'INT64 (or another integer type)' }),
        parameters: Type.Optional(Parameters),
        data: Type.Optional(Type.Array(Type.Unknown(), { description: 'Row-major, flat or nested; absent when parameters.binary_data_size says the tensor is in the binary part' })),
      }),
      { minItems: 1 },
    ),
    outputs: Type.Optional(Type.Array(Type.Object({ name: Type.String(), parameters: Type.Optional(Parameters) }), { description: 'Outputs to return (all when omitted); parameters.binary_data: true returns one as binary data' })),
  },
  {
    examples: [
      {
        id: '42',
        inputs: [
          { name: 'input_ids', shape: [1, 4], datatype: 'INT64', data: [2, 1081, 2409, 3] },
          { name: 'attention_mask', shape: [1, 4], datatype: 'INT64', data: [1, 1, 1, 1] },
          { name: 'token_type_ids', shape: [1, 4], datatype: 'INT64', data: [0, 0, 0, 0] },
        ],
      },
    ],
  },
);

const InferenceResponseSchema = Type.Object({
  model_name: Type.String(),
  model_version: Type.Optional(Type.String()),
  id: Type.Optional(Type.String()),
  parameters: Type.Optional(Parameters),
  outputs: Type.Array(Type.Object({ name: Type.String(), shape: Shape, datatype: Type.String(), parameters: Type.Optional(Parameters), data: Type.Optional(Type.Array(Type.Number())) })),
});

const inferErrors = {
  400: V2Error('Malformed request: names the field (shapes, datatypes, unknown inputs or outputs, binary sizes)'),
  401: V2Error('API key required and missing or wrong'),
  404: V2Error('Unknown model or version'),
  413: V2Error('Body or sequence over its limit'),
  422: V2Error('The model cannot take this input'),
  429: V2Error('Rate limit reached; see Retry-After'),
  503: V2Error('Model not ready, degraded (remote backend down), overloaded or draining; see Retry-After'),
  500: V2Error('A bug, or the model failed on this input; logged with the request id'),
};

const NameParams = Type.Object({ name: Type.String({ examples: ['sts-demo'] }) });
const VersionParams = Type.Object({ name: Type.String({ examples: ['sts-demo'] }), version: Type.String() });

/**
 * The serving model for a v2 path (a lazy one is loaded, as on every route); 404 for an unknown name or version,
 * 503 while it is not loaded. `lease` holds the version until the request is answered.
 */
async function servingModel(app: FastifyInstance, name: string, version?: string, lease?: Lease): Promise<ServingModel> {
  const model = await app.models.byName(name, lease);
  if (version !== undefined && version !== model.version) {
    throw new GatewayError('model_not_found', `model "${name}" has no version "${version}"; its version is "${model.version}"`);
  }
  return model;
}

const v2: FastifyPluginAsyncTypebox = async (app) => {
  // Bodies are the protocol's own: JSON, or JSON followed by binary tensors. Read raw, split here (this context only).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (req, body, done) => {
    try {
      const { header, binary } = splitBody(body as Buffer, req.headers[HEADER_LENGTH]);
      req.v2Binary = binary;
      done(null, header);
    } catch (err) {
      done(err instanceof ProtocolError ? new GatewayError('invalid_request', err.message) : (err as Error), undefined);
    }
  });

  app.get('/v2/health/live', {
    schema: { tags: ['kserve-v2'], description: 'Server live (Open Inference Protocol): 200 while the process can answer; empty body.', response: { 200: Empty('Live') } },
    handler: async (_req, reply) => reply.code(200).send(),
  });

  app.get('/v2/health/ready', {
    schema: {
      tags: ['kserve-v2'],
      description: 'Server ready (Open Inference Protocol): 200 when every required model is ready (a degraded remote model is not), 400 otherwise and while draining; empty body.',
      response: { 200: Empty('Ready'), 400: Empty('Not ready') },
    },
    handler: async (_req, reply) => reply.code(app.models.isReady() && !app.draining && !app.models.unhealthy() ? 200 : 400).send(),
  });

  const serverMetadata = {
    schema: {
      tags: ['kserve-v2'],
      description: 'Server metadata (Open Inference Protocol): name, version and the protocol extensions implemented.',
      response: { 200: Type.Object({ name: Type.String(), version: Type.String(), extensions: Type.Array(Type.String()) }), 400: V2Error('Error') },
    },
    handler: async () => ({ name: PKG.name, version: PKG.version, extensions: V2_EXTENSIONS }),
  };
  app.get('/v2', serverMetadata);
  app.get('/v2/', serverMetadata);

  const metadata = async (name: string, version?: string) => {
    const model = await servingModel(app, name, version);
    return modelMetadata(model.name, model.version, model.graph);
  };
  const metadataSchema = <P extends TSchema>(params: P) => ({
    tags: ['kserve-v2'],
    description:
      'Model metadata (Open Inference Protocol): platform, inputs as the graph declares them (INT64 token tensors) and outputs as infer returns them (FP32), shapes with -1 for dynamic axes. A remote-backed model reports its remote platform.',
    params,
    response: {
      200: Type.Object({ name: Type.String(), versions: Type.Optional(Type.Array(Type.String())), platform: Type.String(), inputs: Type.Array(MetadataTensor), outputs: Type.Array(MetadataTensor) }),
      404: V2Error('Unknown model or version'),
      503: V2Error('Model not loaded yet; see Retry-After'),
    },
  });
  app.get('/v2/models/:name', { schema: metadataSchema(NameParams), handler: async (req) => metadata(req.params.name) });
  app.get('/v2/models/:name/versions/:version', { schema: metadataSchema(VersionParams), handler: async (req) => metadata(req.params.name, req.params.version) });

  const ready = (name: string, version: string | undefined, reply: import('fastify').FastifyReply) => {
    const status = app.models.status(name);
    if (!status || (version !== undefined && status.version !== version)) return reply.code(404).send();
    return reply.code(status.state === 'ready' ? 200 : 400).send();
  };
  const readySchema = <P extends TSchema>(params: P) => ({
    tags: ['kserve-v2'],
    description: 'Model ready (Open Inference Protocol): 200 when the model serves, 400 while it loads, failed or is degraded (its remote backend does not answer), 404 for an unknown model or version; empty body.',
    params,
    response: { 200: Empty('Ready'), 400: Empty('Not ready'), 404: Empty('Unknown model or version') },
  });
  app.get('/v2/models/:name/ready', { schema: readySchema(NameParams), handler: async (req, reply) => ready(req.params.name, undefined, reply) });
  app.get('/v2/models/:name/versions/:version/ready', { schema: readySchema(VersionParams), handler: async (req, reply) => ready(req.params.name, req.params.version, reply) });

  const infer = async (name: string, version: string | undefined, req: import('fastify').FastifyRequest, reply: import('fastify').FastifyReply) => {
    const model = await servingModel(app, name, version, req.lease);
    const { response, parts } = await inferV2(model, req.body as InferenceRequest, req.v2Binary ?? Buffer.alloc(0), ctxOf(req));
    const { body, headerLength } = encodeMessage(response, parts);
    if (headerLength === undefined) return reply.type('application/json').send(body);
    return reply.header(HEADER_LENGTH, String(headerLength)).type('application/octet-stream').send(body);
  };
  const inferSchema = <P extends TSchema>(params: P) => ({
    tags: ['kserve-v2'],
    description:
      'Inference (Open Inference Protocol): token tensors in (input_ids, attention_mask and token_type_ids where the model has it; INT64, [batch, sequence], right-padded), the raw output tensors out (FP32, e.g. start_logits/end_logits, logits or an unpooled last_hidden_state; positions the mask leaves out are 0). ' +
      'Rows go through the model\'s batcher and workers like every task route. The binary tensor data extension works both ways: inputs with parameters.binary_data_size after the JSON (its length in Inference-Header-Content-Length), outputs with parameters.binary_data or the request parameter binary_data_output.',
    params,
    body: InferenceRequestSchema,
    response: { 200: InferenceResponseSchema, ...inferErrors },
  });
  app.post('/v2/models/:name/infer', { schema: inferSchema(NameParams), handler: async (req, reply) => infer(req.params.name, undefined, req, reply) });
  app.post('/v2/models/:name/versions/:version/infer', { schema: inferSchema(VersionParams), handler: async (req, reply) => infer(req.params.name, req.params.version, req, reply) });
};

export default v2;
