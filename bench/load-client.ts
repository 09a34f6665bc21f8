/**
 * The bench's side of the load generator: one bench/load.ts process (nice 10), kept for the whole run and
 * given one job at a time, so no point pays a node start; the CPU seconds and RSS of a server process, from
 * /proc (all its threads); and CPU affinity (taskset) for the pinned configuration.
 */
import { spawn, spawnSync, type ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { readFileSync } from 'node:fs';
import { setPriority } from 'node:os';
import { createInterface } from 'node:readline';
import type { ServerCpu } from './load.ts';

export type { ServerCpu };

export function procStat(pid: number): { cpuS: number; rssMb: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  const ticks = Number(stat[11]) + Number(stat[12]);
  const rss = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
  return { cpuS: ticks / 100, rssMb: Math.round(rss) };
}

export interface LoadResult {
  rps: number;
  /** 2xx answers counted in the window. */
  requests: number;
  seconds: number;
  p50: number;
  p95: number;
  p99: number;
  errors: number;
  non2xx: number;
  /** The server's CPU over the window, when a pid was given. */
  server?: ServerCpu;
}

let child: ChildProcessByStdio<Writable, Readable, null> | undefined;
let pending: ((line: string) => void) | undefined;
let affinity: string | undefined;

function generator(): ChildProcessByStdio<Writable, Readable, null> {
  if (child && child.exitCode === null && child.signalCode === null) return child;
  const c = spawn(process.execPath, ['--import', 'tsx', 'bench/load.ts'], { stdio: ['pipe', 'pipe', 'inherit'] });
  try {
    setPriority(c.pid!, 10);
  } catch {
    // not permitted: measure at equal priority
  }
  if (affinity) pin(c.pid!, affinity);
  createInterface({ input: c.stdout }).on('line', (line) => {
    const p = pending;
    pending = undefined;
    p?.(line);
  });
  c.once('exit', () => {
    if (child === c) child = undefined;
    const p = pending;
    pending = undefined;
    p?.(JSON.stringify({ error: 'load generator exited' }));
  });
  // Closing stdin ends it; it never keeps the bench alive on its own.
  c.unref();
  (c.stdout as unknown as { unref(): void }).unref();
  (c.stdin as unknown as { unref(): void }).unref();
  child = c;
  return c;
}

/** Pins the load generator (now and any restart) to these CPUs (`taskset -c` syntax), or unpins it (undefined). */
export function pinLoadGenerator(cpus: string | undefined): void {
  affinity = cpus;
  if (child?.pid) pin(child.pid, cpus ?? allCpus());
}

export const allCpus = () => `0-${Math.max(0, (readFileSync('/proc/cpuinfo', 'utf8').match(/^processor/gm)?.length ?? 1) - 1)}`;

/** Every thread of a process onto these CPUs (`taskset -a -p -c`); threads it starts later inherit it. */
export function pin(pid: number, cpus: string): void {
  const r = spawnSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`taskset -a -p -c ${cpus} ${pid}: ${r.stderr || r.error?.message}`);
}

export function stopLoadGenerator(): void {
  child?.stdin.end();
  child = undefined;
}

/**
 * One load run, closed loop (`connections`) or open loop (`rate` requests/s). `body` is one body ([<id>]
 * replaced by a unique id per request) or an array of bodies each connection cycles through. With `pid`, the
 * result carries that server's CPU over exactly the load window. `steady`: a closed loop measured at steady
 * state between bursts of answers (bench/load.ts Job.steady) instead of over a fixed time; `seconds` then only
 * bounds it.
 */
export function load(url: string, path: string, body: unknown, connections: number, seconds: number, rate?: number, pid?: number, steady?: { skip: number; count: number }): Promise<LoadResult> {
  const bodies = Array.isArray(body) ? { requests: body.map((b) => ({ method: 'POST' as const, body: JSON.stringify(b) })) } : { body: JSON.stringify(body), idReplacement: true };
  // autocannon ends a run at its first sample tick after `duration`: with its default 1 s ticks a 1.5 s point
  // ran 2 s and a 0.5 s warm-up 1 s. 100 ms ticks end it within 0.1 s (its per-tick samples are not used here).
  const opts = { url: `${url}${path}`, method: 'POST', headers: { 'content-type': 'application/json' }, ...bodies, connections, duration: seconds, sampleInt: 100, timeout: rate ? 10 : 60, ...(rate ? { overallRate: rate } : {}) };
  return new Promise((resolve, reject) => {
    if (pending) return reject(new Error('one load run at a time'));
    const c = generator();
    // Bounded: the run takes `seconds`, plus draining in-flight requests.
    const timer = setTimeout(() => c.kill('SIGKILL'), (seconds + 90) * 1000);
    pending = (line) => {
      clearTimeout(timer);
      const r = JSON.parse(line) as { error?: string; requests: number; seconds: number; p50: number; p95: number; p99: number; errors: number; timeouts: number; non2xx: number; server?: ServerCpu };
      if (r.error) return reject(new Error(`load generator: ${r.error}`));
      resolve({ rps: r.requests / r.seconds, requests: r.requests, seconds: r.seconds, p50: r.p50, p95: r.p95, p99: r.p99, errors: r.errors + r.timeouts, non2xx: r.non2xx, server: r.server });
    };
    c.stdin.write(`${JSON.stringify({ opts, pid, steady })}\n`);
  });
}
