/**
 * Helpers shared by test/deploy and test/e2e: free ports, a real nginx rendered from nginx/render.sh,
 * plain HTTP requests (no automatic decompression, so headers can be checked as sent).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, chmodSync, chownSync, readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export interface HttpAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  text: string;
  json<T = unknown>(): T;
}

export function request(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string | Buffer; timeoutMs?: number } = {},
): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: opts.method ?? 'GET', headers: opts.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        const text = body.toString('utf8');
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text, json: <T>() => JSON.parse(text) as T });
      });
    });
    req.setTimeout(opts.timeoutMs ?? 30_000, () => req.destroy(new Error(`timeout: ${opts.method ?? 'GET'} ${url}`)));
    req.on('error', reject);
    req.end(opts.body);
  });
}

export function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<HttpAnswer> {
  return request(url, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json', ...headers } });
}

export async function waitFor(what: string, probe: () => Promise<boolean>, timeoutMs: number, proc?: ChildProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc && proc.exitCode !== null) throw new Error(`${what}: process exited with code ${proc.exitCode}`);
    try {
      if (await probe()) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`${what}: not ready after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

/** Waits for a child to exit, sending SIGKILL if it has not after `graceMs`. */
export async function stopProcess(proc: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 10_000): Promise<number | null> {
  if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  proc.kill(signal);
  const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
  try {
    return await exited;
  } finally {
    clearTimeout(timer);
  }
}

export function hasBinary(file: string): boolean {
  return existsSync(file);
}

export const NGINX_BIN = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((f) => existsSync(f)) ?? 'nginx';

export interface NginxHandle {
  port: number;
  url: string;
  prefix: string;
  proc: ChildProcess;
  errorLog(): string;
  accessLog(): string;
  stop(): Promise<void>;
}

/** Settings passed to nginx/render.sh (NGINX_* without the prefix), e.g. { RATE: '5r/s' }. */
export type NginxSettings = Partial<Record<'RATE' | 'BURST' | 'BODY_MAX' | 'TRIES' | 'CONNECT_TIMEOUT' | 'READ_TIMEOUT' | 'MAX_FAILS' | 'FAIL_TIMEOUT' | 'WORKERS' | 'WEB_ROOT', string>>;

function nginxEnv(prefix: string, port: number, upstreams: string[], settings: NginxSettings): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin`,
    NGINX_PREFIX: prefix,
    NGINX_LISTEN: `127.0.0.1:${port}`,
    NGINX_UPSTREAMS: upstreams.join(' '),
    NGINX_WORKERS: '1',
  };
  for (const [k, v] of Object.entries(settings)) env[`NGINX_${k}`] = v;
  return env;
}

/** Renders the shipped template and runs `nginx -t` on it; returns nginx's output. */
export function nginxConfigTest(upstreams: string[], settings: NginxSettings = {}): Promise<{ code: number | null; output: string; prefix: string }> {
  const prefix = mkdtempSync(path.join(os.tmpdir(), 'gw-nginx-t-'));
  chmodSync(prefix, 0o755);
  return new Promise((resolve, reject) => {
    const proc = spawn('sh', [path.join(ROOT, 'nginx/run.sh'), '-t'], { env: nginxEnv(prefix, 8080, upstreams, settings) });
    let output = '';
    proc.stdout.on('data', (c: Buffer) => (output += c.toString()));
    proc.stderr.on('data', (c: Buffer) => (output += c.toString()));
    proc.on('error', reject);
    proc.on('exit', (code) => resolve({ code, output, prefix }));
  });
}

/** Starts the shipped nginx config in the foreground in front of `upstreams` ("127.0.0.1:port"). */
export async function startNginx(upstreams: string[], settings: NginxSettings = {}, opts: { uid?: number; gid?: number } = {}): Promise<NginxHandle> {
  const prefix = mkdtempSync(path.join(os.tmpdir(), 'gw-nginx-'));
  // Started as root, nginx's workers drop to "nobody" and must reach the temp folders under the prefix.
  chmodSync(prefix, 0o755);
  if (opts.uid !== undefined) chownSync(prefix, opts.uid, opts.gid ?? opts.uid);
  const port = await freePort();
  const proc = spawn('sh', [path.join(ROOT, 'nginx/run.sh')], {
    env: nginxEnv(prefix, port, upstreams, settings),
    stdio: ['ignore', 'pipe', 'pipe'],
    uid: opts.uid,
    gid: opts.gid,
  });
  let output = '';
  proc.stdout?.on('data', (c: Buffer) => (output += c.toString()));
  proc.stderr?.on('data', (c: Buffer) => (output += c.toString()));
  const url = `http://127.0.0.1:${port}`;
  const read = (f: string) => (existsSync(path.join(prefix, 'logs', f)) ? readFileSync(path.join(prefix, 'logs', f), 'utf8') : '');
  try {
    await waitFor('nginx', async () => (await request(`${url}/nginx-health`, { timeoutMs: 1000 })).status === 200, 15_000, proc);
  } catch (err) {
    proc.kill('SIGKILL');
    throw new Error(`${(err as Error).message}\n${output}\n${read('error.log')}`);
  }
  return {
    port,
    url,
    prefix,
    proc,
    errorLog: () => read('error.log'),
    accessLog: () => read('access.log'),
    // SIGQUIT: graceful shutdown of the master and its workers.
    stop: async () => void (await stopProcess(proc, 'SIGQUIT', 5_000)),
  };
}

export const CHROMIUM_BIN = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/**
 * Debian's Chromium, headless, no background traffic (the network is closed). Playwright gives each
 * launch a fresh temporary profile (it refuses a --user-data-dir argument) and deletes it on close.
 */
export async function launchChromium() {
  const { chromium } = await import('playwright-core');
  if (!existsSync(CHROMIUM_BIN)) throw new Error(`Chromium not found at ${CHROMIUM_BIN} (CI: apt-get install chromium)`);
  const browser = await chromium.launch({
    executablePath: CHROMIUM_BIN,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--disable-background-networking',
      '--disable-component-update',
      '--no-first-run',
      '--disable-sync',
    ],
  });
  return browser;
}

export const TEST_OUTPUT = path.join(ROOT, 'test-output');
