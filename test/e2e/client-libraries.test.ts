import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { InferenceClient } from '@huggingface/inference';
import { CohereClient, CohereClientV2 } from 'cohere-ai';
import * as ort from 'onnxruntime-node';
import { AutoTokenizer, env } from '@huggingface/transformers';
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEMO_MODELS, demoZip } from '../helpers/app.ts';
import { startGateway, type GatewayProcess } from '../helpers/gateway-process.ts';
import { crossEncoderFolder } from '../helpers/real-models.ts';

/** The clients users already have, unchanged, pointed at a running gateway process. */
describe('OpenAI and Hugging Face clients against the gateway', () => {
  let gw: GatewayProcess;
  const post = (path: string, body: unknown) => fetch(`${gw.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }).then((r) => r.json());

  beforeAll(async () => {
    gw = await startGateway({ GATEWAY_MODELS: JSON.stringify(DEMO_MODELS.map((name) => ({ name, source: demoZip(name) }))) });
    await gw.waitReady();
  });
  afterAll(async () => gw?.stop());

  it('openai: embeddings.create returns the gateway vectors (the client asks base64 and decodes it)', async () => {
    const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'not-needed', maxRetries: 0 });
    const input = ['A man is playing a guitar.', 'A woman slices an onion.'];
    const res = await client.embeddings.create({ model: 'sts-demo', input });
    const floats = await post('/v1/embeddings', { model: 'sts-demo', input, encoding_format: 'float' });
    expect(res.object).toBe('list');
    expect(res.model).toBe('sts-demo');
    expect(res.data.map((d) => d.index)).toEqual([0, 1]);
    expect(res.usage.prompt_tokens).toBeGreaterThan(4);
    res.data.forEach((d, i) => {
      expect(d.embedding).toHaveLength(floats.data[i].embedding.length);
      d.embedding.forEach((x, j) => expect(Math.abs(x - floats.data[i].embedding[j])).toBeLessThan(1e-6));
    });
    // A model for another task is refused with the gateway's 422, which the client raises as an APIError.
    await expect(client.embeddings.create({ model: 'qa-demo', input: 'x' })).rejects.toMatchObject({ status: 422 });
  });

  it('@huggingface/inference: questionAnswering, sentenceSimilarity, featureExtraction, textClassification', async () => {
    const hf = new InferenceClient();
    const context = 'The curl package is maintained by the Debian curl Maintainers and belongs to the web section.';
    const qa = await hf.questionAnswering({ endpointUrl: `${gw.url}/models/qa-demo`, inputs: { question: 'Who maintains the curl package?', context } });
    const direct = (await post('/v1/qa', { question: 'Who maintains the curl package?', context, max_answer_length: 15 })).answers[0];
    expect(qa.answer).toBe(context.slice(qa.start, qa.end));
    expect({ answer: qa.answer, start: qa.start, end: qa.end }).toEqual({ answer: direct.answer, start: direct.start, end: direct.end });

    const sims = await hf.sentenceSimilarity({ endpointUrl: `${gw.url}/models/sts-demo`, inputs: { source_sentence: 'A man is playing a guitar.', sentences: ['A man is playing a guitar.', 'A dog runs on the beach.'] } });
    expect(sims).toHaveLength(2);
    expect(sims[0]).toBeCloseTo(1, 4);
    expect(sims[1]).toBeLessThan(sims[0]);

    const vec = await hf.featureExtraction({ endpointUrl: `${gw.url}/models/sts-demo`, inputs: 'A man is playing a guitar.' });
    const ours = (await post('/v1/embeddings', { input: 'A man is playing a guitar.', model: 'sts-demo' })).data[0].embedding;
    expect(vec).toEqual(ours);

    const labels = await hf.textClassification({ endpointUrl: `${gw.url}/models/classify-demo`, inputs: 'a puzzle game with colourful blocks' });
    const direct2 = (await post('/v1/classify', { inputs: 'a puzzle game with colourful blocks', model: 'classify-demo' })).predictions[0];
    expect(labels[0]).toEqual({ label: direct2.label, score: direct2.score });
    expect(labels.reduce((s, l) => s + l.score, 0)).toBeCloseTo(1, 5);
  });
});

/**
 * Rerank clients: cohere-ai (Cohere's own SDK, v1 and v2 rerank) and TEI's routes: /embed through Hugging Face's JS
 * client (featureExtraction with an endpoint URL, as TEI endpoints are called); there is no npm client of TEI's
 * /rerank or /predict, so those are called with TEI's documented bodies. The model is ml-commons' real XLM-R cross-encoder export; every
 * score is checked against a direct onnxruntime-node run of its graph on the same pair.
 */
describe('cohere-ai and TEI clients against the gateway', () => {
  let gw: GatewayProcess;
  let session: ort.InferenceSession;
  let reference: (query: string, doc: string) => Promise<number>;
  const query = 'web server';
  const documents = ['vim edits text', 'nginx serves web pages', 'a web server', 'curl gets URLs'];

  beforeAll(async () => {
    const dir = await crossEncoderFolder();
    gw = await startGateway({
      GATEWAY_MODELS: JSON.stringify([
        { name: 'rerank-xlmr', source: dir },
        { name: 'sts-demo', source: demoZip('sts-demo') },
        { name: 'classify-demo', source: demoZip('classify-demo') },
      ]),
    });
    session = await ort.InferenceSession.create(join(dir, 'model.onnx'));
    const ref = mkdtempSync(join(tmpdir(), 'xlmr-tok-'));
    mkdirSync(join(ref, 'xlmr'));
    copyFileSync(join(dir, 'tokenizer.json'), join(ref, 'xlmr', 'tokenizer.json'));
    writeFileSync(join(ref, 'xlmr', 'tokenizer_config.json'), JSON.stringify({ tokenizer_class: 'XLMRobertaTokenizer' }));
    env.allowRemoteModels = false;
    env.localModelPath = `${ref}/`;
    const tok = await AutoTokenizer.from_pretrained('xlmr');
    reference = async (q, d) => {
      const ids = (tok(q, { text_pair: d }).input_ids.tolist() as bigint[][])[0];
      const dims = [1, ids.length];
      const out = await session.run({ input_ids: new ort.Tensor('int64', BigInt64Array.from(ids), dims), attention_mask: new ort.Tensor('int64', new BigInt64Array(ids.length).fill(1n), dims) });
      return 1 / (1 + Math.exp(-(out.logits.data as Float32Array)[0]));
    };
    await gw.waitReady();
  });
  afterAll(async () => {
    await gw?.stop();
    await session?.release();
  });

  it('cohere-ai: rerank (v1) and v2.rerank give the cross-encoder’s scores, best first', async () => {
    const cohere = new CohereClient({ token: 'not-needed', environment: gw.url });
    const expected = await Promise.all(documents.map((d) => reference(query, d)));
    const order = expected.map((s, i) => ({ s, i })).sort((a, b) => b.s - a.s).map((x) => x.i);
    const v1 = await cohere.rerank({ model: 'rerank-xlmr', query, documents, topN: 3, returnDocuments: true });
    expect(v1.results.map((r) => r.index)).toEqual(order.slice(0, 3));
    for (const r of v1.results) {
      expect(Math.abs(r.relevanceScore - expected[r.index])).toBeLessThan(1e-5);
      expect(r.document?.text).toBe(documents[r.index]);
    }
    const v2 = await new CohereClientV2({ token: 'not-needed', environment: gw.url }).rerank({ model: 'rerank-xlmr', query, documents });
    expect(v2.results.map((r) => r.index)).toEqual(order);
    for (const r of v2.results) expect(Math.abs(r.relevanceScore - expected[r.index])).toBeLessThan(1e-5);
    // An unknown model is the gateway's 404, which the SDK raises.
    await expect(cohere.rerank({ model: 'rerank-english-v3.0', query, documents })).rejects.toMatchObject({ statusCode: 404 });
  });

  it('TEI: /rerank and /predict with their own bodies; /embed through @huggingface/inference', async () => {
    const expected = await Promise.all(documents.map((d) => reference(query, d)));
    const res = await fetch(`${gw.url}/rerank`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, texts: documents, return_text: true }) });
    expect(res.status).toBe(200);
    const ranks = (await res.json()) as { index: number; score: number; text: string }[];
    expect(ranks.map((r) => r.score)).toEqual([...ranks.map((r) => r.score)].sort((a, b) => b - a));
    for (const r of ranks) {
      expect(Math.abs(r.score - expected[r.index])).toBeLessThan(1e-5);
      expect(r.text).toBe(documents[r.index]);
    }
    const hf = new InferenceClient();
    const vectors = (await hf.featureExtraction({ endpointUrl: `${gw.url}/embed`, inputs: 'A man is playing a guitar.' })) as number[][];
    const ours = (await (await fetch(`${gw.url}/v1/embeddings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ input: 'A man is playing a guitar.', model: 'sts-demo' }) })).json()).data[0].embedding;
    expect(vectors[0]).toEqual(ours);
    // TEI's /predict answers one input with its label list (the Hugging Face client expects a list of those: it
    // reads the gateway's /models/{name} instead, tested above), so it is called with TEI's own body.
    const predicted = await fetch(`${gw.url}/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ inputs: 'a puzzle game with colourful blocks' }) });
    const labels = (await predicted.json()) as { label: string; score: number }[];
    expect(labels.length).toBe(10);
    expect(labels.reduce((s, l) => s + l.score, 0)).toBeCloseTo(1, 5);
    expect(labels.map((l) => l.score)).toEqual([...labels.map((l) => l.score)].sort((a, b) => b - a));
  });
});
