/**
 * The naive server: what a Node user would write first. Fastify, one transformers.js pipeline per task,
 * called per request on the main thread. `node --import tsx bench/naive-server.ts <port> <models-dir>`.
 */
import Fastify from 'fastify';
import { env, pipeline } from '@huggingface/transformers';

const [port, dir] = [Number(process.argv[2]), process.argv[3]];
env.allowRemoteModels = false;
env.allowLocalModels = true;
env.localModelPath = `${dir}/`;

const embed = await pipeline('feature-extraction', 'sts-demo', { dtype: 'fp32' });
const classify = await pipeline('text-classification', 'classify-demo', { dtype: 'fp32' });
const qa = await pipeline('question-answering', 'qa-demo', { dtype: 'fp32' });

const app = Fastify({ bodyLimit: 4 * 1024 * 1024 });
app.post('/embed', async (req) => {
  const { input } = req.body as { input: string | string[] };
  const out = await embed(input, { pooling: 'mean', normalize: true });
  return { embeddings: out.tolist() };
});
app.post('/classify', async (req) => {
  const { inputs } = req.body as { inputs: string | string[] };
  return { predictions: await classify(inputs as string, { top_k: 3 }) };
});
app.post('/qa', async (req) => {
  const { question, context } = req.body as { question: string; context: string };
  return await qa(question, context);
});
app.get('/ready', async () => ({ ok: true }));
await app.listen({ port, host: '127.0.0.1' });
