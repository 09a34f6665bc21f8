import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApp, demoZip, testConfig } from '../helpers/app.ts';

/**
 * Overload: with the worker busy and the queue full, the excess is refused at once with 503 and
 * Retry-After (TEI-style admission control), and every admitted request still completes. The worker is
 * held busy with the worker's stall hook (a run that holds its thread, as a very long native call would).
 */
describe('overload', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await buildApp(
      testConfig({
        models: [{ name: 'sts-demo', source: demoZip('sts-demo') }],
        inference: { workers: 1, maxBatchSize: 4, queueCapacity: 40 },
        cache: { embeddingBytes: 0, resultBytes: 0 },
      }),
    );
  });
  afterAll(async () => app?.close());

  it('refuses the excess with 503 + Retry-After while the admitted work waits, then completes all admitted work', async () => {
    const order: string[] = [];
    const send = (tag: string, input: string | string[]) =>
      app.inject({ method: 'POST', url: '/v1/embeddings', payload: { input } }).then((r) => {
        order.push(tag);
        return r;
      });
    const queued = () => app.models.queued()['sts-demo'];
    await app.models.pool.injectFault('stall', 3000);
    const running = send('running', 'this one holds the only worker');
    await new Promise((r) => setTimeout(r, 50));
    const fill = send('fill', Array.from({ length: 30 }, (_, i) => `queued sentence ${i}`));
    await expect.poll(queued).toBe(30);
    const singles = Array.from({ length: 10 }, (_, i) => send(`ok${i}`, `single ${i}`));
    await expect.poll(queued).toBe(40);
    const excess = await Promise.all(Array.from({ length: 5 }, (_, i) => send(`x${i}`, `excess ${i}`)));
    for (const r of excess) {
      expect(r.statusCode).toBe(503);
      expect(r.headers['retry-after']).toBe('1');
      expect(r.json().error).toEqual({ code: 'overloaded', message: expect.stringContaining('40 queued') });
    }
    // The refusals came back while everything admitted was still waiting for the stalled worker.
    expect(order).toEqual(['x0', 'x1', 'x2', 'x3', 'x4']);
    const done = await Promise.all([running, fill, ...singles]);
    expect(done.map((r) => r.statusCode)).toEqual(new Array(12).fill(200));
    expect(done[1].json().data).toHaveLength(30);
    expect((await send('after', 'fine again')).statusCode).toBe(200);
  });
});
