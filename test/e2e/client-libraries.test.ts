import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { InferenceClient } from '@huggingface/inference';
import { DEMO_MODELS, demoZip } from '../helpers/app.ts';
import { startGateway, type GatewayProcess } from '../helpers/gateway-process.ts';

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
