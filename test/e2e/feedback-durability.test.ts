/**
 * Feedback is never lost once acknowledged: a gateway killed with SIGKILL right after its 201s (and while more
 * feedback is in flight) comes back with every acknowledged record, and the journal stays readable.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { demoZip } from '../helpers/app.ts';
import { startGateway, type GatewayProcess } from '../helpers/gateway-process.ts';

const CONTEXT = 'The nginx package provides a web server. It is maintained by the Debian Nginx Maintainers.';

describe('feedback under SIGKILL', () => {
  const gateways: GatewayProcess[] = [];
  afterAll(async () => Promise.all(gateways.map((g) => g.stop('SIGKILL'))));

  it('keeps every record acknowledged with a 201, across three kills', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gw-feedback-kill-'));
    const env = { GATEWAY_MODELS: JSON.stringify([{ name: 'classify-demo', source: demoZip('classify-demo') }]), GATEWAY_FEEDBACK__DIR: dir };
    const acknowledged = new Set<string>();
    for (let round = 0; round < 3; round++) {
      const gw = await startGateway(env);
      gateways.push(gw);
      await gw.waitReady(120_000);
      const send = (i: number) =>
        fetch(`${gw.url}/v1/feedback`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ question: `Question ${round}-${i}?`, context: CONTEXT, answer: { text: 'Debian Nginx Maintainers', start: CONTEXT.indexOf('Debian') }, correct: i % 2 === 0 }),
        }).then(async (r) => (r.status === 201 ? ((await r.json()) as { id: string }).id : undefined), () => undefined);
      // Ten answered, then ten more in flight when the process dies right after the tenth 201.
      for (const id of await Promise.all(Array.from({ length: 10 }, (_, i) => send(i)))) if (id) acknowledged.add(id);
      const inFlight = Array.from({ length: 10 }, (_, i) => send(10 + i));
      process.kill(gw.child.pid!, 'SIGKILL');
      for (const id of await Promise.all(inFlight)) if (id) acknowledged.add(id);
      await gw.exited;
    }
    expect(acknowledged.size).toBeGreaterThanOrEqual(30);
    // Every line that is whole is a record; at most the last can be torn, and it was never acknowledged.
    const lines = readFileSync(join(dir, 'feedback.jsonl'), 'utf8').split('\n').filter(Boolean);
    const ids = new Set(lines.flatMap((l) => { try { return [(JSON.parse(l) as { id: string }).id]; } catch { return []; } }));
    for (const id of acknowledged) expect(ids.has(id), id).toBe(true);
    const gw = await startGateway(env);
    gateways.push(gw);
    await gw.waitReady(120_000);
    const squad = (await (await fetch(`${gw.url}/v1/feedback/export?format=squad`)).json()) as { data: { paragraphs: { qas: { id: string }[] }[] }[] };
    const exported = new Set(squad.data[0].paragraphs.flatMap((p) => p.qas.map((q) => q.id)));
    for (const id of acknowledged) expect(exported.has(id), id).toBe(true);
  }, 300_000);
});
