import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export interface GatewayProcess {
  url: string;
  port: number;
  /** The model cache folder it used (pass it to another process to reuse the unpacked models). */
  storeDir: string;
  child: ChildProcess;
  /** Everything the process wrote (stdout and stderr), for assertions on logs. */
  output(): string;
  /** Resolves with the exit code (or the signal name). */
  exited: Promise<number | string>;
  waitReady(timeoutMs?: number): Promise<void>;
  stop(signal?: NodeJS.Signals): Promise<number | string>;
}

/**
 * Starts the gateway as users do (`node --import tsx src/server.ts`, the Dockerfile's command): one process
 * with a PID the test can signal. The environment is the caller's, not the test runner's.
 */
export async function startGateway(env: Record<string, string> = {}): Promise<GatewayProcess> {
  // A given PORT is kept (a process restarted on the port its clients know); otherwise a free one.
  const port = env.PORT ? Number(env.PORT) : await freePort();
  const storeDir = env.GATEWAY_STORE__DIR ?? mkdtempSync(join(tmpdir(), 'gw-store-'));
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/tmp',
      HOST: '127.0.0.1',
      // Users' data stays out of the repo: a private collections folder unless the test names one.
      GATEWAY_COLLECTIONS__DIR: mkdtempSync(join(tmpdir(), 'gw-collections-')),
      GATEWAY_FEEDBACK__DIR: mkdtempSync(join(tmpdir(), 'gw-feedback-')),
      ...env,
      PORT: String(port),
      GATEWAY_STORE__DIR: storeDir,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    port,
    storeDir,
    child,
    output: () => out,
    exited,
    async waitReady(timeoutMs = 60_000) {
      const end = Date.now() + timeoutMs;
      let exitedEarly: number | string | undefined;
      void exited.then((c) => (exitedEarly = c));
      while (Date.now() < end) {
        if (exitedEarly !== undefined) throw new Error(`gateway exited with ${exitedEarly} before ready:\n${out}`);
        const ok = await fetch(`${url}/health/ready`).then((r) => r.status === 200, () => false);
        if (ok) return;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`gateway not ready after ${timeoutMs} ms:\n${out}`);
    },
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}
