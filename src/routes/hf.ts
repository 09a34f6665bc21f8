import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { GatewayError } from '../errors.ts';
import type { ServingModel } from '../inference/registry.ts';
import { classify } from '../services/classify.ts';
import { embed } from '../services/embeddings.ts';
import { scoreEssays } from '../services/essays.ts';
import { answerQuestions } from '../services/qa.ts';
import { sourceAgainst } from '../services/similarity.ts';
import { checkBatch, checkText } from './limits.ts';
import { inferenceErrors } from './schemas.ts';
import { ctxOf } from './context.ts';

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
const isString = (x: unknown): x is string => typeof x === 'string';
const isStringList = (x: unknown): x is string[] => Array.isArray(x) && x.length > 0 && x.every(isString);

function intParam(parameters: Record<string, unknown> | undefined, key: string, min: number, max: number): number | undefined {
  const v = parameters?.[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new GatewayError('invalid_request', `parameters.${key} must be an integer from ${min} to ${max}`);
  return v;
}

/**
 * Hugging Face Inference API compatibility: `POST /models/{name}` answers in the shape of the model's task
 * (question-answering, sentence-similarity, feature-extraction, text-classification), so Hugging Face's
 * own clients work when pointed at the gateway. Essay models answer like a one-label regression classifier.
 */
const hf: FastifyPluginAsyncTypebox = async (app) => {
  const { limits } = app.config;

  async function answer(model: ServingModel, req: FastifyRequest, body: { inputs: unknown; parameters?: Record<string, unknown> }, pipeline?: string) {
    const ctx = ctxOf(req);
    const { inputs, parameters } = body;
    switch (model.manifest.task) {
      case 'question-answering': {
        const items = Array.isArray(inputs) ? inputs : [inputs];
        checkBatch('inputs', items.length, limits.maxBatchItems);
        for (const [i, it] of items.entries()) {
          const o = it as { question?: unknown; context?: unknown } | null;
          if (!o || !isString(o.question) || !isString(o.context)) throw new GatewayError('invalid_request', `inputs${Array.isArray(inputs) ? `[${i}]` : ''} must be { "question": string, "context": string }`);
          checkText('inputs.question', o.question, limits.maxTextChars);
          checkText('inputs.context', o.context, limits.maxContextChars);
        }
        const topK = intParam(parameters, 'top_k', 1, 20) ?? 1;
        const res = await answerQuestions(model, items as { question: string; context: string }[], ctx, {
          topK,
          maxAnswerLength: intParam(parameters, 'max_answer_len', 1, 512) ?? 15,
          handleImpossibleAnswer: parameters?.handle_impossible_answer === true,
          stride: intParam(parameters, 'doc_stride', 0, 256) ?? limits.qaStride,
        });
        const shaped = res.map((r) => (topK === 1 ? r.answers[0] : r.answers));
        return Array.isArray(inputs) ? shaped : shaped[0];
      }
      case 'sentence-similarity': {
        const o = inputs as { source_sentence?: unknown; sentences?: unknown } | null;
        if (pipeline !== 'feature-extraction' && o && typeof o === 'object' && !Array.isArray(o)) {
          if (!isString(o.source_sentence) || !isStringList(o.sentences)) throw new GatewayError('invalid_request', 'inputs must be { "source_sentence": string, "sentences": [string, …] }');
          checkText('inputs.source_sentence', o.source_sentence, limits.maxTextChars);
          checkBatch('inputs.sentences', o.sentences.length, limits.maxBatchItems);
          o.sentences.forEach((s, i) => checkText(`inputs.sentences[${i}]`, s, limits.maxTextChars));
          return sourceAgainst(model, o.source_sentence, o.sentences, ctx);
        }
        // feature-extraction: a string gives one pooled vector, a list gives one per string.
        if (!isString(inputs) && !isStringList(inputs)) throw new GatewayError('invalid_request', 'inputs must be a string, a list of strings, or { "source_sentence", "sentences" }');
        const texts = isString(inputs) ? [inputs] : inputs;
        checkBatch('inputs', texts.length, limits.maxBatchItems);
        texts.forEach((t, i) => checkText(isString(inputs) ? 'inputs' : `inputs[${i}]`, t, limits.maxTextChars));
        const { vectors } = await embed(model, texts, ctx, { field: 'inputs', truncate: parameters?.truncate === true });
        const out = vectors.map((v) => Array.from(v));
        return isString(inputs) ? out[0] : out;
      }
      case 'text-classification': {
        if (!isString(inputs) && !isStringList(inputs)) throw new GatewayError('invalid_request', 'inputs must be a string or a list of strings');
        const texts = isString(inputs) ? [inputs] : inputs;
        checkBatch('inputs', texts.length, limits.maxBatchItems);
        texts.forEach((t, i) => checkText(isString(inputs) ? 'inputs' : `inputs[${i}]`, t, limits.maxTextChars));
        const preds = await classify(model, texts, ctx, { topK: intParam(parameters, 'top_k', 1, 1000) });
        return preds.map((p) => p.labels);
      }
      case 'essay-scoring': {
        if (!isString(inputs) && !isStringList(inputs)) throw new GatewayError('invalid_request', 'inputs must be an essay or a list of essays');
        const texts = isString(inputs) ? [inputs] : inputs;
        checkBatch('inputs', texts.length, limits.maxBatchItems);
        texts.forEach((t, i) => checkText(isString(inputs) ? 'inputs' : `inputs[${i}]`, t, limits.maxEssayChars));
        const scores = await scoreEssays(model, texts, ctx, { stride: limits.essayStride });
        return scores.map((s) => [{ label: 'score', score: s.score }]);
      }
    }
  }

  app.post('/models/:name', {
    schema: {
      tags: ['huggingface'],
      description:
        'Hugging Face Inference API payload `{ inputs, parameters? }`; the answer has the shape of the model task, so `@huggingface/inference` pointed at the gateway works unchanged. ' +
        'question-answering: `{ inputs: { question, context }, parameters?: { top_k, max_answer_len, handle_impossible_answer, doc_stride } }` → `{ answer, score, start, end }` (a list when top_k > 1). ' +
        'sentence-similarity: `{ inputs: { source_sentence, sentences: [...] } }` → `[score, ...]`; feature-extraction on the same models: `{ inputs: "text" | ["text", ...] }` → a vector or a list of vectors. ' +
        'text-classification: `{ inputs: "text" | [...], parameters?: { top_k } }` → `[[{ label, score }, ...]]`. essay-scoring: `{ inputs: "essay" }` → `[[{ label: "score", score }]]`.',
      params: Params,
      body: Body,
      response: { 200: Type.Unknown(), ...inferenceErrors },
    },
    handler: async (req) => answer(app.models.byName(req.params.name), req, req.body),
  });

  app.post('/models/:name/pipeline/:pipeline', {
    schema: {
      tags: ['huggingface'],
      description: 'The Hugging Face router form for sentence models: pipeline is feature-extraction or sentence-similarity.',
      params: Type.Object({ name: Type.String({ examples: ['sts-demo'] }), pipeline: Type.Union([Type.Literal('feature-extraction'), Type.Literal('sentence-similarity')], { examples: ['feature-extraction'] }) }),
      body: PipelineBody,
      response: { 200: Type.Unknown(), ...inferenceErrors },
    },
    handler: async (req) => answer(app.models.resolve('sentence-similarity', req.params.name), req, req.body, req.params.pipeline),
  });
};

export default hf;
