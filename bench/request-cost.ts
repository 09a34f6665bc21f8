/**
 * `npm run bench:request-cost`: what one request costs the server, in CPU, on the paths where HTTP and JSON are
 * most of the work: a cache hit (embeddings and QA-300, 64 repeated bodies, caches on), the embeddings and QA-300 miss
 * paths (unique short sentences or questions, caches off: `miss-embeddings`, `miss-qa`), and Fastify alone (bench/fastify-floor.ts: a validated POST answered
 * with the same bytes as an embeddings hit) as the framework's floor, and that floor sending the gateway's response
 * headers too (`fastify-floor-headers`: what the ~19 headers cost). Concurrency 32, the server's CPU (all
 * threads, and the main thread apart) over each load window, per request.
 *
 *   npm run bench:request-cost -- [--against <git ref>] [--rounds 5] [--seconds 3] [--cpu-prof DIR] [--only hit-embeddings,...]
 *
 * `--against main` also checks out that ref into a temporary git worktree (node_modules linked from here) and
 * boots its gateway beside this one: the rounds alternate A, B, A, B on every path, so both builds see the same
 * machine state, and the medians are compared. `--cpu-prof DIR` writes a V8 CPU profile of this tree's gateway
 * (node --cpu-prof) and prints its self time by function and by package. Writes bench/results/request-cost.json.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { demoZip } from '../test/helpers/app.ts';
import { freePort } from '../test/helpers/gateway-process.ts';
import { load, stopLoadGenerator } from './load-client.ts';
import { fastifyFloor, stopper, waitUp, type Server } from './floor-server.ts';
import { QA_300 } from './inputs.ts';

const { values: args } = parseArgs({ options: { against: { type: 'string' }, rounds: { type: 'string', default: '5' }, seconds: { type: 'string', default: '3' }, 'cpu-prof': { type: 'string' }, only: { type: 'string' }, connections: { type: 'string', default: '32' } } });
const ROUNDS = Number(args.rounds);
const SECONDS = Number(args.seconds);
const CONNECTIONS = Number(args.connections);

/** A gateway from a source tree (this one, or a ref checked out beside it), as bench/run.ts boots it. */
async function gateway(label: string, cwd: string, env: Record<string, string>, nodeArgs: string[] = []): Promise<Server> {
  const port = await freePort();
  const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', 'src/server.ts'], {
    cwd,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/tmp',
      HOST: '127.0.0.1',
      PORT: String(port),
      GATEWAY_STORE__DIR: mkdtempSync(join(tmpdir(), 'gw-store-')),
      GATEWAY_COLLECTIONS__DIR: mkdtempSync(join(tmpdir(), 'gw-collections-')),
      GATEWAY_FEEDBACK__DIR: mkdtempSync(join(tmpdir(), 'gw-feedback-')),
      GATEWAY_SERVER__LOG_LEVEL: 'warn',
      GATEWAY_MODELS: JSON.stringify(['sts-demo', 'qa-demo'].map((name) => ({ name, source: demoZip(name) }))),
      ...env,
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  await waitUp(url, '/health/ready', child, `gateway ${label}`);
  return { label, url, child, stop: stopper(child) };
}

const post = async (url: string, body: unknown) => {
  const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(20_000) });
  return { status: r.status, text: await r.text(), headers: Object.fromEntries(r.headers) };
};

const sentences = Array.from({ length: 64 }, (_, i) => ({ input: `sentence ${i} about a package` }));
const questions = Array.from({ length: 64 }, (_, i) => ({ question: `Who maintains curl ${i}?`, context: QA_300 }));

