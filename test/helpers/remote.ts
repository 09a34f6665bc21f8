/**
 * Helpers for the remote-backend tests: the task requests every route takes, a bounded concurrent runner,
 * numeric deep comparison, and reading a histogram out of Prometheus text.
 */
import { DEMO_MODELS, demoZip } from './app.ts';

export interface RouteCall {
  path: string;
  body: unknown;
}

const SUBJECTS = ['nginx', 'curl', 'vim', 'emacs', 'python3', 'git', 'openssh', 'postgresql', 'tmux', 'rsync', 'gimp', 'inkscape', 'ffmpeg', 'sqlite3', 'htop', 'wget'];
const VERBS = ['serves web pages', 'downloads files', 'edits text', 'tracks source code', 'logs in to remote machines', 'stores relational data', 'splits a terminal', 'copies folders', 'paints images', 'draws vector graphics', 'converts video', 'shows running processes'];

/** A sentence that differs for every i (so no cache or duplicate folding hides a call). */
export function sentence(i: number): string {
  return `The ${SUBJECTS[i % SUBJECTS.length]} package ${VERBS[(i * 7) % VERBS.length]} for user ${i} on host number ${(i * 31) % 97}.`;
}

/** `n` requests over every task route of the demo models, in a fixed order. */
export function taskCalls(n: number): RouteCall[] {
  const calls: RouteCall[] = [];
  for (let i = 0; i < n; i++) {
    const a = sentence(i);
    const b = sentence(i + 1000);
    const context = `${a} ${b} The ${SUBJECTS[i % SUBJECTS.length]} package is maintained by the Debian team number ${i}. ${sentence(i + 2000)}`;
    const question = `Who maintains the ${SUBJECTS[i % SUBJECTS.length]} package?`;
    switch (i % 12) {
      case 0:
        calls.push({ path: '/v1/qa', body: { question, context, top_k: 2 } });
        break;
      case 1:
        calls.push({ path: '/v1/qa/batch', body: { items: [{ question, context }, { question: `What does ${SUBJECTS[(i + 3) % SUBJECTS.length]} do?`, context: b }] } });
        break;
      case 2:
        calls.push({ path: '/v1/similarity', body: { sentence_1: a, sentence_2: b } });
        break;
      case 3:
        calls.push({ path: '/v1/similarity/batch', body: { pairs: [{ sentence_1: a, sentence_2: b }, { sentence_1: b, sentence_2: sentence(i + 3000) }] } });
        break;
      case 4:
        // Every other one on retrieve-demo (not its task's default), so every demo model sees traffic.
        calls.push({ path: '/v1/embeddings', body: { input: [a, b, sentence(i + 4000)], encoding_format: 'float', ...(i % 24 === 4 ? { model: 'retrieve-demo' } : {}) } });
        break;
      case 5:
        calls.push({ path: '/v1/essays/score', body: { essay: `${a} ${b} ${sentence(i + 5000)} ${sentence(i + 6000)}` } });
        break;
      case 6:
        calls.push({ path: '/v1/essays/score', body: { essays: [`${a} ${b}`, `${b} ${sentence(i + 7000)}`], model: 'essay-demo-bands' } });
        break;
      case 7:
        calls.push({ path: '/v1/classify', body: { inputs: [a, b], top_k: 3 } });
        break;
      case 8:
        calls.push({ path: '/models/qa-demo', body: { inputs: { question, context } } });
        break;
      case 9:
        calls.push({ path: '/models/sts-demo', body: { inputs: { source_sentence: a, sentences: [b, sentence(i + 8000)] } } });
        break;
      case 10:
        calls.push({ path: '/embed', body: { inputs: [a, b] } });
        break;
      default:
        if (i % 24 === 11) calls.push({ path: '/predict', body: { inputs: a } });
        else calls.push({ path: '/rerank', body: { query: question, texts: [a, context, b] } }); // TEI's: no per-response id to differ
    }
  }
  return calls;
}

export interface Answer {
  status: number;
  body: unknown;
  ms: number;
  retryAfter: string | null;
}

export async function post(base: string, call: RouteCall, timeoutMs = 30_000): Promise<Answer> {
  const t0 = performance.now();
  const res = await fetch(`${base}${call.path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(call.body), signal: AbortSignal.timeout(timeoutMs) });
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: res.status, body, ms: performance.now() - t0, retryAfter: res.headers.get('retry-after') };
}

/** Runs `jobs` with at most `concurrency` in flight; results in job order. */
export async function runConcurrently<T>(jobs: (() => Promise<T>)[], concurrency: number): Promise<T[]> {
  const out = new Array<T>(jobs.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, jobs.length) }, async () => {
      while (next < jobs.length) {
        const i = next++;
        out[i] = await jobs[i]();
      }
    }),
  );
  return out;
}

/** Where two JSON values differ (numbers within `tol`), or undefined when they agree. */
export function difference(a: unknown, b: unknown, tol: number, path = '$'): string | undefined {
  if (typeof a === 'number' && typeof b === 'number') return Math.abs(a - b) <= tol ? undefined : `${path}: ${a} vs ${b}`;
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) return `${path}: ${a.length} vs ${b.length} items`;
    for (let i = 0; i < a.length; i++) {
      const d = difference(a[i], b[i], tol, `${path}[${i}]`);
      if (d) return d;
    }
    return undefined;
  }
  if (a && b && typeof a === 'object' && typeof b === 'object') {
    const ka = Object.keys(a).sort();
    const kb = Object.keys(b).sort();
    if (ka.join() !== kb.join()) return `${path}: keys ${ka.join(',')} vs ${kb.join(',')}`;
    for (const k of ka) {
      const d = difference((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], tol, `${path}.${k}`);
      if (d) return d;
    }
    return undefined;
  }
  return a === b ? undefined : `${path}: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`;
}

/** Count and sum of a Prometheus histogram per label value (`gateway_batch_size{model=...}`). */
export function histogram(text: string, name: string, label: string): Record<string, { count: number; sum: number }> {
  const out: Record<string, { count: number; sum: number }> = {};
  const re = new RegExp(`^${name}_(count|sum)\\{${label}="([^"]+)"\\} ([0-9.e+-]+)$`, 'gm');
  for (const m of text.matchAll(re)) {
    const e = (out[m[2]] ??= { count: 0, sum: 0 });
    e[m[1] as 'count' | 'sum'] = Number(m[3]);
  }
  return out;
}

/** The demo models' config entries, each with its graph on the v2 server at `url`. */
export function remoteEntries(url: string, backend: Record<string, unknown> = {}): Record<string, unknown>[] {
  return DEMO_MODELS.map((name) => ({ name, source: demoZip(name), default: name !== 'essay-demo-bands', backend: { kind: 'kserve-v2', url, ...backend } }));
}
