/**
 * docs/performance.md and its plots (docs/performance.svg: throughput and p99 against concurrency;
 * docs/performance-cpu.svg: server CPU per item per server) from bench/results/latest.json and tuning.json.
 */
import { writeFileSync } from 'node:fs';

interface Row {
  scenario: string;
  server: string;
  config?: string;
  model?: string;
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
  server_cpu_ms_per_item?: number;
  main_thread_cpu_ms_per_item?: number;
  cpu_ms_per_item?: number;
  threads?: number;
  rss_mb?: number;
  load_1m?: number;
  batch?: number;
  raw_items_per_s?: number;
  batch_histogram?: Record<string, number>;
}
interface Out {
  started: string;
  wall_s?: number;
  quick: boolean;
  pinned?: boolean;
  seconds_per_point: number;
  machine: Record<string, unknown> & { other_cpu_at_start?: OtherCpu[]; other_cpu_at_end?: OtherCpu[] };
  speed_only_models?: { name: string; like: string; parameters: number; max_length: number }[];
  summary: Record<string, number | null>;
  results: Row[];
  int8?: Record<string, unknown>[];
  collections?: Record<string, unknown>[];
}
interface OtherCpu {
  pid: number;
  command: string;
  nice: number;
  cores: number;
}
interface Tuning {
  started: string;
  seconds_per_point: number;
  machine: Record<string, unknown>;
  rows: { setting: string; boot_ready_s: number; load: number[]; embeddings_c1: Row; embeddings_c32: Row; qa300_c32: Row }[];
}

const COLORS: Record<string, string> = { gateway: '#1f6feb', naive: '#d1242f', ceiling: '#1a7f37' };
const SPEED_ONLY_MARK = ' (speed-only)';
const label = (scenario: string, rows: Row[]) => `${scenario}${rows.some((r) => r.scenario === scenario && r.model) ? SPEED_ONLY_MARK : ''}`;
const closedRows = (out: Out) => out.results.filter((r) => r.mode === 'closed' && !r.config && (r.server === 'gateway' || r.server === 'naive'));

/** Per scenario: items/s (left) and p99 (right) against concurrency, a line per server, the ceiling dashed. */
function svg(out: Out): string {
  const plotted = closedRows(out);
  const scenarios = [...new Set(plotted.map((r) => r.scenario))].filter((s) => new Set(plotted.filter((r) => r.scenario === s).map((r) => r.concurrency)).size > 1);
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
      const ceil = out.results.find((r) => r.scenario === s && r.server === 'ceiling' && !r.config);
      const max = Math.max(1, ...rows.map((r) => r[metric] ?? 0), metric === 'items_per_s' ? ceil?.items_per_s ?? 0 : 0) * 1.1;
      const px = (i: number) => x0 + pad + (i * (W - pad - 10)) / Math.max(1, cs.length - 1);
      const py = (v: number) => y0 + H - pad + 10 - (v / max) * (H - pad - 10);
      parts.push(`<rect x="${x0}" y="${y0}" width="${W}" height="${H}" fill="#fff" stroke="#ddd"/>`);
      parts.push(`<text x="${x0 + 8}" y="${y0 + 16}" font-size="12" font-family="sans-serif">${label(s, out.results)}: ${metric === 'items_per_s' ? 'items/s' : 'p99 ms'} (max ${Math.round(max / 1.1)})</text>`);
      cs.forEach((c, i) => parts.push(`<text x="${px(i) - 6}" y="${y0 + H - 8}" font-size="10" font-family="sans-serif">c${c}</text>`));
      for (const server of ['gateway', 'naive']) {
        const pts = cs.map((c, i) => [i, rows.find((r) => r.server === server && r.concurrency === c)?.[metric]] as const).filter(([, v]) => v !== undefined);
        if (pts.length) parts.push(`<polyline fill="none" stroke="${COLORS[server]}" stroke-width="2" points="${pts.map(([i, v]) => `${px(i).toFixed(1)},${py(v!).toFixed(1)}`).join(' ')}"/>`);
        for (const [i, v] of pts) parts.push(`<circle cx="${px(i).toFixed(1)}" cy="${py(v!).toFixed(1)}" r="2.5" fill="${COLORS[server]}"/>`);
      }
      if (metric === 'items_per_s' && ceil?.items_per_s) parts.push(`<line x1="${x0 + pad}" x2="${x0 + W - 10}" y1="${py(ceil.items_per_s)}" y2="${py(ceil.items_per_s)}" stroke="${COLORS.ceiling}" stroke-dasharray="4 3"/>`);
    });
  });
  const legend = Object.entries(COLORS).map(([k, c], i) => `<text x="${10 + i * 110}" y="${scenarios.length * (H + 40) + 14}" font-size="12" font-family="sans-serif" fill="${c}">■ ${k}</text>`).join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${2 * W + 20}" height="${scenarios.length * (H + 40) + 24}">${parts.join('')}${legend}</svg>\n`;
}

/** Server CPU per item at concurrency 32, one bar per server per scenario, each scenario on its own scale. */
function cpuSvg(out: Out): string {
  const scenarios = [...new Set(out.results.filter((r) => r.server === 'ceiling' && !r.config).map((r) => r.scenario))];
  const W = 740;
  const rowH = 64;
  const left = 230;
  const parts: string[] = [];
  scenarios.forEach((s, i) => {
    const y0 = i * rowH + 8;
    const bars = [
      ['ceiling', out.results.find((r) => r.scenario === s && r.server === 'ceiling' && !r.config)?.cpu_ms_per_item],
      ['gateway', out.results.find((r) => r.scenario === s && r.server === 'gateway' && r.concurrency === 32 && !r.config)?.server_cpu_ms_per_item],
      ['naive', out.results.find((r) => r.scenario === s && r.server === 'naive' && r.concurrency === 32 && !r.config)?.server_cpu_ms_per_item],
    ].filter(([, v]) => typeof v === 'number') as [string, number][];
    const max = Math.max(...bars.map(([, v]) => v)) * 1.15;
    parts.push(`<text x="4" y="${y0 + 26}" font-size="12" font-family="sans-serif">${label(s, out.results)}</text>`);
    bars.forEach(([server, v], k) => {
      const w = ((W - left - 90) * v) / max;
      parts.push(`<rect x="${left}" y="${y0 + k * 17}" width="${w.toFixed(1)}" height="14" fill="${COLORS[server]}"/>`);
      parts.push(`<text x="${left + w + 4}" y="${y0 + k * 17 + 11}" font-size="10" font-family="sans-serif">${v < 1 ? (v * 1000).toFixed(0) + ' µs' : v.toFixed(2) + ' ms'}</text>`);
    });
  });
  const legend = Object.entries(COLORS).map(([k, c], i) => `<text x="${10 + i * 110}" y="${scenarios.length * rowH + 22}" font-size="12" font-family="sans-serif" fill="${c}">■ ${k}</text>`).join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${scenarios.length * rowH + 30}"><rect width="100%" height="100%" fill="#fff"/>${parts.join('')}${legend}</svg>\n`;
}

