/**
 * `npm run bench:semantic`: the semantic cache on a repeated-paraphrase workload. Questions from a SQuAD-format
 * file (held out from the demo reader's training) each arrive three times in different wordings (the question
 * and two meaning-preserving rewrites), shuffled, every text distinct so the exact cache never answers. The same
 * stream runs against a gateway process with the semantic cache off and then on at each threshold, one at a time
 * on this machine: throughput and latency side by side, the semantic hit rate, and the precision (a semantic
 * answer's span equals the span the cache-off gateway gave that very request).
 *
 *   npm run bench:semantic -- [--paragraphs 40] [--thresholds 0.95,0.99] [--concurrency 8] [--qa FILE]
 *
 * Writes bench/results/semantic-cache.json.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { demoZip } from '../test/helpers/app.ts';
import { startGateway } from '../test/helpers/gateway-process.ts';
import { procStat } from './load-client.ts';
import { rewrite } from '../scripts/measure-semantic-threshold.ts';
import { rng } from '../test/fixtures/stand-in-onnx.ts'; // mulberry32: every server sees the same order

interface Request {
  question: string;
  context: string;
}

export function workload(file: string, paragraphs: number): Request[] {
  const squad = JSON.parse(readFileSync(file, 'utf8')) as { data: { paragraphs: { context: string; qas: { question: string }[] }[] }[] };
  const all = squad.data.flatMap((a) => a.paragraphs);
  const stride = Math.max(1, Math.floor(all.length / paragraphs));
  const out: Request[] = [];
  let n = 0;
  for (const p of all.filter((_, i) => i % stride === 0).slice(0, paragraphs)) {
    for (const q of p.qas) {
      const variants = new Set([q.question.trim(), rewrite(q.question, n), rewrite(q.question, n + 4)]);
      for (const v of variants) out.push({ question: v, context: p.context });
      n++;
    }
  }
  const rand = rng(17);
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  // Exact duplicates (a rewrite equal to another) would be answered by the exact cache: keep the first.
  const seen = new Set<string>();
  return out.filter((r) => !seen.has(`${r.question}\u0000${r.context}`) && seen.add(`${r.question}\u0000${r.context}`));
}

interface Answered {
  span: string;
  cache: string;
  ms: number;
}

async function run(url: string, requests: Request[], concurrency: number): Promise<{ answers: Answered[]; seconds: number }> {
  const answers: Answered[] = new Array(requests.length);
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < requests.length) {
        const i = next++;
        const s = performance.now();
        const r = await fetch(`${url}/v1/qa`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(requests[i]) });
        const body = (await r.json()) as { answers?: { start: number; end: number }[] };
        if (r.status !== 200) throw new Error(`${r.status} ${JSON.stringify(body)}`);
        const a = body.answers?.[0];
        answers[i] = { span: a ? `${a.start}:${a.end}` : '', cache: r.headers.get('x-cache') ?? '', ms: performance.now() - s };
      }
    }),
  );
  return { answers, seconds: (performance.now() - t0) / 1000 };
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return +s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))].toFixed(1);
};

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      paragraphs: { type: 'string', default: '40' },
      thresholds: { type: 'string', default: '0.95,0.99' },
      concurrency: { type: 'string', default: '8' },
      qa: { type: 'string', default: '../shared/data/qa-train/squadshifts_new_wiki_v1.0.json' },
      reader: { type: 'string', default: 'qa-demo' },
      embedder: { type: 'string', default: 'sts-demo' },
    },
  });
  const requests = workload(values.qa, Number(values.paragraphs));
  const concurrency = Number(values.concurrency);
  const models = JSON.stringify([values.reader, values.embedder].map((name) => ({ name, source: demoZip(name) })));
  const servers = [{ name: 'semantic off' }, ...values.thresholds.split(',').map((t) => ({ name: `semantic ${t}`, threshold: t }))];
  const rows: Record<string, unknown>[] = [];
  let reference: Answered[] | undefined;
  for (const s of servers) {
    const gw = await startGateway({
      GATEWAY_MODELS: models,
      GATEWAY_SERVER__LOG_LEVEL: 'warn',
      ...('threshold' in s ? { GATEWAY_CACHE__SEMANTIC__ENABLED: 'true', GATEWAY_CACHE__SEMANTIC__THRESHOLD: s.threshold!, GATEWAY_CACHE__SEMANTIC__MODEL: values.embedder, GATEWAY_CACHE__SEMANTIC__TASKS: '["question-answering"]' } : {}),
    });
    try {
      await gw.waitReady(120_000);
      const cpu0 = procStat(gw.child.pid!).cpuS;
      const { answers, seconds } = await run(gw.url, requests, concurrency);
      const cpu = procStat(gw.child.pid!).cpuS - cpu0;
      reference ??= answers;
      const hits = answers.map((a, i) => ({ a, i })).filter(({ a }) => a.cache === 'semantic');
      const right = hits.filter(({ a, i }) => a.span === reference![i].span).length;
      rows.push({
        server: s.name,
        requests: requests.length,
        concurrency,
        rps: +(requests.length / seconds).toFixed(1),
        p50_ms: pct(answers.map((a) => a.ms), 50),
        p95_ms: pct(answers.map((a) => a.ms), 95),
        server_cpu_ms_per_request: +((1000 * cpu) / requests.length).toFixed(2),
        semantic_hit_rate: +(hits.length / requests.length).toFixed(3),
        precision: hits.length ? +(right / hits.length).toFixed(3) : null,
      });
      process.stderr.write(`${JSON.stringify(rows.at(-1))}\n`);
    } finally {
      await gw.stop();
    }
  }
  const base = rows[0].rps as number;
  for (const r of rows) r.rps_vs_off = +((r.rps as number) / base).toFixed(2);
  const result = { when: new Date().toISOString(), workload: { file: values.qa, paragraphs: Number(values.paragraphs), requests: requests.length, variants_per_question: 3 }, reader: values.reader, embedder: values.embedder, rows };
  mkdirSync('bench/results', { recursive: true });
  writeFileSync('bench/results/semantic-cache.json', `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}

main().catch((e) => {
  process.stderr.write(`${e instanceof Error ? e.stack : e}\n`);
  process.exit(1);
});
