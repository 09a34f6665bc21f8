import { writeFileSync } from 'node:fs';

interface Row {
  scenario: string;
  server: string;
  mode?: 'closed' | 'open';
  rate?: number;
  connections?: number;
  concurrency?: number;
  single_p50_ms?: number;
  single_p99_ms?: number;
  cache?: Record<string, { hits: number; misses: number }>;
  rps?: number;
  items_per_s?: number;
  p50_ms?: number;
  p95_ms?: number;
  p99_ms?: number;
  errors?: number;
  non2xx?: number;
  cpu_cores?: number;
  rss_mb?: number;
  batch?: number;
  raw_items_per_s?: number;
  batch_histogram?: Record<string, number>;
}
interface Out {
  started: string;
  quick: boolean;
  seconds_per_point: number;
  machine: Record<string, unknown>;
  summary: Record<string, number>;
  results: Row[];
}
interface Tuning {
  started: string;
  seconds_per_point: number;
  machine: Record<string, unknown>;
  rows: { setting: string; boot_ready_s: number; load: number[]; embeddings_c1: Row; embeddings_c32: Row; qa300_c32: Row }[];
}

const COLORS: Record<string, string> = { gateway: '#1f6feb', naive: '#d1242f', ceiling: '#1a7f37' };

/** One small SVG: per scenario, items/s (left) and p99 (right) against concurrency, a line per server. */
function svg(out: Out): string {
  const plotted = out.results.filter((r) => r.mode === 'closed' && (r.server === 'gateway' || r.server === 'naive'));
  const scenarios = [...new Set(plotted.map((r) => r.scenario))];
  const W = 360;
  const H = 200;
  const pad = 40;
  const parts: string[] = [];
  scenarios.forEach((s, si) => {
    (['items_per_s', 'p99_ms'] as const).forEach((metric, mi) => {
      const x0 = mi * (W + 20);
      const y0 = si * (H + 40);
      const rows = plotted.filter((r) => r.scenario === s);
      const cs = [...new Set(rows.map((r) => r.concurrency!))].sort((a, b) => a - b);
      const ceil = out.results.find((r) => r.scenario === s && r.server === 'ceiling');
      const max = Math.max(1, ...rows.map((r) => r[metric] ?? 0), metric === 'items_per_s' ? ceil?.items_per_s ?? 0 : 0) * 1.1;
      const px = (i: number) => x0 + pad + (i * (W - pad - 10)) / Math.max(1, cs.length - 1);
      const py = (v: number) => y0 + H - pad + 10 - (v / max) * (H - pad - 10);
      parts.push(`<rect x="${x0}" y="${y0}" width="${W}" height="${H}" fill="#fff" stroke="#ddd"/>`);
      parts.push(`<text x="${x0 + 8}" y="${y0 + 16}" font-size="12" font-family="sans-serif">${s}: ${metric === 'items_per_s' ? 'items/s' : 'p99 ms'} (max ${Math.round(max / 1.1)})</text>`);
      cs.forEach((c, i) => parts.push(`<text x="${px(i) - 6}" y="${y0 + H - 8}" font-size="10" font-family="sans-serif">c${c}</text>`));
      for (const server of ['gateway', 'naive']) {
        const pts = cs.map((c, i) => [i, rows.find((r) => r.server === server && r.concurrency === c)?.[metric]] as const).filter(([, v]) => v !== undefined);
        if (pts.length) parts.push(`<polyline fill="none" stroke="${COLORS[server]}" stroke-width="2" points="${pts.map(([i, v]) => `${px(i).toFixed(1)},${py(v!).toFixed(1)}`).join(' ')}"/>`);
      }
      if (metric === 'items_per_s' && ceil?.items_per_s) parts.push(`<line x1="${x0 + pad}" x2="${x0 + W - 10}" y1="${py(ceil.items_per_s)}" y2="${py(ceil.items_per_s)}" stroke="${COLORS.ceiling}" stroke-dasharray="4 3"/>`);
    });
  });
  const legend = Object.entries(COLORS).map(([k, c], i) => `<text x="${10 + i * 110}" y="${scenarios.length * (H + 40) + 14}" font-size="12" font-family="sans-serif" fill="${c}">■ ${k}</text>`).join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${2 * W + 20}" height="${scenarios.length * (H + 40) + 24}">${parts.join('')}${legend}</svg>\n`;
}

