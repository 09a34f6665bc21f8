/**
 * The bench's load generator, in its own process (the bench starts it at nice 10, so on two cores it does
 * not take the CPU a remote client would not). Closed loop: `connections` requests in flight. Open loop:
 * `overallRate` requests/s spread over the connections. Prints { requests, errors, timeouts, non2xx, seconds,
 * p50, p95, p99 } as JSON; the percentiles are exact, from every response time (autocannon's own summary has
 * no p95). With a server pid, it also reads that process's CPU (all threads, /proc) just before the first
 * request and just after the last answer, so the server's CPU per item never includes this process's start-up.
 *
 * Two ways to run it: one job as JSON in argv (prints one result and exits), or no argv: one job per line on
 * stdin, one result line each on stdout, until stdin closes (bench/load-client.ts keeps one such process, so
 * a point does not pay a node start).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import autocannon from 'autocannon';

export interface Job {
  opts: autocannon.Options;
  /** The server process to measure. */
  pid?: number;
}

/** CPU seconds of a process (all threads, including exited ones), from /proc/<pid>/stat. */
function processCpuS(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(stat[11]) + Number(stat[12])) / 100;
}

/** Nanoseconds on CPU of each live thread (/proc/<pid>/task/<tid>/schedstat), by thread id. */
function threadCpuNs(pid: number): Map<number, number> {
  const out = new Map<number, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      out.set(Number(tid), Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]));
    } catch {
      // the thread ended in between
    }
  }
  return out;
}

export interface ServerCpu {
  /** CPU seconds of the whole process over the window. */
  cpu_s: number;
  /** Of which the main thread (the event loop: HTTP, JSON, routing, tokenizing short texts). */
  main_cpu_s: number;
  /** The other threads' CPU seconds, busiest first (inference workers, the tokenizer pool, GC helpers). */
  threads_cpu_s: number[];
  /** Seconds between the two readings. */
  window_s: number;
}

function cpuDelta(pid: number, before: { total: number; threads: Map<number, number>; t: number }): ServerCpu {
  const threads = threadCpuNs(pid);
  const deltas = [...threads].map(([tid, ns]) => [tid, (ns - (before.threads.get(tid) ?? 0)) / 1e9] as const);
  const main = deltas.find(([tid]) => tid === pid)?.[1] ?? 0;
  return {
    cpu_s: Number((processCpuS(pid) - before.total).toFixed(2)),
    main_cpu_s: Number(main.toFixed(3)),
    threads_cpu_s: deltas.filter(([tid]) => tid !== pid).map(([, s]) => Number(s.toFixed(3))).filter((s) => s >= 0.005).sort((a, b) => b - a),
    window_s: Number(((performance.now() - before.t) / 1000).toFixed(3)),
  };
}

export async function runJob(job: Job): Promise<Record<string, unknown>> {
  const opts = { ...job.opts };
  // autocannon's own idReplacement puts a 24-character hyperid (e.g. "4io6NKvURjKpJeHyCKVu/w/0") in place of
  // [<id>]: some 15-20 extra word pieces per text, which the ceiling (given `n`) never sees. A counter keeps
  // every request unique with the same text the ceiling runs.
  if (opts.idReplacement && typeof opts.body === 'string') {
    const template = opts.body;
    let n = 0;
    delete opts.idReplacement;
    delete opts.body;
    opts.requests = [{ setupRequest: (req) => ({ ...req, body: template.replaceAll('[<id>]', String(n++)) }) }];
  }
  const latencies: number[] = [];
  let non2xx = 0;
  const before = job.pid ? { total: processCpuS(job.pid), threads: threadCpuNs(job.pid), t: performance.now() } : undefined;
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(opts, (err, res) => (err ? reject(err) : resolve(res)));
    instance.on('response', (_client, status, _bytes, ms) => {
      if (status >= 200 && status < 300) latencies.push(ms);
      else non2xx++;
    });
  });
  const server = before && job.pid ? cpuDelta(job.pid, before) : undefined;
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => (latencies.length ? Number(latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))].toFixed(1)) : NaN);
  return { requests: latencies.length, errors: result.errors, timeouts: result.timeouts, non2xx, seconds: result.duration, p50: pct(50), p95: pct(95), p99: pct(99), ...(server ? { server } : {}) };
}

if (process.argv[2]) {
  process.stdout.write(JSON.stringify(await runJob({ opts: JSON.parse(process.argv[2]) as autocannon.Options })));
} else {
  for await (const line of createInterface({ input: process.stdin })) {
    if (!line.trim()) continue;
    const out = await runJob(JSON.parse(line) as Job).catch((err: Error) => ({ error: err.message }));
    process.stdout.write(`${JSON.stringify(out)}\n`);
  }
}
