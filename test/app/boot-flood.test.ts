import { describe, expect, it } from 'vitest';
import { buildApp, demoZip, testConfig } from '../helpers/app.ts';

/**
 * A model warming up while another is already served (the gateway serves each model as soon as it is ready,
 * and behind Nginx that traffic is real). The race is forced: the moment the late model starts warming, both
 * workers are held (each one's next run stalls for a while) under a flood of 64 concurrent requests to the
 * ready model. Warm-up must wait its turn on each worker through the scheduler, not run beside a busy one or
 * fail for want of an idle one.
 */
describe('boot under load', () => {
  it('boots a late model while both workers are held and an earlier model is flooded at concurrency 64; the process stays up', async () => {
    const app = await buildApp(
      testConfig({
        models: [
          { name: 'classify-demo', source: demoZip('classify-demo') },
          { name: 'sts-demo', source: demoZip('sts-demo') },
        ],
      }),
      { boot: false },
    );
    let stop = false;
    const statuses = new Map<number, number>();
    let flood: Promise<void[]> | undefined;
    const worker = async (i: number) => {
      for (let n = 0; !stop; n++) {
        const res = await app.inject({ method: 'POST', url: '/v1/classify', payload: { inputs: `flood ${i} ${n} a text editor for the terminal` } });
        statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
      }
    };
    const held: Promise<void>[] = [];
    app.models.onState((name, state) => {
      if (name === 'classify-demo' && state === 'ready') flood = Promise.all(Array.from({ length: 64 }, (_, i) => worker(i)));
      if (name === 'sts-demo' && state === 'warming') {
        for (const slot of app.models.pool.slots()) held.push(app.models.pool.injectFault('stall', 1500, slot));
      }
    });
    try {
      await app.models.boot();
      await Promise.all(held);
      expect(app.models.status('sts-demo')?.state).toBe('ready');
      expect(app.models.status('sts-demo')?.warmup?.batch_invariance_max_diff).toBeLessThan(1e-4);
      const res = await app.inject({ method: 'POST', url: '/v1/embeddings', payload: { input: 'the late model answers' } });
      expect(res.statusCode).toBe(200);
    } finally {
      stop = true;
      await flood;
      await app.close();
    }
    // The flood was served (refusals only by design: overload 503), never a 5xx of another kind.
    expect(statuses.get(200) ?? 0).toBeGreaterThan(64);
    expect([...statuses.keys()].filter((s) => s !== 200 && s !== 503)).toEqual([]);
  });
});
