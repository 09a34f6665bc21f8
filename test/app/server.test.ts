import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { createBucket, startFaultProxy, startS3, upload, type S3Server } from '../helpers/s3.ts';
import { DEMO_MODELS, demoZip } from '../helpers/app.ts';
import { startGateway, type GatewayProcess } from '../helpers/gateway-process.ts';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const post = (url: string, body: unknown) => fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
const localModels = (extra: object[] = []) => JSON.stringify([...DEMO_MODELS.map((name) => ({ name, source: demoZip(name) })), ...extra]);

describe('the gateway process', () => {
  const running: GatewayProcess[] = [];
  afterAll(async () => {
    await Promise.all(running.map((g) => g.stop('SIGKILL')));
  });

  describe('booting from a real S3 server', () => {
    let s3: S3Server;
    const shas: Record<string, string> = {};
    beforeAll(async () => {
      s3 = await startS3();
      await createBucket(s3.client, 'models');
      for (const name of DEMO_MODELS) {
        const zip = readFileSync(demoZip(name));
        shas[name] = sha(zip);
        await upload(s3.client, 'models', `demo/${name}.zip`, zip);
      }
    });
    afterAll(async () => s3?.close());

    it('downloads, verifies and serves; a second boot with the same sha256 downloads nothing', async () => {
      const proxy = await startFaultProxy(s3.port);
      const env = {
        GATEWAY_MODELS: JSON.stringify(DEMO_MODELS.map((name) => ({ name, source: `s3://models/demo/${name}.zip`, sha256: shas[name] }))),
        GATEWAY_STORE__S3__ENDPOINT: proxy.endpoint,
        AWS_ACCESS_KEY_ID: 'S3RVER',
        AWS_SECRET_ACCESS_KEY: 'S3RVER',
        AWS_REGION: 'us-east-1',
        AWS_EC2_METADATA_DISABLED: 'true',
      };
      const first = await startGateway(env);
      running.push(first);
      await first.waitReady();
      expect(proxy.gets()).toBe(DEMO_MODELS.length);
      const res = await post(`${first.url}/v1/embeddings`, { input: ['a cat sits on the mat'] });
      expect(res.status).toBe(200);
      expect((await res.json()).data[0].embedding.length).toBeGreaterThan(8);
      const models = (await (await fetch(`${first.url}/v1/models`)).json()).data;
      expect(models.map((m: { sha256: string }) => m.sha256)).toEqual(DEMO_MODELS.map((n) => shas[n]));
      // Secrets never reach the logs.
      expect(first.output()).not.toContain('S3RVER');
      expect(await first.stop()).toBe(0);

      const second = await startGateway({ ...env, GATEWAY_STORE__DIR: first.storeDir });
      running.push(second);
      await second.waitReady();
      expect(proxy.gets()).toBe(DEMO_MODELS.length);
      expect((await post(`${second.url}/v1/embeddings`, { input: 'again' })).status).toBe(200);
      expect(await second.stop()).toBe(0);
      await proxy.close();
    });
  });

  it('exits 1 naming the model, the step and the cause when a required model cannot be served', async () => {
    const g = await startGateway({ GATEWAY_MODELS: JSON.stringify([{ name: 'qa-demo', source: demoZip('qa-demo') }, { name: 'broken', source: '/nonexistent/broken.zip' }]) });
    running.push(g);
    expect(await g.exited).toBe(1);
    expect(g.output()).toMatch(/model "broken" failed at downloading: .*\/nonexistent\/broken\.zip/);
  });

  it('serves the rest when an optional model fails, and reports it failed', async () => {
    const g = await startGateway({ GATEWAY_MODELS: localModels([{ name: 'extra', source: '/nonexistent/extra.zip', required: false }]) });
    running.push(g);
    await g.waitReady();
    const extra = await (await fetch(`${g.url}/v1/models/extra`)).json();
    expect(extra.state).toBe('failed');
    expect(extra.error).toContain('/nonexistent/extra.zip');
    expect((await post(`${g.url}/v1/classify`, { inputs: 'a text editor for the terminal' })).status).toBe(200);
    expect(await g.stop()).toBe(0);
  });

  it('keeps the event loop free while a long batch runs, and on SIGTERM finishes in-flight work, refuses new work with 503, exits 0', async () => {
    // A grace period long enough for a loaded CI machine: the test is about what happens within it.
    const g = await startGateway({ GATEWAY_MODELS: localModels(), GATEWAY_SERVER__DRAIN_DELAY_MS: '1500', GATEWAY_SERVER__SHUTDOWN_GRACE_MS: '120000' });
    running.push(g);
    await g.waitReady();
    const context = Array.from({ length: 1000 }, (_, i) => `word${i % 97} is here`).join(' ');
    const items = Array.from({ length: 8 }, () => ({ question: 'Which word is here?', context }));
    let longDone = false;
    const long = post(`${g.url}/v1/qa/batch`, { items }).then(async (r) => {
      longDone = true;
      return { status: r.status, body: await r.json() };
    });
    await new Promise((r) => setTimeout(r, 100));
    // Liveness answers while the inference workers are busy: the event loop is not blocked.
    const live = await fetch(`${g.url}/health/live`);
    expect(live.status).toBe(200);
    expect(longDone).toBe(false);

    const inFlight = Array.from({ length: 8 }, (_, i) => post(`${g.url}/v1/qa`, { question: 'Which word?', context: `${context} ${i}` }));
    // SIGTERM only once the gateway holds all nine requests (the batch and the eight), however loaded the machine is.
    await expect
      .poll(async () => ((await (await fetch(`${g.url}/v1/models/qa-demo`)).json()) as { in_flight?: number }).in_flight, { timeout: 30_000, interval: 10 })
      .toBe(9);
    g.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    const ready = await fetch(`${g.url}/health/ready`);
    expect(ready.status).toBe(503);
    expect((await ready.json()).status).toBe('draining');
    const refused = await post(`${g.url}/v1/classify`, { inputs: 'late request' });
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBeTruthy();
    expect((await refused.json()).error.code).toBe('draining');

    const done = await long;
    expect(done.status).toBe(200);
    expect(done.body.results).toHaveLength(8);
    expect(done.body.results[0].windows).toBeGreaterThan(10);
    const statuses = await Promise.all(inFlight.map((p) => p.then((r) => r.status)));
    expect(statuses).toEqual(new Array(8).fill(200));
    expect(await g.exited, g.output()).toBe(0);
    expect(g.output()).toContain('draining');
  }, 180_000);
});