const hist = (h?: Record<string, number>) => (h ? Object.entries(h).map(([k, v]) => `${k}:${v}`).join(' ') : '');
const ms = (x?: number) => (x === undefined ? '' : x < 1 ? `${(x * 1000).toFixed(0)} µs` : `${x.toFixed(2)} ms`);
const loadRow = (r: Row) => `| ${r.scenario}${r.model ? SPEED_ONLY_MARK : ''} | ${r.server} | ${r.mode === 'open' ? `${r.rate}/s open` : r.concurrency} | ${r.items_per_s} | ${r.p50_ms} | ${r.p95_ms} | ${r.p99_ms} | ${(r.errors ?? 0) + (r.non2xx ?? 0)} | ${ms(r.server_cpu_ms_per_item)} | ${ms(r.main_thread_cpu_ms_per_item)} | ${r.cpu_cores} | ${r.rss_mb} | ${r.load_1m ?? ''} | ${hist(r.batch_histogram)} |`;
const LOAD_HEAD = `| scenario | server | concurrency | items/s | p50 ms | p95 ms | p99 ms | errors | server CPU per item | of which main thread | server cores | RSS MB | load 1 min | batch sizes: calls (gateway) |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |`;

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

type Target = { figure: string; key: string; target: string; met: (v: number) => boolean; now: string };

/** The issue's targets (issue 14), each read from a stable summary key. */
const TARGETS: Target[] = [
  { figure: 'demo embeddings c32: gateway CPU per item / ceiling CPU per item', key: 'embeddings_c32_cpu_vs_ceiling', target: '≤ 1.2', met: (v) => v <= 1.2, now: '1.36' },
  { figure: 'cache-hit path (embeddings), server CPU per request (µs)', key: 'cache_hit_embeddings_cpu_us_per_request', target: '≤ 40', met: (v) => v <= 40, now: '57' },
  { figure: 'MiniLM-shape embeddings c32: gateway CPU per item / ceiling', key: 'minilm_embeddings_c32_cpu_vs_ceiling', target: '≤ 1.05', met: (v) => v <= 1.05, now: '–' },
  { figure: 'MiniLM-shape embeddings c32: gateway / naive throughput', key: 'minilm_embeddings_c32_vs_naive', target: '≥ 2', met: (v) => v >= 2, now: '–' },
  { figure: 'DistilBERT-shape QA-300 c32: gateway / ceiling throughput', key: 'distilbert_qa300_c32_vs_ceiling', target: '≥ 0.95', met: (v) => v >= 0.95, now: '–' },
  { figure: 'collection QA c1 p50, SQLite: gateway / in-process ceiling latency', key: 'collection_qa_c1_p50_vs_ceiling_sqlite', target: '≤ 1.2', met: (v) => v <= 1.2, now: '–' },
  { figure: 'collection QA c1 p50, PostgreSQL: gateway / in-process ceiling latency', key: 'collection_qa_c1_p50_vs_ceiling_postgres', target: '≤ 1.2', met: (v) => v <= 1.2, now: '–' },
  { figure: 'collection ingest, SQLite: gateway chunks/s / embedding ceiling', key: 'collection_ingest_vs_ceiling_sqlite', target: '≥ 0.8', met: (v) => v >= 0.8, now: '–' },
  { figure: 'collection ingest, PostgreSQL: gateway chunks/s / embedding ceiling', key: 'collection_ingest_vs_ceiling_postgres', target: '≥ 0.8', met: (v) => v >= 0.8, now: '–' },
  { figure: 'int8 / fp32 throughput (MiniLM shape, gateway c32; both batch-invariant)', key: 'minilm_int8_embeddings_vs_fp32_c32', target: '≥ 1.5', met: (v) => v >= 1.5, now: '–' },
];

function targetsTable(s: Out['summary']): string {
  const rows = TARGETS.map((t) => {
    const v = s[t.key];
    const shown = v === null || v === undefined ? 'not measured in this run' : String(v);
    return `| ${t.figure} | \`${t.key}\` | ${t.now} | ${shown} | ${t.target} | ${v === null || v === undefined ? '–' : t.met(v) ? 'met' : '**not met**'} |`;
  });
  const int8Demo = Object.keys(s).filter((k) => /_int8_vs_fp32_c32$/.test(k) && k !== 'minilm_int8_embeddings_vs_fp32_c32');
  for (const k of int8Demo) rows.push(`| int8 / fp32 throughput (${k.replace(/_int8_vs_fp32_c32$/, '')}, gateway c32) | \`${k}\` | – | ${s[k]} | ≥ 1.5 | ${(s[k] ?? 0) >= 1.5 ? 'met' : '**not met**'} |`);
  rows.push(`| c1 p99 budgets (ceiling single p99 + 5 ms), every scenario | \`c1_p99_budgets_met\` / \`c1_p99_budgets_total\` | 2 of 2 | ${s.c1_p99_budgets_met} of ${s.c1_p99_budgets_total} | all | ${s.c1_p99_budgets_met === s.c1_p99_budgets_total ? 'met' : '**not met**'} |`);
  return `| figure | summary key | before (issue) | this run | target | |
| --- | --- | --- | --- | --- | --- |
${rows.join('\n')}`;
}

function budgetsTable(s: Out['summary']): string {
  const keys = Object.keys(s).filter((k) => k.endsWith('_c1_p99_ms'));
  return `| scenario | gateway c1 p99 ms | budget ms (ceiling single p99 + 5) | |
| --- | --- | --- | --- |
${keys.map((k) => {
  const base = k.replace(/_c1_p99_ms$/, '');
  const v = s[k];
  const b = s[`${base}_c1_p99_budget_ms`];
  return `| ${base} | ${v} | ${b} | ${v !== null && b !== null && v !== undefined && b !== undefined && v <= b ? 'met' : '**not met**'} |`;
}).join('\n')}`;
}

