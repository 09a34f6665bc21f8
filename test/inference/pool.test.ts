/**
 * The worker pool's calls never wait on a worker that has exited: the answer would never come (a model unloaded
 * while the pool closed, between one worker's exit and the next's, once hung its load and with it the boot).
 */
import { describe, expect, it } from 'vitest';
import { PoolWorker, WorkerGoneError, WorkerPool } from '../../src/inference/pool.ts';

describe('inference worker pool', () => {
  it('rejects a call to a worker that has exited instead of waiting for an answer that cannot come', async () => {
    const gone: Error[] = [];
    const w = new PoolWorker(0, 1, 0, (_w, err) => gone.push(err));
    const exited = new Promise((r) => w.worker.once('exit', r));
    await w.worker.terminate();
    await exited;
    expect(gone).toHaveLength(1);
    const call = w.call({ type: 'unload', model: 'm' });
    await expect(Promise.race([call, new Promise((r) => setTimeout(() => r('still waiting'), 2000))])).rejects.toBeInstanceOf(WorkerGoneError);
  });

  it('unloads nothing once closing (its workers are being terminated)', async () => {
    const pool = new WorkerPool({ size: 2, intraOpThreads: 1 });
    pool.start();
    const closing = pool.close();
    await expect(pool.unload('m')).resolves.toEqual([]);
    await closing;
    expect(pool.size).toBe(0);
  });
});
