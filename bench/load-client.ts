/**
 * The bench's side of the load generator: start bench/load.ts in its own process (nice 10) and read its result;
 * and the CPU seconds and RSS of a server process, from /proc (all its threads).
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { setPriority } from 'node:os';

export function procStat(pid: number): { cpuS: number; rssMb: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  const ticks = Number(stat[11]) + Number(stat[12]);
  const rss = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
  return { cpuS: ticks / 100, rssMb: Math.round(rss) };
}

export interface LoadResult {
  rps: number;
  p50: number;
  p95: number;
  p99: number;
  errors: number;
  non2xx: number;
}

/**
 * bench/load.ts in its own process at nice 10; closed loop (`connections`) or open loop (`rate` requests/s).
 * `body` is one body ([<id>] replaced by a unique id per request) or an array of bodies each connection cycles through.
 */
export function load(url: string, path: string, body: unknown, connections: number, seconds: number, rate?: number): Promise<LoadResult> {
  const bodies = Array.isArray(body) ? { requests: body.map((b) => ({ method: 'POST' as const, body: JSON.stringify(b) })) } : { body: JSON.stringify(body), idReplacement: true };
  const opts = { url: `${url}${path}`, method: 'POST', headers: { 'content-type': 'application/json' }, ...bodies, connections, duration: seconds, timeout: rate ? 10 : 60, ...(rate ? { overallRate: rate } : {}) };
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'bench/load.ts', JSON.stringify(opts)], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      setPriority(child.pid!, 10);
    } catch {
      // not permitted: measure at equal priority
    }
    // Bounded: the run takes `seconds`, plus start-up and draining in-flight requests.
    const timer = setTimeout(() => child.kill('SIGKILL'), (seconds + 90) * 1000);
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`load generator exited ${code}`));
      const r = JSON.parse(out) as { requests: number; seconds: number; p50: number; p95: number; p99: number; errors: number; timeouts: number; non2xx: number };
      resolve({ rps: r.requests / r.seconds, p50: r.p50, p95: r.p95, p99: r.p99, errors: r.errors + r.timeouts, non2xx: r.non2xx });
    });
  });
}

