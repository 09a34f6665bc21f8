/**
 * A model replaced on every replica behind Nginx, one replica after the other (scripts/rollout-model.ts), while
 * clients keep sending through Nginx: zero failed requests, and every replica ends on the new version.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rollout } from '../../scripts/rollout-model.ts';
import { demoZip } from '../helpers/app.ts';
import { craftZip } from '../helpers/zip-craft.ts';
import { readZip } from '../helpers/unzip.ts';
import { startGateway, type GatewayProcess } from '../helpers/gateway-process.ts';
import { postJson, startNginx, type NginxHandle } from '../deploy/harness.ts';

const ADMIN = 'admin-key-0123456789abcdef';
const INFER = 'infer-key-0123456789abcdef';

describe('rolling a model out to the replicas behind nginx', () => {
  const gateways: GatewayProcess[] = [];
  let nginx: NginxHandle;
  let v2: string;

  beforeAll(async () => {
    const files = await readZip(demoZip('classify-demo'));
    const g = JSON.parse(files['gateway.json'].toString());
    files['gateway.json'] = Buffer.from(JSON.stringify({ ...g, version: '3.0.0', labels: [...g.labels].reverse() }));
    v2 = join(mkdtempSync(join(tmpdir(), 'rollout-')), 'classify-v2.zip');
    writeFileSync(v2, craftZip(Object.entries(files).map(([name, data]) => ({ name, data }))));
    const env = {
      GATEWAY_MODELS: JSON.stringify([{ name: 'cls', source: demoZip('classify-demo') }]),
      GATEWAY_API_KEYS: `${INFER},admin:${ADMIN}`,
      GATEWAY_SERVER__TRUST_PROXY: 'true',
    };
    for (let i = 0; i < 2; i++) gateways.push(await startGateway(env));
    await Promise.all(gateways.map((gw) => gw.waitReady(120_000)));
    nginx = await startNginx(gateways.map((gw) => `127.0.0.1:${gw.port}`), { RATE: '10000r/s', BURST: '10000' });
  }, 180_000);

  afterAll(async () => {
    await nginx?.stop();
    await Promise.all(gateways.map((gw) => gw.stop('SIGKILL')));
  });

  it('replaces the model on both replicas one after the other under load with zero failed requests', async () => {
    let stop = false;
    const seen: { status: number; version?: string }[] = [];
    const client = async () => {
      for (let i = 0; !stop; i++) {
        const r = await postJson(`${nginx.url}/v1/classify`, { inputs: `a puzzle game ${i}`, model: 'cls' }, { authorization: `Bearer ${INFER}` });
        seen.push({ status: r.status, version: r.status === 200 ? r.json<{ model_version: string }>().model_version : undefined });
      }
    };
    const clients = Array.from({ length: 8 }, client);
    await new Promise((r) => setTimeout(r, 1000));
    const lines: string[] = [];
    const result = await rollout({ name: 'cls', entry: { source: v2 }, replicas: gateways.map((gw) => gw.url), key: ADMIN, pollMs: 200, log: (l) => lines.push(l) });
    await new Promise((r) => setTimeout(r, 1000));
    stop = true;
    await Promise.all(clients);

    expect(result.map((r) => r.version.split('+')[0])).toEqual(['3.0.0', '3.0.0']);
    expect(lines.some((l) => l.includes('serving 2.0.0+'))).toBe(true);
    expect(seen.filter((s) => s.status !== 200)).toEqual([]);
    expect(seen.length).toBeGreaterThan(50);
    const versions = new Set(seen.map((s) => s.version?.split('+')[0]));
    expect(versions).toEqual(new Set(['2.0.0', '3.0.0']));
    // The last answers all come from the new version, whichever replica served them.
    expect(seen.slice(-10).every((s) => s.version?.startsWith('3.0.0+'))).toBe(true);
  }, 120_000);
});
