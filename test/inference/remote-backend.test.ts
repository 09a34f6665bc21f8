/**
 * Remote backends against a v2 server whose faults the test controls: it forwards to a real gateway (A,
 * in-process) unless told to stall, refuse, reset connections, answer 400, or say its model is not ready.
 * Checks the boot checks, the error mapping (timeouts and unreachable: 503 retryable; refused input: 500
 * model_error), the retry of a reset connection, the circuit (degraded at once, half-open probe, recovery),
 * readiness following the remote's, and that JSON tensors give the same answers as binary ones.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { buildApp, demoZip, testConfig } from '../helpers/app.ts';
import { postJson } from '../helpers/http.ts';
import { difference } from '../helpers/remote.ts';

type Mode = 'ok' | 'stall' | 'reset' | 'unavailable' | 'reject' | 'not-ready';

/** A v2 server in front of `target`, with switchable faults; `resetNext` resets that many connections first. */
async function faultyServer(target: FastifyInstance) {
  const state = { mode: 'ok' as Mode, resetNext: 0, infers: 0, readyCalls: 0, okAfterReadyCalls: 0, metadata: (m: Record<string, unknown>) => m };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const isInfer = req.url!.endsWith('/infer');
      if (isInfer) state.infers++;
      if (req.url!.endsWith('/ready') && ++state.readyCalls === state.okAfterReadyCalls) state.mode = 'ok';
      if (state.mode === 'stall') return; // never answers
      if (state.mode === 'reset' || (isInfer && state.resetNext > 0)) {
        state.resetNext = Math.max(0, state.resetNext - 1);
        req.socket.destroy();
        return;
      }
      if (state.mode === 'unavailable') return res.writeHead(503, { 'content-type': 'application/json' }).end('{"error":"server is starting"}');
      if (state.mode === 'not-ready' && req.url!.endsWith('/ready')) return res.writeHead(400).end();
      if (state.mode === 'reject' && isInfer) return res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":"input_ids: index out of range"}');
      void target
        .inject({ method: req.method as 'GET' | 'POST', url: req.url!, headers: req.headers as Record<string, string>, payload: chunks.length ? Buffer.concat(chunks) : undefined })
        .then((r) => {
          let body = r.rawPayload;
          if (req.method === 'GET' && /\/v2\/models\/[^/]+$/.test(req.url!) && r.statusCode === 200) body = Buffer.from(JSON.stringify(state.metadata(r.json())));
          const headers = { ...r.headers };
          delete headers['content-length'];
          delete headers['transfer-encoding'];
          res.writeHead(r.statusCode, headers as http.OutgoingHttpHeaders).end(body);
        });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, state, close: () => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))) };
}

const entry = (name: string, url: string, backend: Record<string, unknown> = {}, required = true) => ({ name, source: demoZip(name), required, default: true, backend: { kind: 'kserve-v2', url, ...backend } });
const until = async (what: () => Promise<boolean>, ms = 10_000) => {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await what()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
};

