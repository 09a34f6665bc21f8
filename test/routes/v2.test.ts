/**
 * The /v2 routes against the Open Inference Protocol specification (KServe's "Predict Protocol - Version 2",
 * REST, and Triton's binary tensor data extension): a test per documented field and error. Raw outputs are
 * checked against a direct ONNX Runtime run of the same graph.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import * as ort from 'onnxruntime-node';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp, demoZip, testConfig } from '../helpers/app.ts';
import { unzipTo } from '../helpers/unzip.ts';
import { l2Normalize } from '../../src/tasks/similarity.ts';

const MODELS = ['qa-demo', 'sts-demo', 'classify-demo', 'essay-demo'] as const;
const entries = MODELS.map((name) => ({ name, source: demoZip(name), required: true, default: true }));

type Json = Record<string, unknown> & { error?: unknown };
const json = (res: LightMyRequestResponse) => res.json() as Json;

/** The protocol's error object: `{ "error": $string }` and nothing else. */
function expectV2Error(res: LightMyRequestResponse, status: number, message?: RegExp) {
  expect(res.statusCode, res.body).toBe(status);
  const body = json(res);
  expect(Object.keys(body)).toEqual(['error']);
  expect(typeof body.error).toBe('string');
  if (message) expect(body.error).toMatch(message);
}

function expectEmpty(res: LightMyRequestResponse, status: number) {
  expect(res.statusCode).toBe(status);
  expect(res.body).toBe('');
}

/** A padded batch of token rows as the three INT64 input tensors, data flat. */
function tokenInputs(rows: number[][], seq = Math.max(...rows.map((r) => r.length))) {
  const ids: number[] = [];
  const mask: number[] = [];
  for (const r of rows) {
    for (let t = 0; t < seq; t++) {
      ids.push(r[t] ?? 0);
      mask.push(t < r.length ? 1 : 0);
    }
  }
  const shape = [rows.length, seq];
  return [
    { name: 'input_ids', shape, datatype: 'INT64', data: ids },
    { name: 'attention_mask', shape, datatype: 'INT64', data: mask },
    { name: 'token_type_ids', shape, datatype: 'INT64', data: ids.map(() => 0) },
  ];
}

const ROWS = [
  [2, 1051, 2290, 1190, 3],
  [2, 880, 3],
  [2, 1500, 1200, 1130, 1640, 1900, 3],
];

function binaryBody(header: object, parts: Buffer[]): { payload: Buffer; headers: Record<string, string> } {
  const json = Buffer.from(JSON.stringify(header));
  return { payload: Buffer.concat([json, ...parts]), headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(json.length) } };
}

const int64 = (values: number[]) => {
  const b = Buffer.alloc(values.length * 8);
  values.forEach((v, i) => b.writeBigInt64LE(BigInt(v), i * 8));
  return b;
};