function ratiosTable(out: Out): string {
  const s = out.summary;
  const scenarios = [...new Set(out.results.filter((r) => r.server === 'ceiling' && !r.config).map((r) => r.scenario))];
  const f = (k: string) => (s[k] === undefined || s[k] === null ? '' : String(s[k]));
  return `| scenario | gateway c32 items/s | gateway / ceiling | gateway / naive | gateway CPU per item | ceiling CPU per item | gateway CPU / ceiling CPU | naive CPU / gateway CPU |
| --- | --- | --- | --- | --- | --- | --- | --- |
${scenarios.map((k) => `| ${label(k, out.results)} | ${f(`${k}_c32_items_per_s`)} | ${f(`${k}_c32_vs_ceiling`)} | ${f(`${k}_c32_vs_naive`)} | ${ms(s[`${k}_c32_cpu_ms_per_item`] ?? undefined)} | ${ms(s[`${k}_ceiling_cpu_ms_per_item`] ?? undefined)} | ${f(`${k}_c32_cpu_vs_ceiling`)} | ${f(`${k}_c32_naive_cpu_vs_gateway`)} |`).join('\n')}`;
}

function pinnedSection(out: Out): string {
  const rows = out.results.filter((r) => r.config === 'pinned');
  if (!rows.length) return 'Not in this run (`npm run bench` has it; add `-- --pinned` to a quick run).';
  const s = out.summary;
  const scen = [...new Set(rows.map((r) => r.scenario))];
  const ratios = scen.map((k) => `| ${label(k, out.results)} | ${s[`${k}_pinned_c32_vs_ceiling`]} | ${s[`${k}_c32_vs_ceiling`]} | ${s[`${k}_pinned_c32_vs_naive`]} | ${s[`${k}_c32_vs_naive`]} | ${s[`${k}_pinned_c32_cpu_vs_ceiling`]} |`).join('\n');
  const ceil = rows.filter((r) => r.server === 'ceiling').map((r) => `| ${r.scenario}${r.model ? SPEED_ONLY_MARK : ''} | ceiling, 1 thread | | ${r.items_per_s} | | | ${r.single_p99_ms} (single) | | ${ms(r.cpu_ms_per_item)} | | | | | |`).join('\n');
  return `The load generator pinned to core 0 and each server to core 1 (\`taskset -a -p -c\`, every thread), so no client work lands on the server's core: a gateway with \`inference.workers\` 1 (workers × intra-op threads = its one core), the same naive server re-pinned, and the ceiling on one thread on core 1.

| scenario | pinned gateway / 1-core ceiling | unpinned gateway / 2-core ceiling | pinned gateway / naive | unpinned gateway / naive | pinned gateway CPU / ceiling CPU |
| --- | --- | --- | --- | --- | --- |
${ratios}

${LOAD_HEAD}
${rows.filter((r) => r.server !== 'ceiling').map(loadRow).join('\n')}
${ceil}`;
}

function int8Section(out: Out): string {
  const pairs = out.int8 ?? [];
  if (!pairs.length) return 'No int8 variant in this run.';
  const s = out.summary;
  const lines = pairs.map((p) => {
    const k = String(p.int8_scenario);
    const fp = String(p.fp32_scenario);
    const g = (sc: string) => out.results.find((r) => r.scenario === sc && r.server === 'gateway' && r.concurrency === 32 && !r.config);
    const c = (sc: string) => out.results.find((r) => r.scenario === sc && r.server === 'ceiling' && !r.config);
    const inv = p.batch_invariance_max_diff as { fp32?: number; int8?: number };
    const d = p.drift as Record<string, unknown>;
    const drift = Object.entries(d).filter(([key]) => key !== 'what' && key !== 'inputs').map(([key, v]) => `${key} ${v}`).join(', ');
    return `| ${p.fp32} → ${p.int8}${p.model ? SPEED_ONLY_MARK : ''} | ${g(fp)?.items_per_s} → ${g(k)?.items_per_s} (${s[`${k}_vs_fp32_c32`]}×) | ${ms(g(fp)?.server_cpu_ms_per_item)} → ${ms(g(k)?.server_cpu_ms_per_item)} | ${c(fp)?.items_per_s} → ${c(k)?.items_per_s} (${s[`${k}_vs_fp32_ceiling`]}×) | ${ms(c(fp)?.cpu_ms_per_item)} → ${ms(c(k)?.cpu_ms_per_item)} | ${inv.fp32 ?? '?'} / ${inv.int8 ?? '?'} | ${drift} (${d.inputs} ${d.what}) |`;
  });
  return `Each pair served by the same gateway, one after the other; drift is int8 against fp32 on the same real inputs, as the gateway answers them (embeddings: cosine of each vector to its fp32 vector and the element differences; QA: the top span identical, the overlap F1 of the two spans, the score difference). Batch invariance: the largest move of a row's output when padded into a batch, from the gateway's own boot check (\`/v1/models\` warmup; the gateway refuses a model past 1e-4).

| model | gateway c32 items/s | gateway CPU per item | ceiling items/s | ceiling CPU per item | batch invariance fp32 / int8 | drift |
| --- | --- | --- | --- | --- | --- | --- |
${lines.join('\n')}`;
}