interface Path {
  name: string;
  route: string;
  body: unknown;
  /** Fill the cache first with one pass over the bodies. */
  fill?: boolean;
  /** Which servers answer it: the gateways with caches on, off, or the Fastify floor. */
  on: 'cached' | 'uncached' | 'floor' | 'floorHeaders';
}
const PATHS: Path[] = [
  { name: 'hit-embeddings', route: '/v1/embeddings', body: sentences, fill: true, on: 'cached' },
  { name: 'hit-qa', route: '/v1/qa', body: questions, fill: true, on: 'cached' },
  { name: 'miss-embeddings', route: '/v1/embeddings', body: { input: 'sentence [<id>] about a package' }, on: 'uncached' },
  { name: 'miss-qa', route: '/v1/qa', body: { question: 'Who maintains curl [<id>]?', context: QA_300 }, on: 'uncached' },
  { name: 'fastify-floor', route: '/v1/embeddings', body: sentences, on: 'floor' },
  // The same with the ~20 headers a gateway hit sends (security, request id, timings, model version, cache).
  { name: 'fastify-floor-headers', route: '/v1/embeddings', body: sentences, on: 'floorHeaders' },
];

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const round = (x: number, d: number) => Number(x.toFixed(d));

/** Self time of a V8 .cpuprofile by function and by package (node_modules/<pkg>, node:internal, src/...). */
function summarizeProfile(file: string): { total_ms: number; by_package: [string, number][]; by_function: [string, number][] } {
  const p = JSON.parse(readFileSync(file, 'utf8')) as { nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[]; samples: number[]; timeDeltas: number[] };
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  p.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (p.timeDeltas[i] ?? 0)));
  const fn = new Map<string, number>();
  const pkg = new Map<string, number>();
  let total = 0;
  for (const [id, us] of self) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    if (functionName === '(idle)') continue;
    total += us;
    const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
    const where = m ? m[1] : url.startsWith('node:') ? url.replace(/^node:(internal\/)?/, 'node:').split('/').slice(0, 2).join('/') : /\/src\//.test(url) ? `src/${url.split('/src/')[1]}` : url || functionName;
    pkg.set(where, (pkg.get(where) ?? 0) + us);
    const key = `${functionName || '(anonymous)'} ${m ? m[1] + ':' + url.split(m[1])[1] : url.replace(/^.*\/(src|bench)\//, '$1/')}:${lineNumber + 1}`;
    fn.set(key, (fn.get(key) ?? 0) + us);
  }
  const top = (m: Map<string, number>, n: number) => [...m].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, v]) => [k, round(v / 1000, 1)] as [string, number]);
  return { total_ms: round(total / 1000, 1), by_package: top(pkg, 25), by_function: top(fn, 40) };
}

