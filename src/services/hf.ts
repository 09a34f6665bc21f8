/**
 * The Hugging Face Inference API, one pipeline per task: each reads the task's `inputs` / `parameters`, runs the
 * task's service and shapes the answer as the Hugging Face pipeline of that task answers, so Hugging Face's own
 * clients work when pointed at the gateway. Essay models answer like a one-label regression classifier,
 * cross-encoders like a one-label text classifier (as the Hub lists them).
 */
import { GatewayError } from '../errors.ts';
import type { GatewayConfig } from '../config/schema.ts';
import type { ServingModel } from '../inference/registry.ts';
import type { Task } from '../tasks/catalog.ts';
import { checkBatch, checkText } from './limits.ts';
import { classify, type ClassifyInput } from './classify.ts';
import type { ServiceContext } from './context.ts';
import { embed } from './embeddings.ts';
import { scoreEssays } from './essays.ts';
import { answerQuestions } from './qa.ts';
import { scoreTextPairs } from './ranking.ts';
import { sourceAgainst } from './similarity.ts';

export interface HfBody {
  inputs: unknown;
  parameters?: Record<string, unknown>;
}

type Limits = GatewayConfig['limits'];
type Pipeline = (model: ServingModel, body: HfBody, ctx: ServiceContext, limits: Limits, pipeline?: string) => Promise<unknown>;

const isString = (x: unknown): x is string => typeof x === 'string';
const isStringList = (x: unknown): x is string[] => Array.isArray(x) && x.length > 0 && x.every(isString);
const isPairObject = (x: unknown): x is { text: string; text_pair: string } =>
  typeof x === 'object' && x !== null && !Array.isArray(x) && isString((x as { text?: unknown }).text) && isString((x as { text_pair?: unknown }).text_pair);

function intParam(parameters: Record<string, unknown> | undefined, key: string, min: number, max: number): number | undefined {
  const v = parameters?.[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new GatewayError('invalid_request', `parameters.${key} must be an integer from ${min} to ${max}`);
  return v;
}

/** `inputs` of a text-classification model: a text, a list of texts, `{ text, text_pair }` or a list of those. */
function classifyInputs(inputs: unknown, limits: Limits, pairsOnly: boolean): { items: ClassifyInput[]; list: boolean } {
  const list = Array.isArray(inputs);
  const raw = list ? (inputs as unknown[]) : [inputs];
  checkBatch('inputs', raw.length, limits.maxBatchItems);
  const items = raw.map((x, i): ClassifyInput => {
    const where = list ? `inputs[${i}]` : 'inputs';
    if (isPairObject(x)) {
      checkText(`${where}.text`, x.text, limits.maxTextChars);
      checkText(`${where}.text_pair`, x.text_pair, limits.maxTextChars);
      return { text: x.text, textPair: x.text_pair };
    }
    if (!pairsOnly && isString(x)) {
      checkText(where, x, limits.maxTextChars);
      return { text: x };
    }
    throw new GatewayError('invalid_request', pairsOnly ? `${where} must be { "text": string, "text_pair": string }` : `${where} must be a string or { "text": string, "text_pair": string }`);
  });
  return { items, list };
}

const PIPELINES: Record<Task, Pipeline> = {
  'question-answering': async (model, { inputs, parameters }, ctx, limits) => {
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
  },

  'sentence-similarity': async (model, { inputs, parameters }, ctx, limits, pipeline) => {
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
    const names = texts.map((_, i) => (isString(inputs) ? 'inputs' : `inputs[${i}]`));
    texts.forEach((t, i) => checkText(names[i], t, limits.maxTextChars));
    const { vectors } = await embed(model, texts, ctx, { names, truncate: parameters?.truncate === true });
    // Float32Arrays: the route prints them (src/routes/float32-json.ts).
    return isString(inputs) ? vectors[0] : vectors;
  },

  'text-classification': async (model, { inputs, parameters }, ctx, limits) => {
    const { items, list } = classifyInputs(inputs, limits, false);
    const preds = await classify(model, items, ctx, { topK: intParam(parameters, 'top_k', 1, 1000), truncate: parameters?.truncate === true });
    // The pipeline answers a list of texts with one list of labels each, and one text with its list.
    const shaped = preds.map((p) => p.labels);
    return list || isString(inputs) ? shaped : shaped[0];
  },

  'text-ranking': async (model, { inputs, parameters }, ctx, limits) => {
    const { items, list } = classifyInputs(inputs, limits, true);
    const scores = await scoreTextPairs(
      model,
      items.map((it, i) => ({ text: it.text, textPair: it.textPair!, names: [`inputs${list ? `[${i}]` : ''}.text`, `inputs${list ? `[${i}]` : ''}.text_pair`] })),
      ctx,
      { truncate: parameters?.truncate === true },
    );
    const label = model.manifest.positiveLabel ?? 'LABEL_0';
    const shaped = scores.map((score) => [{ label, score }]);
    return list ? shaped : shaped[0];
  },

  'essay-scoring': async (model, { inputs }, ctx, limits) => {
    if (!isString(inputs) && !isStringList(inputs)) throw new GatewayError('invalid_request', 'inputs must be an essay or a list of essays');
    const texts = isString(inputs) ? [inputs] : inputs;
    checkBatch('inputs', texts.length, limits.maxBatchItems);
    texts.forEach((t, i) => checkText(isString(inputs) ? 'inputs' : `inputs[${i}]`, t, limits.maxEssayChars));
    const scores = await scoreEssays(model, texts, ctx, { stride: limits.essayStride });
    return scores.map((s) => [{ label: 'score', score: s.score }]);
  },
};

/** Runs a Hugging Face Inference API request on a model, in the shape of the model's task. */
export function huggingFace(model: ServingModel, body: HfBody, ctx: ServiceContext, limits: Limits, pipeline?: string): Promise<unknown> {
  return PIPELINES[model.manifest.task](model, body, ctx, limits, pipeline);
}
