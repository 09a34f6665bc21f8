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
import { BURST_GAP_MS, steadyWindow } from './steady-window.ts';

export interface Job {
  opts: autocannon.Options;
  /** The server process to measure. */
  pid?: number;
  /**
   * Closed loop at steady state: keep `connections` requests in flight, skip the first `skip` answers (the
   * queue filling), then measure from the end of one burst of answers to the end of another at least `count`
   * answers later, and stop. For models whose batches take hundreds of ms, where a fixed window cuts off the
   * batches in progress and a fixed number of requests ends in a tail with one worker idle.
   */
  steady?: { skip: number; count: number };
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

function cpuDelta(pid: number, before: Snapshot): ServerCpu {
  return cpuBetween(before, snapshot(pid), pid);
}

/** The server's CPU between two snapshots of it (the main thread is the one whose id is the process id). */
function cpuBetween(before: Snapshot, after: Snapshot, pid: number): ServerCpu {
  const deltas = [...after.threads].map(([tid, ns]) => [tid, (ns - (before.threads.get(tid) ?? 0)) / 1e9] as const);
  const main = deltas.find(([tid]) => tid === pid)?.[1] ?? 0;
  return {
    cpu_s: Number((after.total - before.total).toFixed(2)),
    main_cpu_s: Number(main.toFixed(3)),
    threads_cpu_s: deltas.filter(([tid]) => tid !== pid).map(([, s]) => Number(s.toFixed(3))).filter((s) => s >= 0.005).sort((a, b) => b - a),
    window_s: Number(((after.t - before.t) / 1000).toFixed(3)),
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
  if (job.steady) return steadyJob(opts, job.steady, job.pid);
  const latencies: number[] = [];
  let non2xx = 0;
  const before = job.pid ? snapshot(job.pid) : undefined;
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(opts, (err, res) => (err ? reject(err) : resolve(res)));
    instance.on('response', (_client, status, _bytes, ms) => {
      if (status >= 200 && status < 300) latencies.push(ms);
      else non2xx++;
    });
  });
  const server = before && job.pid ? cpuDelta(job.pid, before) : undefined;
  return summary(latencies, { errors: result.errors, timeouts: result.timeouts, non2xx, seconds: result.duration }, server);
}

type Snapshot = { total: number; threads: Map<number, number>; t: number };
const snapshot = (pid: number): Snapshot => ({ total: processCpuS(pid), threads: threadCpuNs(pid), t: performance.now() });

function summary(latencies: number[], counts: { errors: number; timeouts: number; non2xx: number; seconds: number }, server?: ServerCpu): Record<string, unknown> {
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => (latencies.length ? Number(latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))].toFixed(1)) : NaN);
  return { requests: latencies.length, ...counts, p50: pct(50), p95: pct(95), p99: pct(99), ...(server ? { server } : {}) };
}

/**
 * The steady-state window of a closed loop (Job.steady): every 2xx answer's time, latency and (with a pid) the
 * server's CPU at that moment; the window runs from the last answer of a burst at or after `skip` to the last
 * answer of a burst at or after `skip + count`, so each end falls between batches, never inside one. Requests
 * still in flight when it stops are abandoned (the gateway drops queued work of a client that went away; the
 * bench waits for the server to go idle before its next point).
 */
async function steadyJob(opts: autocannon.Options, steady: { skip: number; count: number }, pid?: number): Promise<Record<string, unknown>> {
  const answers: { t: number; ms: number; cpu?: Snapshot }[] = [];
  let non2xx = 0;
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    // Bounded by `duration` as a safety net; it normally stops itself.
    const instance = autocannon({ ...opts, amount: undefined }, (err, res) => (err ? reject(err) : resolve(res)));
    let stopTimer: NodeJS.Timeout | undefined;
    instance.on('response', (_client, status, _bytes, ms) => {
      if (status < 200 || status >= 300) return void non2xx++;
      answers.push({ t: performance.now(), ms, cpu: pid ? snapshot(pid) : undefined });
      if (answers.length >= steady.skip + steady.count) {
        // Stop once this burst is over (no answer for two gaps) and the window holds `count` answers.
        clearTimeout(stopTimer);
        stopTimer = setTimeout(() => {
          const w = steadyWindow(answers.map((x) => x.t), steady.skip, steady.count);
          if (w && w[1] - w[0] >= steady.count) instance.stop();
        }, 2 * BURST_GAP_MS);
      }
    });
  });
  const w = steadyWindow(answers.map((x) => x.t), steady.skip, steady.count);
  if (!w) return { error: `steady window: ${answers.length} answers, fewer than skip + count (${steady.skip} + ${steady.count})` };
  const [s, e] = w;
  const window = answers.slice(s + 1, e + 1);
  const a = answers[s].cpu;
  const b = answers[e].cpu;
  const server = a && b && pid ? cpuBetween(a, b, pid) : undefined;
  return { ...summary(window.map((w) => w.ms), { errors: result.errors, timeouts: result.timeouts, non2xx, seconds: Number(((answers[e].t - answers[s].t) / 1000).toFixed(3)) }, server), steady_window: [s + 1, e + 1] };
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