describe('KServe v2 / Open Inference Protocol routes', () => {
  let app: FastifyInstance;
  const sessions: Record<string, ort.InferenceSession> = {};
  const infer = (model: string, body: unknown, url = `/v2/models/${model}/infer`) => app.inject({ method: 'POST', url, headers: { 'content-type': 'application/json' }, payload: typeof body === 'string' ? body : JSON.stringify(body) });

  beforeAll(async () => {
    app = await buildApp(testConfig({ models: entries }));
    for (const m of ['qa-demo', 'sts-demo']) {
      const dir = mkdtempSync(join(tmpdir(), `v2-${m}-`));
      await unzipTo(demoZip(m), dir);
      sessions[m] = await ort.InferenceSession.create(join(dir, 'model.onnx'));
    }
  });
  afterAll(async () => {
    await app?.close();
    for (const s of Object.values(sessions)) await s.release();
  });

  /** The graph run directly on the same padded batch. */
  async function direct(model: string, rows: number[][]) {
    const [ids, mask, types] = tokenInputs(rows);
    const t = (d: { data: number[]; shape: number[] }) => new ort.Tensor('int64', BigInt64Array.from(d.data.map(BigInt)), d.shape);
    return sessions[model].run({ input_ids: t(ids), attention_mask: t(mask), token_type_ids: t(types) });
  }

  describe('health', () => {
    it('server live: 200 with an empty body', async () => {
      expectEmpty(await app.inject('/v2/health/live'), 200);
    });

    it('server ready: 200 when every model is ready, 4xx (400) before that, both with empty bodies', async () => {
      expectEmpty(await app.inject('/v2/health/ready'), 200);
      const booting = await buildApp(testConfig({ models: entries.slice(0, 1) }), { boot: false });
      try {
        expectEmpty(await booting.inject('/v2/health/ready'), 400);
        expectEmpty(await booting.inject('/v2/health/live'), 200);
        expectEmpty(await booting.inject('/v2/models/qa-demo/ready'), 400);
        // Not loaded yet: metadata and infer are refused with the protocol's error body and Retry-After.
        const meta = await booting.inject('/v2/models/qa-demo');
        expectV2Error(meta, 503, /qa-demo/);
        expect(meta.headers['retry-after']).toBeDefined();
      } finally {
        await booting.close();
      }
    });

    it('server ready: 400 while draining; live stays 200', async () => {
      const draining = await buildApp(testConfig({ models: [] }));
      try {
        draining.startDraining();
        expectEmpty(await draining.inject('/v2/health/ready'), 400);
        expectEmpty(await draining.inject('/v2/health/live'), 200);
      } finally {
        await draining.close();
      }
    });

    it('model ready: 200 for a ready model, by name and by its version; 404 for an unknown model or version', async () => {
      const version = json(await app.inject('/v2/models/qa-demo')).versions as string[];
      expectEmpty(await app.inject('/v2/models/qa-demo/ready'), 200);
      expectEmpty(await app.inject(`/v2/models/qa-demo/versions/${version[0]}/ready`), 200);
      expectEmpty(await app.inject('/v2/models/qa-demo/versions/999/ready'), 404);
      expectEmpty(await app.inject('/v2/models/no-such-model/ready'), 404);
    });
  });

  describe('server metadata', () => {
    it('GET /v2 and /v2/: name, version and extensions (binary_tensor_data), nothing else', async () => {
      for (const url of ['/v2', '/v2/']) {
        const res = await app.inject(url);
        expect(res.statusCode).toBe(200);
        const body = json(res);
        expect(Object.keys(body).sort()).toEqual(['extensions', 'name', 'version']);
        expect(body.name).toBe('nlp-gateway');
        expect(body.version).toMatch(/^\d+\.\d+\.\d+/);
        expect(body.extensions).toEqual(['binary_tensor_data']);
      }
    });
  });

  describe('model metadata', () => {
    const expected: Record<string, { name: string; shape: number[] }[]> = {
      'qa-demo': [
        { name: 'start_logits', shape: [-1, -1] },
        { name: 'end_logits', shape: [-1, -1] },
      ],
      'sts-demo': [{ name: 'sentence_embedding', shape: [-1, 256] }],
      'classify-demo': [{ name: 'logits', shape: [-1, 10] }],
      'essay-demo': [{ name: 'logits', shape: [-1, 1] }],
    };

    it('name, versions, platform, inputs and outputs with names, datatypes and shapes (-1 for dynamic axes)', async () => {
      for (const m of MODELS) {
        const res = await app.inject(`/v2/models/${m}`);
        expect(res.statusCode).toBe(200);
        const body = json(res) as { name: string; versions: string[]; platform: string; inputs: unknown[]; outputs: unknown[] };
        expect(Object.keys(body).sort()).toEqual(['inputs', 'name', 'outputs', 'platform', 'versions']);
        expect(body.name).toBe(m);
        expect(body.versions).toEqual([json(await app.inject(`/v1/models/${m}`)).version]);
        // "<project>_<format>", one of the spec's platform names: ONNX models run by ONNX Runtime.
        expect(body.platform).toBe('onnx_onnxv1');
        expect(body.inputs).toEqual(['input_ids', 'attention_mask', 'token_type_ids'].map((name) => ({ name, datatype: 'INT64', shape: [-1, -1] })));
        expect(body.outputs).toEqual(expected[m].map((o) => ({ ...o, datatype: 'FP32' })));
      }
    });

    it('by version: the same metadata; an unknown version or model is 404 with { error }', async () => {
      const plain = json(await app.inject('/v2/models/sts-demo'));
      const byVersion = await app.inject(`/v2/models/sts-demo/versions/${(plain.versions as string[])[0]}`);
      expect(byVersion.statusCode).toBe(200);
      expect(json(byVersion)).toEqual(plain);
      expectV2Error(await app.inject('/v2/models/sts-demo/versions/7'), 404, /no version "7"/);
      expectV2Error(await app.inject('/v2/models/no-such-model'), 404, /unknown model "no-such-model"/);
    });
  });

  describe('inference', () => {
    it('request id comes back as the response id; model_name and model_version name the model', async () => {
      const res = await infer('classify-demo', { id: 'req-42', inputs: tokenInputs(ROWS) });
      expect(res.statusCode, res.body).toBe(200);
      const body = json(res);
      expect(body.id).toBe('req-42');
      expect(body.model_name).toBe('classify-demo');
      expect(body.model_version).toBe(json(await app.inject('/v1/models/classify-demo')).version);
      const noId = json(await infer('classify-demo', { inputs: tokenInputs(ROWS) }));
      expect(noId).not.toHaveProperty('id');
    });

    it('without "outputs" every output comes back; each response output has name, shape, datatype FP32 and row-major data', async () => {
      const res = await infer('qa-demo', { inputs: tokenInputs(ROWS) });
      expect(res.statusCode).toBe(200);
      const outputs = json(res).outputs as { name: string; shape: number[]; datatype: string; data: number[] }[];
      expect(outputs.map((o) => o.name)).toEqual(['start_logits', 'end_logits']);
      const ref = await direct('qa-demo', ROWS);
      for (const o of outputs) {
        expect(Object.keys(o).sort()).toEqual(['data', 'datatype', 'name', 'shape']);
        expect(o.datatype).toBe('FP32');
        expect(o.shape).toEqual([3, 7]);
        expect(o.data).toHaveLength(21);
        const want = ref[o.name].data as Float32Array;
        ROWS.forEach((r, b) => {
          for (let t = 0; t < 7; t++) {
            // Real positions equal the graph's own run; positions the mask leaves out are 0.
            if (t < r.length) expect(Math.abs(o.data[b * 7 + t] - want[b * 7 + t])).toBeLessThan(1e-5);
            else expect(o.data[b * 7 + t]).toBe(0);
          }
        });
      }
    });

    it('"outputs" picks which outputs come back, in the order asked', async () => {
      const res = await infer('qa-demo', { inputs: tokenInputs(ROWS), outputs: [{ name: 'end_logits' }] });
      expect((json(res).outputs as { name: string }[]).map((o) => o.name)).toEqual(['end_logits']);
      const both = await infer('qa-demo', { inputs: tokenInputs(ROWS), outputs: [{ name: 'end_logits' }, { name: 'start_logits' }] });
      expect((json(both).outputs as { name: string }[]).map((o) => o.name)).toEqual(['end_logits', 'start_logits']);
    });

    it('a similarity model returns its raw sentence_embedding [batch, 256]; normalised it is /v1/embeddings', async () => {
      const texts = ['A man is playing a guitar.', 'Debian ships many packages.'];
      const sts = await app.models.resolve('sentence-similarity', 'sts-demo');
      const tokens = await Promise.all(texts.map((t) => sts.tokenizer.encodeIds(t)));
      const rows = tokens.map((t) => t.ids);
      const res = await infer('sts-demo', { inputs: tokenInputs(rows) });
      expect(res.statusCode).toBe(200);
      const [o] = json(res).outputs as { name: string; shape: number[]; data: number[] }[];
      expect(o.name).toBe('sentence_embedding');
      expect(o.shape).toEqual([2, 256]);
      const vectors = [0, 1].map((i) => l2Normalize(Float32Array.from(o.data.slice(i * 256, (i + 1) * 256))));
      const emb = json(await app.inject({ method: 'POST', url: '/v1/embeddings', payload: { input: texts, model: 'sts-demo' } })).data as { embedding: number[] }[];
      vectors.forEach((v, i) => v.forEach((x, j) => expect(Math.abs(x - emb[i].embedding[j])).toBeLessThan(1e-6)));
    });

    it('data may be given in its natural nested form or flat: same answer; INT32 token tensors are taken too', async () => {
      const flat = tokenInputs(ROWS);
      const nested = flat.map((t) => ({ ...t, data: ROWS.map((_, b) => t.data.slice(b * 7, (b + 1) * 7)) }));
      const int32 = flat.map((t) => ({ ...t, datatype: 'INT32' }));
      const a = json(await infer('classify-demo', { inputs: flat }));
      expect(json(await infer('classify-demo', { inputs: nested }))).toEqual(a);
      expect(json(await infer('classify-demo', { inputs: int32 }))).toEqual(a);
      expect((a.outputs as { shape: number[] }[])[0].shape).toEqual([3, 10]);
    });

    it('"parameters" of the request and of tensors are accepted (unknown ones are ignored)', async () => {
      const inputs = tokenInputs(ROWS).map((t) => ({ ...t, parameters: { note: 'x' } }));
      const res = await infer('classify-demo', { parameters: { priority: 1, tag: 'a', flag: true }, inputs, outputs: [{ name: 'logits', parameters: { binary_data: false } }] });
      expect(res.statusCode, res.body).toBe(200);
      expect((json(res).outputs as unknown[])[0]).toHaveProperty('data');
    });

    describe('binary tensor data extension', () => {
      it('binary inputs (binary_data_size, Inference-Header-Content-Length) and binary outputs give exactly the JSON answer', async () => {
        const jsonAnswer = json(await infer('qa-demo', { inputs: tokenInputs(ROWS) }));
        const inputs = tokenInputs(ROWS);
        const header = {
          inputs: inputs.map(({ data, ...t }) => ({ ...t, parameters: { binary_data_size: data.length * 8 } })),
          outputs: [{ name: 'start_logits', parameters: { binary_data: true } }, { name: 'end_logits', parameters: { binary_data: true } }],
        };
        const { payload, headers } = binaryBody(header, inputs.map((t) => int64(t.data)));
        const res = await app.inject({ method: 'POST', url: '/v2/models/qa-demo/infer', headers, payload });
        expect(res.statusCode, res.body).toBe(200);
        const length = Number(res.headers['inference-header-content-length']);
        expect(length).toBeGreaterThan(0);
        expect(res.headers['content-type']).toBe('application/octet-stream');
        const raw = res.rawPayload;
        const head = JSON.parse(raw.subarray(0, length).toString()) as { outputs: { name: string; shape: number[]; datatype: string; parameters: { binary_data_size: number }; data?: unknown }[] };
        let at = length;
        head.outputs.forEach((o, i) => {
          expect(o).not.toHaveProperty('data');
          expect(o.datatype).toBe('FP32');
          expect(o.parameters.binary_data_size).toBe(3 * 7 * 4);
          const values = Array.from({ length: 21 }, (_, k) => raw.readFloatLE(at + k * 4));
          at += o.parameters.binary_data_size;
          const want = (jsonAnswer.outputs as { name: string; shape: number[]; data: number[] }[])[i];
          expect(o.name).toBe(want.name);
          expect(o.shape).toEqual(want.shape);
          expect(values).toEqual(want.data);
        });
        expect(at).toBe(raw.length);
      });

      it('binary_data_output: true makes every output binary unless an output says otherwise; JSON inputs can ask for binary outputs', async () => {
        const res = await infer('qa-demo', { parameters: { binary_data_output: true }, inputs: tokenInputs(ROWS), outputs: [{ name: 'start_logits' }, { name: 'end_logits', parameters: { binary_data: false } }] });
        expect(res.statusCode).toBe(200);
        const length = Number(res.headers['inference-header-content-length']);
        const head = JSON.parse(res.rawPayload.subarray(0, length).toString()) as { outputs: { parameters?: { binary_data_size: number }; data?: number[] }[] };
        expect(head.outputs[0].parameters?.binary_data_size).toBe(84);
        expect(head.outputs[0]).not.toHaveProperty('data');
        expect(head.outputs[1].data).toHaveLength(21);
        expect(res.rawPayload.length).toBe(length + 84);
      });

      it('a body without binary data is plain JSON (no Inference-Header-Content-Length in the answer)', async () => {
        const res = await infer('classify-demo', { inputs: tokenInputs(ROWS) });
        expect(res.headers['inference-header-content-length']).toBeUndefined();
        expect(res.headers['content-type']).toMatch(/^application\/json/);
      });

      it('refuses binary sizes that do not add up, and a header length past the body (400)', async () => {
        const inputs = tokenInputs(ROWS);
        const header = { inputs: inputs.map(({ data, ...t }) => ({ ...t, parameters: { binary_data_size: data.length * 8 } })) };
        const parts = inputs.map((t) => int64(t.data));
        const short = binaryBody(header, parts.slice(0, 2));
        expectV2Error(await app.inject({ method: 'POST', url: '/v2/models/qa-demo/infer', headers: short.headers, payload: short.payload }), 400, /binary_data_size/);
        const extra = binaryBody(header, [...parts, Buffer.alloc(8)]);
        expectV2Error(await app.inject({ method: 'POST', url: '/v2/models/qa-demo/infer', headers: extra.headers, payload: extra.payload }), 400, /8 bytes of binary data/);
        const past = binaryBody(header, parts);
        expectV2Error(await app.inject({ method: 'POST', url: '/v2/models/qa-demo/infer', headers: { ...past.headers, 'inference-header-content-length': String(past.payload.length + 1) }, payload: past.payload }), 400, /Inference-Header-Content-Length/);
        const wrongSize = binaryBody({ inputs: header.inputs.map((t, i) => (i === 0 ? { ...t, parameters: { binary_data_size: 8 } } : t)) }, [int64([1]), ...parts.slice(1)]);
        expectV2Error(await app.inject({ method: 'POST', url: '/v2/models/qa-demo/infer', headers: wrongSize.headers, payload: wrongSize.payload }), 400, /needs 168/);
      });
    });

    it('by version: the same answer; an unknown version is 404', async () => {
      const version = (json(await app.inject('/v2/models/classify-demo')).versions as string[])[0];
      const a = json(await infer('classify-demo', { inputs: tokenInputs(ROWS) }));
      const b = await infer('classify-demo', { inputs: tokenInputs(ROWS) }, `/v2/models/classify-demo/versions/${version}/infer`);
      expect(json(b)).toEqual(a);
      expectV2Error(await infer('classify-demo', { inputs: tokenInputs(ROWS) }, '/v2/models/classify-demo/versions/3/infer'), 404);
    });
  });

  describe('errors: status and the protocol\'s { "error": $string }', () => {
    const good = () => tokenInputs(ROWS);
    const cases: [string, () => unknown, number, RegExp][] = [
      ['body that is not JSON', () => '{ inputs: ', 400, /not valid JSON/],
      ['no "inputs"', () => ({ id: '1' }), 400, /inputs/],
      ['an input without shape or datatype', () => ({ inputs: [{ name: 'input_ids' }] }), 400, /shape/],
      ['an input the model does not have', () => ({ inputs: [...good(), { name: 'pixel_values', shape: [1], datatype: 'INT64', data: [1] }] }), 400, /no input "pixel_values"/],
      ['a required input missing', () => ({ inputs: good().slice(0, 2) }), 400, /needs input token_type_ids/],
      ['a float datatype for token ids', () => ({ inputs: good().map((t) => ({ ...t, datatype: 'FP32' })) }), 400, /datatype must be INT64/],
      ['data that does not fill the shape', () => ({ inputs: good().map((t, i) => (i === 0 ? { ...t, data: t.data.slice(1) } : t)) }), 400, /20 elements; shape \[3,7\] needs 21/],
      ['inputs of different shapes', () => ({ inputs: good().map((t, i) => (i === 2 ? { ...t, shape: [7, 3] } : t)) }), 400, /every input must have the shape of input_ids/],
      ['a token id past the vocabulary', () => ({ inputs: good().map((t, i) => (i === 0 ? { ...t, data: t.data.map((v, k) => (k === 1 ? 16384 : v)) } : t)) }), 400, /input_ids\[1\] is 16384; .* from 0 to 16383/],
      ['a token type past the type vocabulary', () => ({ inputs: good().map((t, i) => (i === 2 ? { ...t, data: t.data.map((v, k) => (k === 1 ? 2 : v)) } : t)) }), 400, /token_type_ids\[1\] is 2/],
      ['a shape no body can hold', () => ({ inputs: good().map((t) => ({ ...t, shape: [1e300, 7] })) }), 400, /more elements than any body/],
      ['a non-integer token id', () => ({ inputs: good().map((t, i) => (i === 0 ? { ...t, data: t.data.map((v, k) => (k === 0 ? 1.5 : v)) } : t)) }), 400, /must be an integer/],
      ['an attention mask that is not right padding', () => ({ inputs: good().map((t, i) => (i === 1 ? { ...t, data: t.data.map((v, k) => (k === 0 ? 0 : v)) } : t)) }), 400, /1s followed by 0s/],
      ['an output the model does not have', () => ({ inputs: good(), outputs: [{ name: 'pooler_output' }] }), 400, /no output "pooler_output"/],
      ['a negative dimension', () => ({ inputs: good().map((t) => ({ ...t, shape: [-1, 7] })) }), 400, /shape/],
      ['a binary_data that is not a boolean', () => ({ inputs: good(), outputs: [{ name: 'logits', parameters: { binary_data: 'yes' } }] }), 400, /binary_data must be true or false/],
    ];
    for (const [what, body, status, message] of cases) {
      it(`${what}: ${status}`, async () => expectV2Error(await infer('classify-demo', body()), status, message));
    }

    it('a sequence longer than the model takes: 413', async () => {
      const row = [2, ...Array.from({ length: 600 }, () => 1000), 3];
      expectV2Error(await infer('classify-demo', { inputs: tokenInputs([row]) }), 413, /takes at most/);
    });

    it('an unknown model: 404; an unknown route under /v2: 404; both in the protocol shape (Cohere\'s /v2/rerank keeps the gateway\'s)', async () => {
      expectV2Error(await infer('no-such-model', { inputs: good() }), 404, /unknown model/);
      expectV2Error(await app.inject('/v2/repository/index'), 404, /no route/);
      const cohere = await app.inject({ method: 'POST', url: '/v2/rerank', payload: {} });
      expect(cohere.statusCode).toBe(400);
      expect(json(cohere).error).toMatchObject({ code: 'invalid_request' });
    });

    it('with API keys configured: 401 in the protocol shape, except the v2 health routes', async () => {
      const key = 'a-v2-infer-key-of-length';
      const secured = await buildApp(testConfig({ models: [], security: { apiKeys: [key] } }));
      try {
        expectV2Error(await secured.inject('/v2/models/qa-demo'), 401, /API key/);
        expectV2Error(await secured.inject({ method: 'POST', url: '/v2/models/qa-demo/infer', payload: { inputs: [] } }), 401);
        expectEmpty(await secured.inject('/v2/health/live'), 200);
        expect((await secured.inject('/v2/health/ready')).statusCode).toBe(200);
        expect((await secured.inject({ url: '/v2', headers: { authorization: `Bearer ${key}` } })).statusCode).toBe(200);
      } finally {
        await secured.close();
      }
    });
  });
});
