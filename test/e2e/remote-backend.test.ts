/**
 * Two gateway processes: A serves the demo models itself; B serves the same models with their graphs on A's
 * /v2 endpoint (backend kind kserve-v2). B must answer every task route exactly as A does, batch its calls,
 * turn degraded (503 with Retry-After, never a hang) when A is killed mid-load, and recover by itself when A
 * comes back on the same port.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_MODELS, demoZip } from '../helpers/app.ts';
import { startGateway, type GatewayProcess } from '../helpers/gateway-process.ts';
import { difference, histogram, post, remoteEntries, runConcurrently, taskCalls, type Answer } from '../helpers/remote.ts';

const TIMEOUT_MS = 2000;
const PROBE_MS = 300;
const quiet = { GATEWAY_SERVER__LOG_LEVEL: 'warn', GATEWAY_SERVER__LOG_FORMAT: 'json' };
// No caches: every answer of B is computed through A, not remembered.
const noCaches = { GATEWAY_CACHE__EMBEDDING_BYTES: '0', GATEWAY_CACHE__RESULT_BYTES: '0' };
const localEntries = DEMO_MODELS.map((name) => ({ name, source: demoZip(name), default: name !== 'essay-demo-bands' }));

describe('a gateway whose models run on another gateway over KServe v2', () => {
  let a: GatewayProcess;
  let b: GatewayProcess;
  const startA = (port?: number, storeDir?: string) =>
    startGateway({ ...quiet, ...noCaches, GATEWAY_MODELS: JSON.stringify(localEntries), GATEWAY_INFERENCE__WORKERS: '1', ...(port ? { PORT: String(port) } : {}), ...(storeDir ? { GATEWAY_STORE__DIR: storeDir } : {}) });
  const metrics = async (g: GatewayProcess) => (await fetch(`${g.url}/metrics`)).text();
  const states = async (g: GatewayProcess) => Object.fromEntries(((await (await fetch(`${g.url}/v1/models`)).json()) as { data: { name: string; state: string }[] }).data.map((m) => [m.name, m.state]));

  beforeAll(async () => {
    a = await startA();
    await a.waitReady(120_000);
    b = await startGateway({
      ...quiet,
      ...noCaches,
      GATEWAY_INFERENCE__WORKERS: '1',
      GATEWAY_MODELS: JSON.stringify(remoteEntries(a.url, { timeoutMs: TIMEOUT_MS, probeIntervalMs: PROBE_MS, healthIntervalMs: 1000, maxConcurrency: 4 })),
    });
    await b.waitReady(120_000);
  }, 240_000);
  afterAll(async () => {
    await Promise.all([b?.stop(), a?.stop()]);
  });

  it('lists its models as remote-backed, with the remote step instead of a session', async () => {
    const res = (await (await fetch(`${b.url}/v1/models`)).json()) as { data: { name: string; state: string; backend: unknown; timings: Record<string, number> }[] };
    for (const m of res.data) {
      expect(m.state).toBe('ready');
      expect(m.backend).toEqual({ kind: 'kserve-v2', url: a.url, model: m.name });
      expect(m.timings).toHaveProperty('remote');
      expect(m.timings).not.toHaveProperty('session');
    }
  });

  it('answers every task route exactly as A does (1e-6) under concurrency 32, and A sees the batches B formed', async () => {
    const calls = taskCalls(240);
    const direct = await runConcurrently(calls.map((c) => () => post(a.url, c)), 32);
    const before = histogram(await metrics(a), 'gateway_batch_size', 'model');
    const viaB = await runConcurrently(calls.map((c) => () => post(b.url, c)), 32);
    const after = histogram(await metrics(a), 'gateway_batch_size', 'model');
    calls.forEach((c, i) => {
      expect(direct[i].status, `${c.path} on A: ${JSON.stringify(direct[i].body).slice(0, 300)}`).toBe(200);
      expect(viaB[i].status, `${c.path} on B: ${JSON.stringify(viaB[i].body).slice(0, 300)}`).toBe(200);
      expect(difference(viaB[i].body, direct[i].body, 1e-6), `${c.path} #${i}`).toBeUndefined();
    });
    // What A ran while B's load went through: B's batches (each one v2 infer call) in A's own batcher.
    const sizes: Record<string, number> = {};
    for (const m of DEMO_MODELS) {
      const calls = after[m].count - (before[m]?.count ?? 0);
      const rows = after[m].sum - (before[m]?.sum ?? 0);
      expect(calls, m).toBeGreaterThan(0);
      sizes[m] = rows / calls;
    }
    console.log('mean batch size on A during B\'s load:', JSON.stringify(Object.fromEntries(Object.entries(sizes).map(([k, v]) => [k, Number(v.toFixed(2))]))));
    expect(Math.max(...Object.values(sizes))).toBeGreaterThan(1);
    // B's own scheduler batched too (its batches are its calls to A).
    const onB = histogram(await metrics(b), 'gateway_batch_size', 'model');
    expect(onB['sts-demo'].sum / onB['sts-demo'].count).toBeGreaterThan(1);
  }, 120_000);

  it('turns degraded when A is killed mid-load (503 with Retry-After, none hangs) and recovers when A is back', async () => {
    const calls = taskCalls(2000);
    const answers: (Answer & { at: number })[] = [];
    let killedAt = 0;
    let stop = false;
    let next = 0;
    const t0 = Date.now();
    const load = Promise.all(
      Array.from({ length: 32 }, async () => {
        while (!stop) {
          const at = Date.now();
          const res = await post(b.url, calls[next++ % calls.length], TIMEOUT_MS * 5).catch((err: Error) => ({ status: -1, body: err.message, ms: Date.now() - at, retryAfter: null }));
          answers.push({ ...res, at });
        }
      }),
    );
    await new Promise((r) => setTimeout(r, 1500));
    const { port, storeDir } = a;
    a.child.kill('SIGKILL');
    killedAt = Date.now();
    await a.exited;
    await new Promise((r) => setTimeout(r, TIMEOUT_MS + 2000));
    stop = true;
    await load;

    const before = answers.filter((r) => r.at + r.ms < killedAt);
    const after = answers.filter((r) => r.at > killedAt + TIMEOUT_MS + 500);
    expect(before.length).toBeGreaterThan(20);
    expect(before.filter((r) => r.status !== 200).map((r) => JSON.stringify(r.body).slice(0, 200))).toEqual([]);
    // Every answer is a 200 or a 503 with Retry-After, and none took longer than the configured timeout.
    for (const r of answers) {
      expect([200, 503], JSON.stringify(r.body).slice(0, 300)).toContain(r.status);
      if (r.status === 503) expect(r.retryAfter).toMatch(/^\d+$/);
      // Bounded by the configured timeout (plus slack for a loaded machine), never the 30 s request deadline of a hang.
      expect(r.ms, `an answer ${r.at - t0} ms into the run`).toBeLessThan(TIMEOUT_MS + 3000);
    }
    const inKill = answers.filter((r) => r.at + r.ms >= killedAt);
    const first503 = Math.min(...inKill.filter((r) => r.status === 503).map((r) => r.at + r.ms)) - killedAt;
    console.log(
      `A killed: ${before.length} answers before (all 200); after: ${inKill.filter((r) => r.status === 200).length} x 200, ${inKill.filter((r) => r.status === 503).length} x 503; ` +
        `first 503 ${Math.round(first503)} ms after the kill; slowest answer ${Math.round(Math.max(...answers.map((r) => r.ms)))} ms (timeout ${TIMEOUT_MS} ms)`,
    );
    expect(after.length).toBeGreaterThan(20);
    expect(after.every((r) => r.status === 503 && (r.body as { error: { code: string } }).error.code === 'degraded')).toBe(true);
    // Refused at admission, without waiting on the dead remote (the median is a figure, not a threshold: no timing thresholds in npm test).
    const sorted = after.map((r) => r.ms).sort((x, y) => x - y);
    console.log(`degraded refusals: median ${sorted[Math.floor(sorted.length / 2)].toFixed(1)} ms`);

    const degraded = await states(b);
    expect(degraded).toEqual(Object.fromEntries(DEMO_MODELS.map((m) => [m, 'degraded'])));
    expect((await fetch(`${b.url}/health/ready`)).status).toBe(503);
    expect((await fetch(`${b.url}/v2/models/sts-demo/ready`)).status).toBe(400);

    // A back on the same port: B recovers by itself.
    a = await startA(port, storeDir);
    await a.waitReady(120_000);
    const until = Date.now() + 15_000;
    while (Date.now() < until && Object.values(await states(b)).some((s) => s !== 'ready')) await new Promise((r) => setTimeout(r, 200));
    expect(await states(b)).toEqual(Object.fromEntries(DEMO_MODELS.map((m) => [m, 'ready'])));
    expect((await fetch(`${b.url}/health/ready`)).status).toBe(200);
    const again = taskCalls(24);
    const [viaB, direct] = await Promise.all([runConcurrently(again.map((c) => () => post(b.url, c)), 8), runConcurrently(again.map((c) => () => post(a.url, c)), 8)]);
    again.forEach((c, i) => {
      expect(viaB[i].status, c.path).toBe(200);
      expect(difference(viaB[i].body, direct[i].body, 1e-6), c.path).toBeUndefined();
    });
  }, 240_000);
});