function collectionsSection(out: Out): string {
  const rows = out.collections ?? [];
  if (!rows.length) return 'Not in this run.';
  const ingest = rows.filter((r) => r.scenario === 'collection-ingest').map((r) => `| ${r.store} | ${r.documents} | ${r.chunks} | ${r.chunks_per_s} | ${r.ceiling_chunks_per_s} | ${r.ratio_to_ceiling} | ${r.server_cpu_ms_per_chunk} | ${r.ceiling_cpu_ms_per_chunk ?? ''} |`).join('\n');
  const qa = rows.filter((r) => r.scenario === 'collection-qa').map((r) => `| ${r.store} | ${r.concurrency} | ${r.rps} | ${r.p50_ms} | ${r.p99_ms} | ${r.errors} | ${r.server_cpu_ms_per_question} | ${r.ceiling_single_p50_ms} / ${r.ceiling_single_p99_ms} | ${r.ceiling_cpu_ms_per_question ?? ''} | ${r.p50_ratio_to_ceiling ?? ''} | ${r.ceiling_2core_qps ?? ''} | ${r.qps_ratio_to_ceiling ?? ''} |`).join('\n');
  return `\`bench/collections.ts\` (also alone: \`npm run bench:collections\`): SQuAD v1.0 train paragraphs ingested as NDJSON (500 documents a request, chunks of at most 128 tokens with 16 of overlap) into a gateway serving sts-demo and qa-demo, caches off; then questions (hybrid retrieval, the top 5 chunks read by qa-demo, top 1 answer) at concurrency 1 and 32. The ceiling does the same work in this process with no HTTP, queue or scheduler: ONNX Runtime embeds the question, the same store answers the vector and BM25 searches (fused), one ONNX Runtime batch reads the top chunks, the span search picks the answer. Ingest is measured against the embedding ceiling on the same chunk texts (two threads, best batch). With PostgreSQL (PGlite over the wire protocol), the database runs in the bench process: its CPU is in neither server-CPU column, and the ceiling pays its latency too.${out.quick ? ' A quick run uses a small collection and the SQLite store only.' : ''}

| store | documents | chunks | gateway chunks/s | ceiling chunks/s | ratio | gateway CPU ms per chunk | ceiling CPU ms per chunk |
| --- | --- | --- | --- | --- | --- | --- | --- |
${ingest}

| store | concurrency | questions/s | p50 ms | p99 ms | errors | gateway CPU ms per question | ceiling single p50 / p99 ms | ceiling CPU ms per question | c1 p50 / ceiling p50 | ceiling, 2 cores (estimate: 2 / mean single) | c32 / that |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
${qa}`;
}