const hist = (h?: Record<string, number>) => (h ? Object.entries(h).map(([k, v]) => `${k}:${v}`).join(' ') : '');
const loadRow = (r: Row) => `| ${r.scenario} | ${r.server} | ${r.mode === 'open' ? `${r.rate}/s open` : r.concurrency} | ${r.items_per_s} | ${r.p50_ms} | ${r.p95_ms} | ${r.p99_ms} | ${(r.errors ?? 0) + (r.non2xx ?? 0)} | ${r.cpu_cores} | ${r.rss_mb} | ${hist(r.batch_histogram)} |`;
const LOAD_HEAD = `| scenario | server | concurrency | items/s | p50 ms | p95 ms | p99 ms | errors | CPU cores | RSS MB | batch sizes: calls (gateway) |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |`;

function tuningSection(t: Tuning | undefined): string {
  if (!t) return 'Not measured yet: `npm run bench -- --tune` writes `bench/results/tuning.json`.';
  const rows = t.rows
    .map((r) => `| ${r.setting} | ${r.embeddings_c1.p50_ms} / ${r.embeddings_c1.p99_ms} | ${r.embeddings_c32.items_per_s} | ${r.embeddings_c32.p99_ms} | ${hist(r.embeddings_c32.batch_histogram)} | ${r.qa300_c32.items_per_s} | ${r.qa300_c32.p99_ms} | ${r.boot_ready_s} | ${r.load[0]} |`)
    .join('\n');
  return `\`npm run bench -- --tune\` on ${t.started}: one gateway per setting (sts-demo and qa-demo, caches off), ${t.seconds_per_point} s per point; raw numbers in \`bench/results/tuning.json\`.

| setting | embeddings c1 p50 / p99 ms | embeddings c32 items/s | p99 ms | batch sizes: calls | QA-300 c32 items/s | p99 ms | boot s | load avg |
| --- | --- | --- | --- | --- | --- | --- | --- | --- |
${rows}`;
}

