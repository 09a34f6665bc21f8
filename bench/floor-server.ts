/**
 * The bench's server processes: Fastify alone (bench/fastify-floor.ts), the framework's floor that
 * bench/request-cost.ts and the quick bench's cache-hit point are compared with, and the helpers to wait for
 * and stop a server process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { freePort } from '../test/helpers/gateway-process.ts';

export interface Server {
  label: string;
  url: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

export async function waitUp(url: string, path: string, child: ChildProcess, what: string): Promise<void> {
  for (let i = 0; i < 1200; i++) {
    if (child.exitCode !== null) throw new Error(`${what} exited with ${child.exitCode}`);
    if (await fetch(`${url}${path}`).then((r) => r.status === 200, () => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} not ready in 120 s`);
}

export function stopper(child: ChildProcess): () => Promise<void> {
  return () =>
    new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 20_000).unref();
    });
}

/**
 * Fastify alone answering `body` (an embeddings answer's bytes) to a validated POST /v1/embeddings; with
 * `headers`, sending those response headers too.
 */
export async function fastifyFloor(body: string, headers?: Record<string, string>): Promise<Server> {
  const port = await freePort();
  const env = { PATH: process.env.PATH ?? '', FLOOR_BODY: body, ...(headers ? { FLOOR_HEADERS: JSON.stringify(headers) } : {}) };
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/fastify-floor.ts', String(port)], { env, stdio: ['ignore', 'ignore', 'inherit'] });
  const url = `http://127.0.0.1:${port}`;
  await waitUp(url, '/ready', child, 'fastify floor');
  return { label: headers ? "fastify alone + the gateway's headers" : 'fastify alone', url, child, stop: stopper(child) };
}

