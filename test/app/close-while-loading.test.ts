/**
 * Closing the gateway while a model loads (SIGTERM during boot) ends the process cleanly: a worker ended inside
 * ONNX Runtime's session creation used to abort it (`terminate called after throwing an instance of
 * 'Napi::Error'`, exit 134). Each case runs in a child process, so an abort fails the test instead of the runner.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

describe('closing while a model loads', () => {
  for (const when of ['loading', 'warming']) {
    it(`exits cleanly when closed while the model is ${when}`, () => {
      const r = spawnSync(process.execPath, ['--import', 'tsx', 'test/fixtures/close-while-loading.ts', when], { encoding: 'utf8', timeout: 120_000 });
      expect(r.stderr).not.toMatch(/Napi::Error|terminate called/);
      expect(r.status, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { closedAt: string | null; boot: string };
      expect(out.closedAt).toBe(when);
      // The load that was in flight is not served after close, and says why.
      expect(out.boot).toMatch(/gateway closed while the model loaded/);
    }, 130_000);
  }
});