export function renderDocs(out: Out, tuning?: Tuning): void {
  writeFileSync('docs/performance.svg', svg(out));
  const closed = out.results.filter((r) => r.mode === 'closed' && (r.server === 'gateway' || r.server === 'naive')).map(loadRow).join('\n');
  const open = out.results.filter((r) => r.mode === 'open').map(loadRow).join('\n');
  const cached = out.results
    .filter((r) => r.cache)
    .map((r) => `${loadRow(r)} ${Object.entries(r.cache!).filter(([, v]) => v.hits + v.misses > 0).map(([k, v]) => `${k} ${v.hits} hits / ${v.misses} misses`).join(', ')} |`)
    .join('\n');
  const ceilings = out.results
    .filter((r) => r.server === 'ceiling')
    .map((r) => `| ${r.scenario} | ${r.items_per_s} (batch ${r.batch}) | ${r.raw_items_per_s} | ${r.single_p50_ms} / ${r.single_p99_ms} |`)
    .join('\n');
  const s = out.summary;
  const m = out.machine;
  const la = (x: unknown) => (x as number[] | undefined)?.map((v) => v.toFixed(1)).join(' / ') ?? '?';
  const md = `# Performance

Generated by \`npm run bench${out.quick ? ' -- --quick' : ''}\` (\`bench/run.ts\`) from ${out.started}, ${out.seconds_per_point} s per point. Machine: ${m.cpus} × ${m.cpu}, ${m.memory_gb} GB, Node ${m.node}; load average (1/5/15 min) ${la(m.loadavg_at_start)} at start, ${la(m.loadavg_at_end)} at the end: with ${m.cpus} cores, a load above ${m.cpus} means other work shared the CPU and every figure is low by that share. Raw numbers: \`bench/results/latest.json\`.

Three servers do the same work in one run:
- **ceiling**: in-process, no HTTP and no queue: tokenization (\`src/inference/tokenizer.ts\`) plus ONNX Runtime in two worker threads (one session each, intra-op 1, both cores), at its best batch size; *raw* is ONNX Runtime alone on pre-tokenized input; *single* is one item at a time on one thread (the least concurrency 1 can cost).
- **naive**: Fastify calling the transformers.js pipeline per request (\`bench/naive-server.ts\`), what a Node user would write first (no such pipeline for similarity pairs or essay scoring). Its ONNX Runtime uses the default thread settings, so one call can use both cores. Its QA pipeline truncates the context to one 256-token window (\`truncation: true\`, no stride), so on QA it does less work than the gateway and the ceiling (2 windows for 300 words, ~20 for 3,000) and cannot find an answer past the first window.
- **gateway**: \`node --import tsx src/server.ts\` with all five demo models from \`models/*.zip\`, caches off (every request body is unique anyway).

The load generator (autocannon, \`bench/load.ts\`) runs in its own process at nice 10; percentiles are exact over every response. CPU is cores used by the server process (all its threads, \`/proc/<pid>/stat\`), RSS from \`/proc/<pid>/status\` at the end of the point. Items are sentences (similarity: 2 per request, classification: 16 per request), QA items or essays.

## Summary
| figure | value | target |
| --- | --- | --- |
| embeddings c32, gateway / naive | ${s.embeddings_c32_vs_naive} | ≥ 3 |
| embeddings c32, gateway / ceiling | ${s.embeddings_c32_vs_ceiling} | ≥ 0.8 |
| QA 300 words c32, gateway / naive | ${s.qa300_c32_vs_naive} | ≥ 1.7 |
| QA 300 words c32, gateway / ceiling | ${s.qa300_c32_vs_ceiling} | ≥ 0.8 |
| embeddings c1 gateway p99 (ms) | ${s.embeddings_c1_p99_ms} | ≤ ${s.embeddings_c1_p99_budget_ms} (ceiling single p99 + 5) |
| QA 300 c1 gateway p99 (ms) | ${s.qa300_c1_p99_ms} | ≤ ${s.qa300_c1_p99_budget_ms} (ceiling single p99 + 5) |
| boot to ready, all five demo models (s) | ${s.boot_ready_s} | ≤ 10 |

![throughput (items/s) and p99 against concurrency, per scenario; dashed: the ceiling](performance.svg)

## Ceiling (items/s)
| scenario | tokenize + ONNX Runtime, 2 threads | raw ONNX Runtime, 2 threads | single item p50 / p99 ms |
| --- | --- | --- | --- |
${ceilings}

## Closed loop (concurrency = connections, each waits for its answer)
${LOAD_HEAD}
${closed}
${open ? `\n## Open loop (a fixed arrival rate, 3/4 of the gateway's best closed-loop rate, over 128 connections)\n${LOAD_HEAD}\n${open}\n` : ''}
## Caches
A gateway with the default caches on, each of 32 connections cycling through the same 64 request bodies, after one pass over them that fills the caches. (Without that pass all 32 connections send body 0 at once, then body 1, and so on: concurrent identical requests all miss, since the gateway does not merge identical requests in flight.)

| scenario | server | concurrency | items/s | p50 ms | p95 ms | p99 ms | errors | CPU cores | RSS MB | batch sizes: calls | cache |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
${cached}

Compare with the same scenario above, caches off: a hit skips tokenization, the queue and the model, so a repeated-input workload is bounded by HTTP and JSON alone. The embedding cache is per sentence and shared by the similarity, batch, file, embeddings and HF routes; QA and classification cache exact results; both are keyed by model version, bounded in bytes (\`cache.embeddingBytes\`, \`cache.resultBytes\`) and counted in \`gateway_cache_hits\` / \`gateway_cache_misses\`.

## What limits the figures (full run of 2026-12-01 08:31, load average 2.3-2.8, Intel Xeon host; the earlier runs here were on an AMD EPYC host, so compare ratios within one run, not figures across runs)
- **Short sentences (embeddings, similarity): the gateway's per-request cost on two shared cores.** Embeddings at c32: 2,304 sentences/s, 1.55x the naive server and 0.38x the ceiling; the gateway process used 1.38 cores, the load generator most of the rest. Per request that is ~0.6 ms of CPU against ~0.33 ms per item in the ceiling, which pays no HTTP parsing, validation, event-loop hop for the native tokenizer, message to a worker, JSON of 128 floats or socket write, and runs only full batches of 32 (the gateway's calls at c32 are mostly 1-8 rows: a batch goes as soon as a worker is free). Pairs amortise that better: similarity reaches 0.68 of its ceiling (4,395 sentences/s). The 3x-naive and 0.8x-ceiling targets for single sentences are not met; the 0.8x one needs a client on other cores than the server's (the ceiling has no client at all).
- **Lists (classification of 16) and long inputs (QA, essays): the two cores.** classify16 0.96 of the ceiling, QA-300 0.97, essays 0.89, QA-3000 0.81 (13 vs 16 items/s, ~20 windows each); at c128 QA-3000 fills the per-model queue (\`inference.queueCapacity\` 2048 windows) and the excess gets 503, as designed. The naive server does one truncated window per QA request, so it is faster on QA-3000 and finds nothing past the first window.
- **Concurrency 1:** both p99 budgets (ceiling single-item p99 + 5 ms) met: embeddings 5.8 ms, QA-300 19.7 ms. QA-300 at c1 runs its two windows on both workers side by side (the scheduler shares the queue between free workers).
- **Open loop:** autocannon paces \`overallRate\` per connection per second (a connection fires its quota at the start of each second), so arrivals come as one burst per second and the open-loop latencies include the queue each burst builds; throughput there equals the offered rate wherever the gateway keeps up.
- **What this run's changes did** (side by side in \`npm run bench -- --quick\` on the same host, same inputs): embeddings c32 1,705 -> 2,263 sentences/s and QA-300 c1 p50 25.5 -> 10.9 ms, from: security headers computed once (@fastify/helmet rebuilt helmet per request), one access-log line per request instead of two, ids-only tokenization for single-window models, and free workers sharing the queue. Before that, the bench fed the gateway and naive servers autocannon's 24-character hyperid in each text (15-20 more word pieces than the ceiling's texts): a counter now makes every request unique with the ceiling's own texts.

## Tuning
${tuningSection(tuning)}

${TUNING_NOTES}

## fp32 and int8
The model zoo ships fp32 only (\`models/README.md\`, "Quantization: shipped as fp32"), so there is no int8 variant to compare here. FACTS.md measured an ONNX-level int8 quantization of a demo-size encoder at about 1.7-1.9× the fp32 speed with the same EM/F1; \`bench/ceiling.ts\` will measure one as soon as a zip carries it.
`;
  writeFileSync('docs/performance.md', md);
}

/** Why the defaults are what they are (written from the tuning table above; update with it). */
const TUNING_NOTES = `What the sweeps say (this one on 2026-12-01 with this run's code, and two on 2026-11-22 with the code of then, one under training load; at this noise level, ±30% between repeats of the same setting, only differences seen in more than one sweep count):
- **Two inference workers, one ONNX Runtime thread each** (\`inference.workers\` × \`intraOpThreads\` = cores) stays: one worker with two intra-op threads was slower in all three sweeps (embeddings c32 -20% to -41%, QA-300 c32 -23% here, c1 p99 +2 to +8 ms), as in FACTS.md.
- **\`maxBatchTokens\` 1024** stays: here 512 was even on QA and 26% lower on embeddings, 4096 14% lower on QA with a higher p99; on 2026-11-22, 8192 cut QA-300 c32 by a third. The ceiling shows why: at 256-token QA windows batch 1 is the fastest per item (batch 4 and 16 are slower per item), so large budgets only add latency for long inputs, while 1,024 still lets 32 short sentences share a call.
- **\`maxBatchSize\` 32** stays: 8 looked better on 2026-11-22 (with 4096 tokens, before the other changes of this run) and was 22% lower on embeddings here, even on QA.
- **\`maxWaitMs\` 0** stays: 2 ms added 3 ms to the c1 p50 and lowered throughput here (embeddings -26%, QA -29%); batches form by themselves while the workers are busy (batch-size column).
- **\`tokenizeInlineMaxChars\` 2000** stays: 0 (every sentence through the tokenizer pool) was slower for sentences (-38% here) and for QA in every sweep.
- **Free workers share the queue** (not a knob): with two idle workers each takes at most half of what is queued, so the two windows of one QA-300 request run side by side at c1; under load one worker frees up at a time and takes a full batch.
- **Inference threads at nice 5**: under saturation the event loop keeps the CPU it needs to parse, admit and answer. The flip side, seen in the first quick runs of 2026-11-22: while other nice-0 work (training) shares the machine, the gateway's inference threads lose to it and the gateway falls further behind the nice-0 ceiling and naive server.`;
