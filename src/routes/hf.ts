import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@fastify/type-provider-typebox';
import { huggingFace } from '../services/hf.ts';
import { inferenceErrors } from './schemas.ts';
import { ctxOf } from './context.ts';
import { replyVectors } from './float32-json.ts';

const Body = Type.Object(
  {
    inputs: Type.Unknown({ description: 'Task-shaped input, as the Hugging Face Inference API takes it' }),
    parameters: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    options: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  },
  {
    // One example, for the path's example model (qa-demo); the other task shapes are in the route description.
    examples: [{ inputs: { question: 'Who maintains the package?', context: 'The curl package is maintained by the Debian curl Maintainers.' } }],
  },
);

const PipelineBody = Type.Object(
  { inputs: Type.Unknown({ description: 'A text or a list (feature-extraction), or { source_sentence, sentences } (sentence-similarity)' }), parameters: Type.Optional(Type.Record(Type.String(), Type.Unknown())), options: Type.Optional(Type.Record(Type.String(), Type.Unknown())) },
  { examples: [{ inputs: ['A man is playing a guitar.', 'A cat sleeps on the sofa.'] }] },
);

const Params = Type.Object({ name: Type.String({ examples: ['qa-demo'] }) });

/**
 * Hugging Face Inference API compatibility: `POST /models/{name}` answers in the shape of the model's task
 * (src/services/hf.ts has one pipeline per task), so Hugging Face's own clients work when pointed at the gateway.
 */
const hf: FastifyPluginAsyncTypebox = async (app) => {
  const { limits } = app.config;

  app.post('/models/:name', {
    schema: {
      tags: ['huggingface'],
      description:
        'Hugging Face Inference API payload `{ inputs, parameters? }`; the answer has the shape of the model task, so `@huggingface/inference` pointed at the gateway works unchanged. ' +
        'question-answering: `{ inputs: { question, context }, parameters?: { top_k, max_answer_len, handle_impossible_answer, doc_stride } }` → `{ answer, score, start, end }` (a list when top_k > 1). ' +
        'sentence-similarity: `{ inputs: { source_sentence, sentences: [...] } }` → `[score, ...]`; feature-extraction on the same models: `{ inputs: "text" | ["text", ...] }` → a vector or a list of vectors. ' +
        'text-classification: `{ inputs: "text" | [...] | { text, text_pair }, parameters?: { top_k, truncate } }` → `[[{ label, score }, ...]]`. text-ranking (cross-encoders): `{ inputs: { text, text_pair } | [...] }` → `[{ label, score }]` per pair. essay-scoring: `{ inputs: "essay" }` → `[[{ label: "score", score }]]`.',
      params: Params,
      body: Body,
      response: { 200: Type.Unknown(), ...inferenceErrors },
    },
    handler: async (req, reply) => replyVectors(reply, await huggingFace(await app.models.byName(req.params.name, req.lease), req.body, ctxOf(req), limits)),
  });

  app.post('/models/:name/pipeline/:pipeline', {
    schema: {
      tags: ['huggingface'],
      description: 'The Hugging Face router form for sentence models: pipeline is feature-extraction or sentence-similarity.',
      params: Type.Object({ name: Type.String({ examples: ['sts-demo'] }), pipeline: Type.Union([Type.Literal('feature-extraction'), Type.Literal('sentence-similarity')], { examples: ['feature-extraction'] }) }),
      body: PipelineBody,
      response: { 200: Type.Unknown(), ...inferenceErrors },
    },
    handler: async (req, reply) => replyVectors(reply, await huggingFace(await app.models.resolve('sentence-similarity', req.params.name, req.lease), req.body, ctxOf(req), limits, req.params.pipeline)),
  });
};

export default hf;