export function renderDocs(out: Out, tuning?: Tuning): void {
  writeFileSync('docs/performance.svg', svg(out));
  writeFileSync('docs/performance-cpu.svg', cpuSvg(out));
  const closed = closedRows(out).map(loadRow).join('\n');
  const open = out.results.filter((r) => r.mode === 'open').map(loadRow).join('\n');
  const cached = out.results
    .filter((r) => r.cache)
    .map((r) => `${loadRow(r)} ${Object.entries(r.cache!).filter(([, v]) => v.hits + v.misses > 0).map(([k, v]) => `${k} ${v.hits} hits / ${v.misses} misses`).join(', ')} |`)
    .join('\n');
  const ceilings = out.results
    .filter((r) => r.server === 'ceiling' && !r.config)
    .map((r) => `| ${r.scenario}${r.model ? SPEED_ONLY_MARK : ''} | ${r.items_per_s} (batch ${r.batch}) | ${Number.isFinite(r.raw_items_per_s) && r.raw_items_per_s !== null ? r.raw_items_per_s : 'not measured'} | ${ms(r.cpu_ms_per_item)} | ${r.single_p50_ms} / ${r.single_p99_ms} |`)
    .join('\n');
  const s = out.summary;
  const m = out.machine;
  const la = (x: unknown) => (x as number[] | undefined)?.map((v) => v.toFixed(1)).join(' / ') ?? '?';
  const others = (x?: OtherCpu[]) => (x?.length ? x.map((o) => `\`${o.command}\` (nice ${o.nice}, ${o.cores} cores)`).join(', ') : 'nothing else');
  const shapes = (out.speed_only_models ?? []).map((x) => `- \`${x.name}\`: ${x.like}; ${(x.parameters / 1e6).toFixed(1)} M parameters, ${x.max_length}-token window.`).join('\n');
  const md = `# Performance

Generated by \`npm run bench${out.quick ? ' -- --quick' : ''}\` (\`bench/run.ts\`) from ${out.started}${out.wall_s ? ` (${out.wall_s} s wall)` : ''}, ${out.seconds_per_point} s per point (the DistilBERT shape: longer). Machine: ${m.cpus} × ${m.cpu}, ${m.memory_gb} GB, Node ${m.node}; load average (1/5/15 min) ${la(m.loadavg_at_start)} at start, ${la(m.loadavg_at_end)} at the end. Other processes using the CPU (sampled over one second): at start ${others(m.other_cpu_at_start)}; at the end ${others(m.other_cpu_at_end)}. With ${m.cpus} cores, anything else running takes its share from every figure: compare ratios measured side by side in one run, not figures across runs. Raw numbers: \`bench/results/latest.json\`.

\`\`\`sh
npm run bench -- --quick     # 79-88 s here (the target is < 90 s): c1 and c32, 1.5 s points (DistilBERT shape: 3 s at c1, a steady window at c32), a small collection on SQLite, no pinned configuration
npm run bench                # the full run: c1/8/32/128, open loop, every demo scenario, the pinned configuration, 10,000+ chunks on both stores
npm run bench -- --render    # this page again from bench/results/latest.json (and tuning.json)
npm run bench:collections    # collection ingest and QA alone (bench/results/collections.json)
npm run bench:request-cost   # the per-request cost of the cache-hit and miss paths (embeddings, QA), two builds side by side
\`\`\`

Three servers do the same work in one run:
- **ceiling**: in-process, no HTTP and no queue: tokenization (\`src/inference/tokenizer.ts\`) plus ONNX Runtime in two worker threads (one session each, intra-op 1, both cores), at its best batch size; *raw* is ONNX Runtime alone on pre-tokenized input; *single* is one item at a time on one thread (the least concurrency 1 can cost). Its CPU per item is this process's CPU (all threads) over the measured loop.
- **naive**: Fastify calling the transformers.js pipeline per request (\`bench/naive-server.ts\`), what a Node user would write first (no such pipeline for similarity pairs or essay scoring). Its ONNX Runtime uses the default thread settings, so one call can use both cores. Its QA pipeline truncates the context to one window (\`truncation: true\`, no stride), so on the demo QA it does less work than the gateway and the ceiling (2 windows for 300 words, ~20 for 3,000) and cannot find an answer past the first window; on the DistilBERT shape the 300-word context fits one 384-token window, so all three do the same work.
- **gateway**: \`node --import tsx src/server.ts\` with the demo models loaded at boot from \`models/*.zip\`, the speed-only stand-ins below, and any \`models/<name>-int8.zip\`, caches off (every request body is unique anyway).

**Speed-only models** (\`bench/stand-ins.ts\`, built at bench time into the OS temp folder, never shipped or served outside the bench; every row with them says *speed-only*): random-weight encoders (\`test/fixtures/stand-in-onnx.ts\`, Optimum's input and output names) with real tokenizers from \`../shared/data/real-models\`. They cost what the real models cost per token and answer nothing.
${shapes}

The load generator (autocannon, \`bench/load.ts\`) is one process at nice 10 for the whole run; percentiles are exact over every response. **Server CPU per item** is the server process's CPU time (all its threads, \`/proc/<pid>/stat\`), read by the load generator just before its first request and just after its last answer, over the items answered in that window; the load generator's own CPU is never in it. *Of which main thread* is the event loop's share (\`/proc/<pid>/task/<pid>/schedstat\`): HTTP, JSON, routing, short texts' tokenization. RSS from \`/proc/<pid>/status\` after the point. Items are sentences (similarity: 2 per request, classification: 16 per request), QA items or essays. Before each point the bench waits until the server is idle (whatever an earlier point left in flight is finished).

## Targets
${targetsTable(s)}

${NOTES}

## Side by side at concurrency 32
${ratiosTable(out)}

![server CPU per item at concurrency 32: ceiling, gateway, naive](performance-cpu.svg)

![throughput (items/s) and p99 against concurrency, per scenario; dashed: the ceiling](performance.svg)

## Concurrency 1 budgets
${budgetsTable(s)}

## Ceiling (items/s)
| scenario | tokenize + ONNX Runtime, 2 threads | raw ONNX Runtime, 2 threads | CPU per item | single item p50 / p99 ms |
| --- | --- | --- | --- | --- |
${ceilings}

## Closed loop (concurrency = connections, each waits for its answer)
${LOAD_HEAD}
${closed}
${open ? `\n## Open loop (a fixed arrival rate, 3/4 of the gateway's best closed-loop rate, over 128 connections)\n${LOAD_HEAD}\n${open}\n` : ''}
## Pinned: client on one core, server on the other
${pinnedSection(out)}

## fp32 and int8
${int8Section(out)}

## Collection QA
${collectionsSection(out)}

## Caches: the cache-hit path
A gateway with the default caches on, each of 32 connections cycling through the same 64 request bodies, after one pass over them that fills the caches. (Without that pass all 32 connections send body 0 at once, then body 1, and so on: concurrent identical requests all miss, since the gateway does not merge identical requests in flight.)

${LOAD_HEAD.split('\n').map((l, i) => `${l} ${i ? '--- |' : 'cache |'}`).join('\n')}
${cached}

A hit skips tokenization, the queue and the model, so this path is HTTP, routing, validation, the cache lookup and JSON alone: the per-request floor of this stack. The embedding cache is per sentence and shared by the similarity, batch, file, embeddings and HF routes; QA and classification cache exact results; both are keyed by model version, bounded in bytes (\`cache.embeddingBytes\`, \`cache.resultBytes\`) and counted in \`gateway_cache_hits\` / \`gateway_cache_misses\`.

${REQUEST_COST}

## Summary keys
\`bench/results/latest.json\` \`summary\`; \`<s>\` is a scenario (\`embeddings\`, \`qa300\`, \`minilm_embeddings\`, \`minilm_int8_embeddings\`, \`distilbert_qa300\`; in a full run also \`similarity\`, \`qa3000\`, \`classify16\`, \`essay400\`; \`<model>_fp32\` / \`<model>_int8\` for a demo model with an int8 zip), \`<store>\` is \`sqlite\` or \`postgres\`. A key whose figure was not measured in a run is null or absent.

| key | what |
| --- | --- |
| \`<s>_c32_items_per_s\` | gateway items/s at concurrency 32 |
| \`<s>_c32_vs_ceiling\` | gateway items/s at c32 / ceiling items/s (two threads, best batch) |
| \`<s>_c32_vs_naive\` | gateway items/s / naive items/s, both at c32 |
| \`<s>_c32_cpu_ms_per_item\`, \`<s>_ceiling_cpu_ms_per_item\` | server CPU ms per item: gateway at c32, ceiling at its best batch |
| \`<s>_c32_cpu_vs_ceiling\` | gateway CPU per item / ceiling CPU per item |
| \`<s>_c32_naive_cpu_vs_gateway\` | naive CPU per item / gateway CPU per item, both at c32 |
| \`<s>_c1_p99_ms\`, \`<s>_c1_p99_budget_ms\` | gateway p99 at concurrency 1; its budget, the ceiling's single-item p99 + 5 ms |
| \`c1_p99_budgets_met\`, \`c1_p99_budgets_total\` | scenarios within their c1 budget, of those measured at c1 |
| \`<s>_pinned_c32_vs_ceiling\`, \`<s>_pinned_c32_vs_naive\`, \`<s>_pinned_c32_cpu_vs_ceiling\` | the same ratios with the client on core 0 and the servers on core 1 (one-thread ceiling) |
| \`<s>_vs_fp32_c32\`, \`<s>_vs_fp32_ceiling\`, \`<s>_cpu_vs_fp32_c32\` | for an int8 scenario: its gateway c32 items/s, ceiling items/s and gateway CPU per item over its fp32 scenario's |
| \`int8_pairs\` | fp32/int8 pairs measured |
| \`cache_hit_embeddings_cpu_us_per_request\`, \`cache_hit_embeddings_main_thread_us_per_request\`, \`cache_hit_embeddings_rps\` | the cache-hit path (embeddings, 64 repeated sentences, c32): server CPU µs per request, its main-thread part, requests/s |
| \`cache_hit_qa_cpu_us_per_request\`, \`cache_hit_qa_rps\` | the same for QA-300 (64 repeated questions) |
| \`fastify_floor_cpu_us_per_request\`, \`cache_hit_embeddings_vs_fastify_floor\` | Fastify alone (\`bench/fastify-floor.ts\`: a validated POST answered with the bytes of the embeddings hit, no hooks, no logger) measured right after the hit point, and the hit's CPU per request over it |
| \`collection_ingest_vs_ceiling_<store>\` | ingest chunks/s / embedding ceiling chunks/s at the same chunk texts |
| \`collection_qa_c1_p50_vs_ceiling_<store>\` | collection QA p50 at c1 / the in-process ceiling's p50 |
| \`collection_qa_c32_vs_ceiling_<store>\` | collection QA questions/s at c32 / twice the ceiling's one-at-a-time rate (an estimate of its 2-core rate) |
| \`collection_chunks\` | chunks in the collection |
| \`boot_ready_s\` | start of the main gateway to ready, all its models |

## Tuning
${tuningSection(tuning)}

${TUNING_NOTES}
`;
  writeFileSync('docs/performance.md', md);
}

/** What the figures of the committed run say (written from that run's tables; update with them). */
const NOTES = `## What limits the figures
(Written from the nine quick runs of 2026-12-06 morning, the committed one last, on this build or one step before; see the tables below. This VM's speed moved by half between runs (the DistilBERT-shape ceiling's CPU per item ranged 296-449 ms, Fastify alone 32-47 µs a request): compare ratios of one run, and read single figures with the ranges below.)
- **Wall time of the quick run** (target < 90 s, **met**: 79-88 s in the ten runs since the cuts, 100-118 s before; 80 s in the committed run, whose hit point warms 3 s): stand-ins 1.5 s, ceilings 10-12 s (the DistilBERT shape 4.5-5.5 s of it; each ceiling now loads its sessions once, not three times), boots 12-17 s (the main gateway's six models, the naive server, the cache-hit and collection gateways, side by side on two cores), 17 measured points 35 s, int8 drift 3 s, cache hit and Fastify floor 9 s, collections 8 s (\`phases_s\` in latest.json). Cut 2026-12-06: autocannon ends a run at its first sample tick after the duration, and with its default 1 s ticks every 1.5 s point ran 2 s and every 0.5 s warm-up 1 s (\`sampleInt\` 100 ms now); the DistilBERT-shape c1 point 3 s instead of 4, collection points 1.5 s, the cache-hit gateway boots only sts-demo in a quick run.
- **DistilBERT-shape QA-300** (speed-only; target ≥ 0.95, **met** in six of eight runs: 0.91-1.15 of the ceiling's throughput (the quick ceiling runs only 12 items), CPU per item 0.92-1.08× the ceiling's; 0.73 on 2026-12-05). Two changes: its c32 point is measured at steady state (\`bench/load.ts\` Job.steady, \`bench/steady-window.ts\`: 8 answers skipped while the queue fills, then from the end of one burst of answers to the end of another 24 later, in-flight requests abandoned): the fixed 40 requests before ended in a tail where one worker idled (1.56 cores used; 1.96 now). And \`inference.maxBatchTokens\` 512 (was 1024): a 384-token window runs alone instead of in threes, 0.94× the CPU per item side by side (Tuning below). Items/s below 100 keep three digits (at ~6/s a whole number was ±8%).
- **Demo-size embeddings** (2 layers × 128): the model costs ~0.3-0.45 ms of CPU per sentence in the ceiling, so HTTP, JSON, validation and the worker hop are most of the gateway's cost: 1.33-2.63× the ceiling's CPU per item at c32 across the runs (target ≤ 1.2, not met). Fastify's own validated POST costs 30-47 µs and a cache hit 70-133 µs here; on a miss the event loop also tokenizes (~40 µs), prints the vector (sts-demo 3.0.0's 256 floats since its lexical channel: ~45 µs with JavaScript's own printing, ~16 µs since the float32 printer of 2026-12-06 afternoon, Per-request cost below), posts the batch to a worker and takes the answer back. sts-demo 3.0.0 against 2.0.0, two gateways side by side (\`bench/ab-config.ts\`, \`GATEWAY_MODELS\` in A and B, 5 rounds): 0.88× the items/s and 1.13× the server CPU per item at c32 (the channel's gather and scatter in the graph, twice the floats to print); cache hits cost the same (0.95×). So this run's ratio to the ceiling is not comparable with the runs before 2026-12-06 10:50. Batch several sentences per request (\`input: [...]\`) where a client can.
- **Cache hit** (target ≤ 40 µs, not met): 80-133 µs of server CPU a request in the quick runs, 2.4-3.0× Fastify alone answering the same bytes in the same run (\`cache_hit_embeddings_vs_fastify_floor\`; 32-47 µs; 3.7× in the one run whose build also sent \`x-model-version\` on hits, below). The quick bench's hit reads higher than \`bench:request-cost\`'s (69-72 µs against a floor of 30-32 the same morning), partly because the gateway is still settling after a short warm-up: four 1.5 s hit points in a row after 1.5 s of warm-up measured 91, 76, 81 and 68 µs (floor 35.5). The hit point now warms 3 s (86 µs against a floor of 34 in the committed run). The same steps alone (one gateway serving sts-demo, 64 bodies filled, 3 s warm, 1.5 s points; a scratch script, 2026-12-06 afternoon) read 61-66 µs, so the warm-up is not all of it: something else in the run's context raises the quick run's figure (not found; the load generator is the same kind of process in both, and the run's other servers are idle by then). Side by side with the build before (Per-request cost below), the cuts of 2026-12-06 took it from 89 to 69 µs (floor 32 in that run). A V8 profile after them, against Fastify alone at the same load: response headers (the gateway sends ~19: request id, timings, helmet's security set) ~5 µs over the floor in Node's header validation and Fastify's reply.header, \`writev\` ~4 µs more, prom-client's two updates ~2 µs, the LRU lookup ~1.3 µs, Fastify's per-request pino child ~1.5 µs, the route, request context and cache lookup ~1 µs each. The target needs ~30 µs cut from a stack whose framework alone takes ~32: it is not reachable without answering hits before Fastify (no hooks, no auth, no metrics), which the gateway will not do.
- **Log level**: the benchmarks run at \`server.logLevel\` warn. At the default, info, every request writes an access line: \`HIT=1 A='{"GATEWAY_SERVER__LOG_LEVEL":"warn"}' B='{"GATEWAY_SERVER__LOG_LEVEL":"info"}' node --import tsx bench/ab-config.ts\` (two gateways side by side, rounds alternating, medians of 5, two runs): a cache hit costs 1.22-1.33× the CPU at info (~57 → ~72-78 µs a request) and answers 0.75-0.83× the requests/s. Where the last µs matter, ship access logs from Nginx and run the gateway at warn.
- **Batch formation under load** (\`inference.fillWaitMs\`, default 2 ms, since 2026-12-05): a free worker no longer takes the first request back alone while the clients whose answers just went out are still sending their next one. MiniLM-shape embeddings at c32: 0.88-1.19× the ceiling's CPU per item (target ≤ 1.05, met in six of nine runs) and 1.73-2.95× the naive server's throughput (target ≥ 2, met in six of nine).
- **int8** (static activation scales, batch-invariant): the MiniLM shape gains 1.58-2.19× throughput through the gateway at c32 (target ≥ 1.5, met in every run; 2.0-3.2× in the ceiling); the tiny qa-demo 0.55-1.38× through the gateway in the runs before 2026-12-06 11:00, and **1.33 and 1.53** in the two runs since (1.1-1.85× in the ceiling). The earlier figures were the bench's fault: the qa_demo_int8 point ran right after the naive server's QA-300 c32 point, and the naive server was still working through the ~32 requests that point left in flight (~3 s of CPU), so the gateway got one core (0.98 cores used against 1.76 for fp32). Every point now waits until all the run's servers are idle (\`waitIdle\` in bench/run.ts; it waited for the point's own server only); the int8 point then uses 1.70-1.76 cores. An ONNX Runtime profile of qa-demo (one thread, 256-token windows, 2026-12-06 afternoon) puts its Linear layers at ~2.1 of 4.1 ms in fp32 and ~0.74 of 2.7 ms in int8 (2.8× faster); the attention products, Softmax, the bias and mask Adds, GELU, LayerNorm and the lexical features, fp32 in both, are the other half, so the model alone gains 1.45-1.61× (models/README.md). Side by side through two gateways (\`THREADS=1 ... bench/ab-config.ts\`, A and B naming the fp32 and int8 zip, medians of 7 rounds): qa-demo 1.28× the questions/s (its inference threads 1.47×; ~1.8 ms a question is the gateway's own, the same for both), rerank-demo 1.34× (1.54×), retrieve-demo 1.42× (1.67×): for models this small 1.5× through the gateway is out of reach, and the quick run's 1.33-1.53 for qa-demo is the noise of 1.5 s points around ~1.3.
- **c1 p99 budgets** (ceiling single p99 + 5 ms): 4 of 4 met in three runs of nine, 1-3 in the others (before the idle wait above, the qa300 and minilm c1 points could also follow a naive c32 point still at work; since: 2 and 4 of 4 in two runs): on 1.5 s points a c1 p99 is the 5th-largest of ~500 samples, and a neighbour's burst on this VM moves it by more than 5 ms. The full run's 6 s points are the ones to judge by.
- The quick run's collection is 599 chunks; the 11,058-chunk run per store is in docs/collections.md and in the full run.
- **The full run of 2026-12-06 afternoon** (20 min; the first full run since 2026-12-01, so the first with every figure of the second performance pass) adds three misses the quick runs cannot show. **Collection ingest on PostgreSQL: 0.09 of the embedding ceiling** (92 chunks/s; SQLite 0.93): the store, not the gateway, is the limit. The only PostgreSQL with pgvector here is PGlite, PostgreSQL compiled to WASM running single-threaded inside the bench process (Debian bookworm has no pgvector package, FACTS.md), and its HNSW inserts are slow: PGlite alone, 1,000 random 256-number vectors in multi-row INSERTs as the store writes them, 3.3 ms a row with the HNSW index against 0.36 ms without, and 0.59 ms a chunk for its ~60 BM25 term rows (a scratch script); the collection's vectors are retrieve-demo 3.0.0's 1,024 numbers, and at 11,058 of them the gateway's 92 chunks/s is ~11 ms a chunk. With retrieve-demo 2.x's 128 numbers it was 230 chunks/s (0.26; docs/collections.md). A native PostgreSQL server is not measured. **Two of eleven c1 p99 budgets**: classify16 (10.3 ms against 8.1) and the DistilBERT shape (321.6 against 318.0 ms, 1% over on a 300 ms item); the other nine are met. classify16's budget is one text's ceiling latency (single p99 3.1 ms) plus 5 ms, while each request carries 16 texts (the gateway answers all 16 in 3.4 ms at p50, split over both workers): a budget from the ceiling doing one request's 16 texts would be the fair one, and the bench does not measure that yet. And embeddings CPU per item is 1.79× the ceiling's here because this run's ceiling read 280 µs a sentence (337 in the quick run an hour before; the gateway 499 against 494).
- Boot: models load as soon as their own download is done (config order kept), instead of after every download; the main gateway's model cache persists across bench runs.`;

/** The per-request cost work, measured before and after each change (update when the request path changes). */
const REQUEST_COST = `## Per-request cost
**Printing vectors** (2026-12-06 afternoon): a V8 profile of the embeddings miss path (\`npm run bench:request-cost -- --only miss-embeddings --cpu-prof DIR\`) put 16% of the event loop in printing the vector (\`Float32Array.prototype.join\`: the 17 digits of each float32's double, ~45 µs for sts-demo's 256 numbers). Vectors are now printed by \`src/routes/float32-json.ts\` on \`/v1/embeddings\`, TEI's \`/embed\` and Hugging Face feature-extraction: each number with at most 9 significant digits, the text that reads back as the same float32 (as TEI prints them, give or take a digit), written byte by byte: ~16 µs for 256 numbers, and 41% fewer bytes (3.1 against 5.3 KB). Side by side with the build before (\`--against HEAD --only miss-embeddings,hit-embeddings --rounds 7\`, two runs, medians):

| path | before µs/request | after | main thread before / after | requests/s before / after |
| --- | --- | --- | --- | --- |
| miss, /v1/embeddings, caches off (run 1, 5 rounds) | 497.0 | **409.9** | 194.5 / 134.0 | 2,839 / 3,377 |
| miss, /v1/embeddings, caches off (run 2) | 442.6 | **399.3** | 172.2 / 129.4 | 3,072 / 3,541 |
| cache hit, /v1/embeddings (run 2; a hit prints nothing) | 58.2 | 58.9 | 57.2 / 58.3 | 16,661 / 16,775 |

Earlier cuts, \`npm run bench:request-cost -- --against 739c010 --rounds 5\` (2026-12-06 morning, the tree before the cuts below, booted side by side, rounds alternating; medians of 5 rounds of 3 s at c32; load 1.7-2.1):

| path | before (739c010) µs/request | after | main thread before / after | change |
| --- | --- | --- | --- | --- |
| cache hit, /v1/embeddings (64 repeated sentences) | 89.2 | **69.1** | 83.4 / 67.8 | -23% (every round after, 64-89, at or below every round before, 81-94) |
| cache hit, /v1/qa 300 words (64 repeated questions) | 104.9 | 98.2 | 97.0 / 95.3 | -6%, within noise (rounds 88-114 after, 100-112 before) |
| miss, /v1/embeddings, caches off | 487.8 | 494.3 | 195.5 / 191.1 | within noise |
| Fastify alone (a validated POST answering the same bytes) | 32.2 | | | the framework's floor |
| Fastify alone + the gateway's response headers | 38.8 | | | the headers: ~7 µs |

What changed on 2026-12-06, from V8 profiles of the hit path against Fastify alone: GC was the largest difference (~6 µs a request more than the floor; ~1 µs after). The request's service context was an object literal with a getter (\`signal\`), built for every request; it is a class now, the getter on its prototype (\`uncached()\` replaces the three \`{ ...ctx }\` spreads that would drop it). \`registry.resolve\` answers the common case (one task, its default or a named model of it, ready) without building closures (tsx's \`__name\` wrapped each one, ~1 µs), and lends a version with one release function made once per version. \`embed()\` answers one text without building a Set and a Map. A side-by-side run of the build before and after (\`--against HEAD\`, same day): 86.9 → 62.8 µs. One more header costs more here than it should: sending \`x-model-version\` on cache hits too measured +13-19 µs a request side by side (76.4 against 57.0 µs for the same build without it; Fastify alone with and without that header at the same response size: 31.4 against 32.3), so a hit does not send it (its body's \`model_version\` says the version); \`x-cache\` on embeddings costs nothing measurable (60.3 against 59.8). Why the header costs the gateway and not Fastify alone I did not find.

Earlier (2026-12-02, \`--against 4698311 --rounds 7\`): 119.6 → 90.8 µs for the embeddings hit. What changed, from V8 profiles (\`--cpu-prof\`) of the hit path: printing the 128 floats of each vector was the largest self time (\`serializeEmbeddingList\`, ~10% of the main thread): a vector's JSON text is now printed once and kept beside the cached vector (a \`WeakMap\`), so a repeated input is served as text; \`AbortController\` creation (~3%) now happens only when work is queued (the services read the signal lazily); each route's own \`onResponse\` hook knows its metrics label (no \`routeOptions\` object per request); request-context hooks are callback-style; the access-log line is built only when info logging is on. The ≤ 40 µs target stays out of reach: after both rounds of cuts the hit still costs ~2-2.5× Fastify's own floor, spread over headers, the socket write, metrics, the LRU lookup and the per-request logger (What limits the figures, above).`;

/** Why the defaults are what they are (written from the tuning table above; update with it). */
const TUNING_NOTES = `What the sweeps say (this one on 2026-12-01 with this run's code, and two on 2026-11-22 with the code of then, one under training load; at this noise level, ±30% between repeats of the same setting, only differences seen in more than one sweep count):
- **Two inference workers, one ONNX Runtime thread each** (\`inference.workers\` × \`intraOpThreads\` = cores) stays: one worker with two intra-op threads was slower in all three sweeps (embeddings c32 -20% to -41%, QA-300 c32 -23% here, c1 p99 +2 to +8 ms), as in FACTS.md.
- **\`maxBatchTokens\` 512** since 2026-12-06 (1024 before): \`node --import tsx bench/ab-config.ts\` ran 1024 and 512 side by side, rounds alternating (medians of 3, 512 against 1024): DistilBERT-shape QA-300 c32 items/s 1.08× with 0.94× the CPU per item (a 384-token window now goes alone instead of in threes), MiniLM-shape 30-word sentences 1.07× (0.96× CPU), qa-demo QA-300 1.00× (0.97× CPU, p99 lower), short sentences on sts-demo 1.09× and on the MiniLM shape 1.02× (32 of them fit either budget). The sweep of 2026-12-01 above, one gateway after another, had 512 26% lower on embeddings, a difference the side-by-side rounds did not show (noise at ±30%); 4096 was 14% lower on QA with a higher p99 and on 2026-11-22 8192 cut QA-300 c32 by a third. The ceiling says why: batches of long sequences cost more per item than single ones (DistilBERT shape, QA windows of 256), while short sentences still share a call 32 at a time.
- **\`maxBatchSize\` 32** stays: 8 looked better on 2026-11-22 (with 4096 tokens, before the other changes of this run) and was 22% lower on embeddings here, even on QA.
- **\`maxWaitMs\` 0** stays: 2 ms added 3 ms to the c1 p50 and lowered throughput here (embeddings -26%, QA -29%); a plain wait leaves a core idle. **\`fillWaitMs\` 2** (2026-12-05) waits only under load, for clients whose answers just went out: see "What limits the figures" (the sweep's rows for 0 and 5 ms are from the next \`--tune\` run).
- **\`tokenizeInlineMaxChars\` 2000** stays: 0 (every sentence through the tokenizer pool) was slower for sentences (-38% here) and for QA in every sweep.
- **Free workers share the queue** (not a knob): with two idle workers each takes at most half of what is queued, so the two windows of one QA-300 request run side by side at c1; under load one worker frees up at a time and takes a full batch.
- **Inference threads at nice 5**: under saturation the event loop keeps the CPU it needs to parse, admit and answer. The flip side, seen in the first quick runs of 2026-11-22: while other nice-0 work (training) shares the machine, the gateway's inference threads lose to it and the gateway falls further behind the nice-0 ceiling and naive server.
- **Not tuned, measured** (2026-12-06, \`bench/ab-config.ts\`, two gateways side by side, medians of 5 rounds): ONNX Runtime's CPU memory arena (a temporary knob) gave 0.99-1.09× the items/s on sts-demo, MiniLM-shape and QA-300 for 60-100 MB more RSS, within the noise; V8's young generation through \`NODE_OPTIONS=--max-semi-space-size=32\` (or \`=4\`) cost the cache-hit path 1.19× (1.26×) the CPU of Node's default, where the same configuration against itself reads 1.03-1.07×. Both stay at their defaults.`;