async function main() {
  const only = args.only?.split(',');
  const paths = PATHS.filter((p) => !only || only.includes(p.name));
  const here = resolve('.');
  let base: string | undefined;
  const servers: Server[] = [];
  const profDir = args['cpu-prof'] ? resolve(args['cpu-prof']) : undefined;
  try {
    if (args.against) {
      base = mkdtempSync(join(tmpdir(), 'request-cost-base-'));
      rmSync(base, { recursive: true });
      const r = spawnSync('git', ['worktree', 'add', '--detach', base, args.against], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`git worktree add ${args.against}: ${r.stderr}`);
      symlinkSync(join(here, 'node_modules'), join(base, 'node_modules'));
    }
    const trees = [{ label: 'this tree', dir: here }, ...(base ? [{ label: args.against!, dir: base }] : [])];
    const boot: Record<string, Server[]> = { cached: [], uncached: [], floor: [], floorHeaders: [] };
    for (const t of trees) {
      const prof = t.dir === here && profDir ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : [];
      if (paths.some((p) => p.on === 'cached')) boot.cached.push(await gateway(`${t.label}, caches on`, t.dir, {}, prof));
      if (paths.some((p) => p.on === 'uncached')) boot.uncached.push(await gateway(`${t.label}, caches off`, t.dir, { GATEWAY_CACHE__EMBEDDING_BYTES: '0', GATEWAY_CACHE__RESULT_BYTES: '0' }, prof));
    }
    if (paths.some((p) => p.on === 'floor' || p.on === 'floorHeaders')) {
      // The floor answers with the bytes (and, for floorHeaders, the headers) the gateway answers the first embeddings hit with.
      const answer = await post(`${(boot.cached[0] ?? boot.uncached[0]).url}/v1/embeddings`, sentences[0]);
      if (paths.some((p) => p.on === 'floor')) boot.floor.push(await fastifyFloor(answer.text));
      const own = new Set(['date', 'connection', 'keep-alive', 'content-length', 'content-type', 'transfer-encoding']);
      if (paths.some((p) => p.on === 'floorHeaders')) boot.floorHeaders.push(await fastifyFloor(answer.text, Object.fromEntries(Object.entries(answer.headers).filter(([k]) => !own.has(k)))));
    }
    servers.push(...boot.cached, ...boot.uncached, ...boot.floor, ...boot.floorHeaders);
    const samples = new Map<string, { cpu: number[]; main: number[]; rps: number[] }>();
    for (const p of paths) {
      for (const s of boot[p.on]) {
        if (p.fill) for (const b of p.body as unknown[]) await post(`${s.url}${p.route}`, b);
        await load(s.url, p.route, p.body, CONNECTIONS, 1);
      }
    }
    for (let round_ = 0; round_ < ROUNDS; round_++) {
      for (const p of paths) {
        // Alternate which build goes first, so neither always follows the other.
        const order = round_ % 2 ? [...boot[p.on]].reverse() : boot[p.on];
        for (const s of order) {
          const r = await load(s.url, p.route, p.body, CONNECTIONS, SECONDS, undefined, s.child.pid!);
          const key = `${p.name} | ${s.label}`;
          const e = samples.get(key) ?? { cpu: [], main: [], rps: [] };
          e.cpu.push((r.server!.cpu_s * 1e6) / r.requests);
          e.main.push((r.server!.main_cpu_s * 1e6) / r.requests);
          e.rps.push(r.rps);
          samples.set(key, e);
          if (r.non2xx || r.errors) console.error(`${key}: ${r.non2xx} non-2xx, ${r.errors} errors`);
          console.log(`${key}: ${round((r.server!.cpu_s * 1e6) / r.requests, 1)} µs/request (main thread ${round((r.server!.main_cpu_s * 1e6) / r.requests, 1)}), ${Math.round(r.rps)} req/s, load ${loadavg()[0].toFixed(2)}`);
        }
      }
    }
    const rows = [...samples].map(([key, e]) => ({ path: key.split(' | ')[0], server: key.split(' | ')[1], cpu_us_per_request: round(median(e.cpu), 1), main_thread_us_per_request: round(median(e.main), 1), rps: Math.round(median(e.rps)), rounds: e.cpu.map((x) => round(x, 1)) }));
    console.log('\nmedians over rounds:');
    for (const r of rows) console.log(`${r.path.padEnd(16)} ${r.server.padEnd(28)} ${String(r.cpu_us_per_request).padStart(7)} µs/request  main ${String(r.main_thread_us_per_request).padStart(7)}  ${r.rps} req/s   rounds ${r.rounds.join(' ')}`);
    const out: Record<string, unknown> = { at: new Date().toISOString(), against: args.against, rounds: ROUNDS, seconds: SECONDS, connections: CONNECTIONS, loadavg: loadavg(), rows };
    for (const s of servers) await s.stop();
    servers.length = 0;
    if (profDir) {
      const files = readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile')).map((f) => join(profDir, f));
      out.profiles = files.map((f) => ({ file: f, ...summarizeProfile(f) }));
      for (const p of out.profiles as ReturnType<typeof summarizeProfile>[]) {
        console.log(`\nprofile: ${p.total_ms} ms of samples\nby package:`);
        for (const [k, v] of p.by_package) console.log(`  ${String(v).padStart(8)} ms  ${k}`);
        console.log('by function (self):');
        for (const [k, v] of p.by_function) console.log(`  ${String(v).padStart(8)} ms  ${k}`);
      }
    }
    mkdirSync('bench/results', { recursive: true });
    writeFileSync('bench/results/request-cost.json', `${JSON.stringify(out, null, 1)}\n`);
  } finally {
    for (const s of servers) await s.stop();
    stopLoadGenerator();
    if (base) {
      rmSync(join(base, 'node_modules'), { force: true });
      spawnSync('git', ['worktree', 'remove', '--force', base]);
    }
  }
}

await main();
