/**
 * The naive server: what a Node user would write first. Fastify, one transformers.js pipeline per model,
 * called per request on the main thread.
 *   node --import tsx bench/naive-server.ts <port> <models-dir> ['{"embed":["sts-demo"],"classify":["classify-demo"],"qa":["qa-demo"]}']
 * Each route takes an optional `model` in its body; the first model listed for the route is its default.
 */
import Fastify from 'fastify';
import { env, pipeline, type FeatureExtractionPipeline, type Tensor, type QuestionAnsweringPipeline, type TextClassificationPipeline } from '@huggingface/transformers';

const [port, dir] = [Number(process.argv[2]), process.argv[3]];
const lists = JSON.parse(process.argv[4] ?? '{"embed":["sts-demo"],"classify":["classify-demo"],"qa":["qa-demo"]}') as { embed?: string[]; classify?: string[]; qa?: string[] };
env.allowRemoteModels = false;
env.allowLocalModels = true;
env.localModelPath = `${dir}/`;

type Embedder = (input: string | string[]) => Promise<Tensor>;
const embed = new Map<string, Embedder>();
const classify = new Map<string, TextClassificationPipeline>();
const qa = new Map<string, QuestionAnsweringPipeline>();
for (const m of lists.embed ?? []) {
  const p: FeatureExtractionPipeline = await pipeline('feature-extraction', m, { dtype: 'fp32' });
  // The feature-extraction pipeline pools token outputs only; a graph that pools itself (sentence_embedding, as
  // sts-demo 3 and sentence-transformers exports with their pooling) is run and normalised by hand, as its user would.
  const own = (p.model as unknown as { sessions: { model: { outputNames: string[] } } }).sessions.model.outputNames.includes('sentence_embedding');
  embed.set(m, own
    ? async (input) => ((await p.model(p.tokenizer(input, { padding: true, truncation: true }))) as Record<string, Tensor>).sentence_embedding.normalize(2, -1)
    : (input) => p(input, { pooling: 'mean', normalize: true }));
}
for (const m of lists.classify ?? []) classify.set(m, await pipeline('text-classification', m, { dtype: 'fp32' }));
for (const m of lists.qa ?? []) qa.set(m, await pipeline('question-answering', m, { dtype: 'fp32' }));
const pick = <T>(map: Map<string, T>, name: string | undefined): T => {
  const p = name === undefined ? map.values().next().value : map.get(name);
  if (!p) throw Object.assign(new Error(`no model ${name}`), { statusCode: 404 });
  return p;
};

const app = Fastify({ bodyLimit: 4 * 1024 * 1024 });
app.post('/embed', async (req) => {
  const { input, model } = req.body as { input: string | string[]; model?: string };
  const out = await pick(embed, model)(input);
  return { embeddings: out.tolist() };
});
app.post('/classify', async (req) => {
  const { inputs, model } = req.body as { inputs: string | string[]; model?: string };
  return { predictions: await pick(classify, model)(inputs as string, { top_k: 3 }) };
});
app.post('/qa', async (req) => {
  const { question, context, model } = req.body as { question: string; context: string; model?: string };
  return await pick(qa, model)(question, context);
});
app.get('/ready', async () => ({ ok: true }));
await app.listen({ port, host: '127.0.0.1' });