describe('remote backends (kserve-v2) under faults', () => {
  let a: FastifyInstance;
  let fake: Awaited<ReturnType<typeof faultyServer>>;
  beforeAll(async () => {
    a = await buildApp(testConfig({ models: ['sts-demo', 'classify-demo'].map((name) => ({ name, source: demoZip(name), required: true, default: true })) }));
    fake = await faultyServer(a);
  });
  afterAll(async () => {
    await fake?.close();
    await a?.close();
  });

  describe('boot', () => {
    it('checks the remote metadata against the task: a missing output, a fixed batch axis and a model that never becomes ready fail with the cause', async () => {
      fake.state.metadata = (m) => (m.name === 'sts-demo' ? { ...m, outputs: [{ name: 'pooler_output', datatype: 'FP32', shape: [-1, 128] }] } : { ...m, inputs: (m.inputs as { shape: number[] }[]).map((i) => ({ ...i, shape: [1, -1] })) });
      const b = await buildApp(testConfig({ models: [entry('sts-demo', fake.url, {}, false), entry('classify-demo', fake.url, {}, false), entry('qa-demo', 'http://127.0.0.1:9', { bootWaitMs: 300 }, false)] }));
      try {
        const models = Object.fromEntries(b.models.list().map((m) => [m.name, m]));
        expect(models['sts-demo'].state).toBe('failed');
        expect(models['sts-demo'].error).toMatch(/lack sentence_embedding or last_hidden_state/);
        expect(models['classify-demo'].state).toBe('failed');
        expect(models['classify-demo'].error).toMatch(/fixed batch of 1/);
        expect(models['qa-demo'].state).toBe('failed');
        expect(models['qa-demo'].error).toMatch(/not ready after 300 ms.*ECONNREFUSED/);
      } finally {
        fake.state.metadata = (m) => m;
        await b.close();
      }
    });

    it('waits for a remote that comes up after the gateway (bootWaitMs)', async () => {
      // 503 to the first three readiness polls (500 ms apart), then up.
      fake.state.mode = 'unavailable';
      fake.state.okAfterReadyCalls = fake.state.readyCalls + 4;
      const b = await buildApp(testConfig({ models: [entry('classify-demo', fake.url, { bootWaitMs: 10_000 })] }));
      try {
        expect(b.models.status('classify-demo')!.state).toBe('ready');
        expect(b.models.status('classify-demo')!.timings.remote).toBeGreaterThan(1000);
      } finally {
        await b.close();
      }
    });
  });

  describe('serving', () => {
    let b: FastifyInstance;
    const TIMEOUT = 1500;
    const PROBE = 150;
    const embed = (input: string | string[]) => postJson(b, '/v1/embeddings', { input, model: 'sts-demo' });
    const classify = (inputs: string) => postJson(b, '/v1/classify', { inputs, model: 'classify-demo' });
    const state = (m: string) => b.models.status(m)!.state;

    beforeAll(async () => {
      fake.state.mode = 'ok';
      b = await buildApp(
        testConfig({
          models: ['sts-demo', 'classify-demo'].map((m) => entry(m, fake.url, { timeoutMs: TIMEOUT, probeIntervalMs: PROBE, healthIntervalMs: 300, breakAfter: 2, retries: 1 })),
          cache: { embeddingBytes: 0, resultBytes: 0 },
        }),
      );
    });
    afterAll(async () => b?.close());

    it('answers as the remote gateway does', async () => {
      const res = await embed(['a remote embedding', 'another one']);
      expect(res.status).toBe(200);
      const direct = await postJson(a, '/v1/embeddings', { input: ['a remote embedding', 'another one'], model: 'sts-demo' });
      expect(difference(res.body, direct.body, 1e-6)).toBeUndefined();
    });

    it('retries a call whose connection was reset before an answer', async () => {
      fake.state.resetNext = 1;
      const res = await classify('reset once, then answered');
      expect(res.status, res.raw).toBe(200);
      expect(fake.state.resetNext).toBe(0);
      expect(state('classify-demo')).toBe('ready');
    });

    it('a remote that refuses the input: 500 model_error after the rows were retried alone; the circuit stays closed', async () => {
      fake.state.mode = 'reject';
      try {
        const res = await classify('a refused input');
        expect(res.status).toBe(500);
        expect(res.body.error.code).toBe('model_error');
        expect(state('classify-demo')).toBe('ready');
      } finally {
        fake.state.mode = 'ok';
      }
    });

    it('a stalled remote: 503 within the timeout (never a hang), then degraded and refused at once with Retry-After; back by itself', async () => {
      fake.state.mode = 'stall';
      const t0 = performance.now();
      const first = await embed('stalled call one');
      const ms = performance.now() - t0;
      expect(first.status).toBe(503);
      expect(['inference_failed', 'degraded']).toContain(first.body.error.code);
      expect(first.headers['retry-after']).toBeDefined();
      // Bounded by the timeout (slack for a loaded machine), not the 30 s request deadline.
      expect(ms).toBeLessThan(TIMEOUT * 2 + 3000);
      await embed('stalled call two');
      expect(state('sts-demo')).toBe('degraded');
      const infers = fake.state.infers;
      const refused = await embed('refused at admission');
      // Refused at admission: no call reached the remote.
      expect(fake.state.infers).toBe(infers);
      expect(refused.status).toBe(503);
      expect(refused.body.error.code).toBe('degraded');
      expect(refused.body.error.message).toMatch(/sts-demo.*not answering/);
      expect(refused.headers['retry-after']).toBe('1');
      expect((await b.inject('/v1/models/sts-demo')).json().state).toBe('degraded');
      expect((await b.inject('/health/ready')).statusCode).toBe(503);
      fake.state.mode = 'ok';
      // classify-demo's readiness polls stalled too: both come back.
      expect(await until(async () => state('sts-demo') === 'ready' && state('classify-demo') === 'ready')).toBe(true);
      const back = await embed('answered again');
      expect(back.status).toBe(200);
      expect((await b.inject('/health/ready')).statusCode).toBe(200);
    });

    it('an unreachable remote (connection reset every time): degraded after breakAfter calls; the probe brings it back', async () => {
      fake.state.mode = 'reset';
      const answers = [await classify('unreachable one'), await classify('unreachable two'), await classify('unreachable three')];
      expect(answers.every((r) => r.status === 503 && r.headers['retry-after'])).toBe(true);
      expect(state('classify-demo')).toBe('degraded');
      const infersWhileOpen = fake.state.infers;
      await new Promise((r) => setTimeout(r, PROBE * 4));
      // Half-open probes run (one at a time), requests do not reach the remote.
      await classify('refused');
      expect(fake.state.infers - infersWhileOpen).toBeLessThanOrEqual(1);
      fake.state.mode = 'ok';
      expect(await until(async () => state('classify-demo') === 'ready')).toBe(true);
      expect((await classify('serving again')).status).toBe(200);
    });

    it('readiness follows the remote: a model the remote reports not ready turns degraded without traffic, and ready again', async () => {
      fake.state.mode = 'not-ready';
      try {
        expect(await until(async () => state('sts-demo') === 'degraded' && state('classify-demo') === 'degraded', 5000)).toBe(true);
        expect((await b.inject('/v2/models/sts-demo/ready')).statusCode).toBe(400);
        const res = await embed('while the remote is not ready');
        expect(res.status).toBe(503);
        expect(res.body.error.code).toBe('degraded');
      } finally {
        fake.state.mode = 'ok';
      }
      expect(await until(async () => state('sts-demo') === 'ready' && state('classify-demo') === 'ready', 5000)).toBe(true);
    });

    it('serves /v2 for its remote models too: metadata with the remote platform, raw tensors passed through', async () => {
      const meta = (await b.inject('/v2/models/sts-demo')).json();
      expect(meta.platform).toBe('onnx_onnxv1');
      expect(meta.outputs).toEqual([{ name: 'sentence_embedding', datatype: 'FP32', shape: [-1, 256] }]);
      const body = { inputs: ['input_ids', 'attention_mask', 'token_type_ids'].map((name, i) => ({ name, shape: [1, 3], datatype: 'INT64', data: i === 0 ? [2, 900, 3] : i === 1 ? [1, 1, 1] : [0, 0, 0] })) };
      const viaB = await postJson(b, '/v2/models/sts-demo/infer', body);
      const direct = await postJson(a, '/v2/models/sts-demo/infer', body);
      expect(viaB.status).toBe(200);
      expect(difference(viaB.body.outputs, direct.body.outputs, 1e-6)).toBeUndefined();
    });
  });

  it('a remote model added at run time (PUT /v1/models/{name} with a backend) serves, and DELETE closes its connections', async () => {
    fake.state.mode = 'ok';
    const b = await buildApp(testConfig({ models: [], cache: { embeddingBytes: 0, resultBytes: 0 } }));
    try {
      const put = await b.inject({ method: 'PUT', url: '/v1/models/cls-remote', payload: { source: demoZip('classify-demo'), backend: { kind: 'kserve-v2', url: fake.url, model: 'classify-demo' } } });
      expect(put.statusCode, put.body).toBe(202);
      expect(await until(async () => b.models.status('cls-remote')?.state === 'ready', 30_000)).toBe(true);
      expect(b.models.status('cls-remote')!.backend).toEqual({ kind: 'kserve-v2', url: fake.url, model: 'classify-demo' });
      const viaB = await postJson(b, '/v1/classify', { inputs: 'added at run time', model: 'cls-remote' });
      const direct = await postJson(a, '/v1/classify', { inputs: 'added at run time', model: 'classify-demo' });
      expect(viaB.status).toBe(200);
      expect(difference(viaB.body.predictions, direct.body.predictions, 1e-6)).toBeUndefined();
      const remote = (await b.models.resolve('text-classification', 'cls-remote')).remote!;
      expect((await b.inject({ method: 'DELETE', url: '/v1/models/cls-remote' })).statusCode).toBe(202);
      await b.models.settled();
      expect(b.models.status('cls-remote')).toBeUndefined();
      expect(remote.idleSlots()).toEqual([]);
    } finally {
      await b.close();
    }
  });

  it('JSON tensors (binaryData: false) give the same answers as binary ones', async () => {
    fake.state.mode = 'ok';
    const b = await buildApp(testConfig({ models: [entry('sts-demo', fake.url, { binaryData: false })], cache: { embeddingBytes: 0, resultBytes: 0 } }));
    try {
      const input = ['json tensors over the wire', 'a second sentence'];
      const res = await postJson(b, '/v1/embeddings', { input, model: 'sts-demo' });
      const direct = await postJson(a, '/v1/embeddings', { input, model: 'sts-demo' });
      expect(res.status).toBe(200);
      expect(difference(res.body, direct.body, 1e-6)).toBeUndefined();
    } finally {
      await b.close();
    }
  });
});
