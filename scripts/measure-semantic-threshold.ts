/**
 * Chooses the semantic cache's default threshold from measurements: for thresholds 0.80 to 0.99, the hit rate and
 * the precision (a hit's cached answer equals the answer the model gives the new input) on three sets.
 *
 * - `sts-dev` and `sts-train` (classification): the STS Benchmark's first sentences are cached, each second
 *   sentence is looked up among all of them (as the cache does: the nearest in the scope), and a hit is right
 *   when the classifier's label for the cached sentence is its label for the new one. The pairs scored >= 4 (of 5)
 *   are the paraphrases; their hit rate is reported apart.
 * - `qa` (question answering, one scope per context): SQuAD-format questions arrive paragraph by paragraph, each
 *   looked up among the earlier questions on the same context (other questions on one paragraph are the
 *   look-alikes that must miss), and each question is followed by a rewrite of itself (mechanical, meaning
 *   preserving: contractions, a polite prefix, lower case without the question mark, "the name of"...), which
 *   should hit. A hit is right when the cached answer's span is the span the model gives the new question.
 *
 * Embeddings come from /v1/embeddings of the cache's embedding model with normalisation, which is what the
 * cache computes; answers from the task routes with the exact cache bypassed. The gateway runs in this process.
 *
 *   npm run measure:semantic -- [--config FILE] [--model EMBEDDER] [--qa FILE] [--paragraphs 300] [--out FILE]
 */
import Fastify from 'fastify';
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import app, { serverOptions } from '../src/app.ts';
import { loadConfig } from '../src/config/load.ts';

const THRESHOLDS = [0.8, 0.82, 0.84, 0.86, 0.88, 0.9, 0.91, 0.92, 0.93, 0.94, 0.95, 0.96, 0.97, 0.98, 0.99, 0.995, 0.999];
const TARGET_PRECISION = 0.98;

interface Lookup {
  /** Similarity of the nearest cached input (undefined: nothing cached in the scope). */
  nearest?: number;
  /** Whether the nearest cached input's answer equals the model's answer for this input. */
  same: boolean;
  /** Whether the pair is meant to be the same (a paraphrase or a rewrite). */
  paraphrase: boolean;
}

export interface CurveRow {
  threshold: number;
  hits: number;
  hit_rate: number;
  precision: number | null;
  paraphrase_hit_rate: number;
}

export function curve(lookups: Lookup[], thresholds = THRESHOLDS): CurveRow[] {
  const paraphrases = lookups.filter((l) => l.paraphrase).length;
  return thresholds.map((t) => {
    const hits = lookups.filter((l) => l.nearest !== undefined && l.nearest >= t);
    const right = hits.filter((l) => l.same).length;
    return {
      threshold: t,
      hits: hits.length,
      hit_rate: +(hits.length / lookups.length).toFixed(4),
      precision: hits.length ? +(right / hits.length).toFixed(4) : null,
      paraphrase_hit_rate: paraphrases ? +(hits.filter((l) => l.paraphrase).length / paraphrases).toFixed(4) : 0,
    };
  });
}

/** The lowest threshold from which on precision stays at or above the target (no hits counts as precise). */
export function lowestSafe(rows: CurveRow[], target = TARGET_PRECISION): number | undefined {
  let safe: number | undefined;
  for (let i = rows.length - 1; i >= 0; i--) {
    if (rows[i].precision !== null && rows[i].precision! < target) break;
    safe = rows[i].threshold;
  }
  return safe;
}

/** Meaning-preserving rewrites of an English question; deterministic (chosen by the index). */
export function rewrite(question: string, i: number): string {
  const q = question.trim();
  const rules: ((s: string) => string | undefined)[] = [
    (s) => (/^What is /.test(s) ? s.replace(/^What is /, "What's ") : undefined),
    (s) => (/^Who is /.test(s) ? s.replace(/^Who is /, "Who's ") : undefined),
    (s) => (/^(What|Who|When|Where|Which|How|Why)\b/.test(s) ? `Can you tell me ${s[0].toLowerCase()}${s.slice(1)}` : undefined),
    (s) => s.replace(/[?.!\s]+$/, '').toLowerCase(),
    (s) => (/^In what year /.test(s) ? s.replace(/^In what year /, 'What year ') : undefined),
    (s) => (/^What year /.test(s) ? s.replace(/^What year /, 'In what year ') : undefined),
    (s) => (/^Who /.test(s) ? s.replace(/^Who /, 'Which person ') : undefined),
    (s) => (/^How many /.test(s) ? s.replace(/^How many /, 'What number of ') : undefined),
    (s) => `Please answer: ${s}`,
  ];
  for (let k = 0; k < rules.length; k++) {
    const out = rules[(i + k) % rules.length](q);
    if (out !== undefined && out !== q) return out;
  }
  return `${q} Thanks.`;
}

function readSts(file: string): { s1: string; s2: string; score: number }[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => line.split('\t'))
    .filter((f) => f.length >= 7)
    .map((f) => ({ score: Number(f[4]), s1: f[5], s2: f[6] }));
}

const dot = (a: Float32Array, b: Float32Array) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
};

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      config: { type: 'string' },
      model: { type: 'string' },
      classifier: { type: 'string' },
      reader: { type: 'string' },
      qa: { type: 'string', default: '../shared/data/qa-train/squadshifts_new_wiki_v1.0.json' },
      sts: { type: 'string', default: '../shared/data/stsbenchmark' },
      paragraphs: { type: 'string', default: '300' },
      out: { type: 'string' },
    },
  });
  const config = loadConfig({ env: { ...process.env, ...(values.config ? { GATEWAY_CONFIG: values.config } : {}) }, overrides: { server: { logLevel: 'warn' } } });
  const fastify = Fastify({ ...serverOptions(config), logger: false });
  await fastify.register(app, { config });
  await fastify.ready();
  await fastify.models.boot();
  const post = async (url: string, payload: object) => {
    const r = await fastify.inject({ method: 'POST', url, payload, headers: { 'cache-control': 'no-cache' } });
    if (r.statusCode >= 300) throw new Error(`${url}: ${r.statusCode} ${r.body.slice(0, 300)}`);
    return r.json();
  };
  const chunks = <T>(xs: T[], n: number) => Array.from({ length: Math.ceil(xs.length / n) }, (_, i) => xs.slice(i * n, (i + 1) * n));
  const embedded = new Map<string, Float32Array>();
  let embedderName = '';
  const embed = async (texts: string[]) => {
    const todo = [...new Set(texts.filter((t) => !embedded.has(t)))];
    for (const c of chunks(todo, 32)) {
      const r = await post('/v1/embeddings', { input: c, ...(values.model ? { model: values.model } : {}) });
      embedderName = r.model;
      r.data.forEach((d: { embedding: number[] }, i: number) => {
        const v = Float32Array.from(d.embedding);
        const n = Math.hypot(...v);
        embedded.set(c[i], v.map((x) => x / n));
      });
    }
    return texts.map((t) => embedded.get(t)!);
  };

  const report: Record<string, unknown> = { thresholds: THRESHOLDS, target_precision: TARGET_PRECISION };
  const sets: Record<string, CurveRow[]> = {};

  // Classification on STS-B pairs.
  let classifierName = '';
  for (const split of ['dev', 'train'] as const) {
    const pairs = readSts(`${values.sts}/sts-${split}.csv`);
    const cached = [...new Set(pairs.map((p) => p.s1))];
    const queries = pairs.map((p) => p.s2);
    const labels = new Map<string, string>();
    for (const c of chunks([...new Set([...cached, ...queries])], 32)) {
      const r = await post('/v1/classify', { inputs: c, ...(values.classifier ? { model: values.classifier } : {}) });
      classifierName = r.model;
      r.predictions.forEach((p: { label: string }, i: number) => labels.set(c[i], p.label));
    }
    const cv = await embed(cached);
    const qv = await embed(queries);
    const lookups: Lookup[] = pairs.map((p, i) => {
      let best = -2;
      let at = -1;
      for (let j = 0; j < cv.length; j++) {
        if (cached[j] === p.s2) continue; // the exact cache would have answered
        const s = dot(qv[i], cv[j]);
        if (s > best) [best, at] = [s, j];
      }
      return { nearest: best, same: labels.get(cached[at]) === labels.get(p.s2), paraphrase: p.score >= 4 };
    });
    sets[`classify-sts-${split}`] = curve(lookups);
    report[`classify-sts-${split}`] = { pairs: pairs.length, paraphrases: lookups.filter((l) => l.paraphrase).length, cached: cached.length };
    process.stderr.write(`sts-${split}: ${pairs.length} lookups\n`);
  }

  // QA, one scope per context: earlier questions on the paragraph, then each question's rewrite.
  const squad = JSON.parse(readFileSync(values.qa, 'utf8')) as { data: { paragraphs: { context: string; qas: { question: string }[] }[] }[] };
  const paragraphs = squad.data.flatMap((a) => a.paragraphs).filter((p) => p.qas.length >= 2);
  const stride = Math.max(1, Math.floor(paragraphs.length / Number(values.paragraphs)));
  const chosen = paragraphs.filter((_, i) => i % stride === 0).slice(0, Number(values.paragraphs));
  const qaLookups: Lookup[] = [];
  let readerName = '';
  let n = 0;
  for (const p of chosen) {
    const arrivals = p.qas.flatMap((q, i) => [{ text: q.question.trim(), paraphraseOf: -1 }, { text: rewrite(q.question, n + i), paraphraseOf: 2 * i }]);
    n += p.qas.length;
    const r = await post('/v1/qa/batch', { items: arrivals.map((a) => ({ question: a.text, context: p.context })), ...(values.reader ? { model: values.reader } : {}) });
    readerName = r.model;
    const spans = r.results.map((x: { answers: { start: number; end: number }[] }) => (x.answers[0] ? `${x.answers[0].start}:${x.answers[0].end}` : ''));
    const vectors = await embed(arrivals.map((a) => a.text));
    for (let i = 1; i < arrivals.length; i++) {
      let best = -2;
      let at = -1;
      for (let j = 0; j < i; j++) {
        if (arrivals[j].text === arrivals[i].text) continue;
        const s = dot(vectors[i], vectors[j]);
        if (s > best) [best, at] = [s, j];
      }
      if (at < 0) continue;
      qaLookups.push({ nearest: best, same: spans[at] === spans[i], paraphrase: arrivals[i].paraphraseOf >= 0 });
    }
  }
  sets.qa = curve(qaLookups);
  report.qa = { paragraphs: chosen.length, lookups: qaLookups.length, rewrites: qaLookups.filter((l) => l.paraphrase).length };

  const safe = Object.fromEntries(Object.entries(sets).map(([k, rows]) => [k, lowestSafe(rows) ?? null]));
  const chosenThreshold = Math.max(...Object.values(safe).map((t) => t ?? 1));
  Object.assign(report, { embedder: embedderName, classifier: classifierName, reader: readerName, curves: sets, lowest_safe: safe, default: chosenThreshold });
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  if (values.out) writeFileSync(values.out, `${JSON.stringify(report, null, 2)}\n`);
  for (const [k, rows] of Object.entries(sets)) {
    process.stderr.write(`\n${k}\nthreshold  hit-rate  precision  paraphrase-hit-rate\n`);
    for (const r of rows) process.stderr.write(`${r.threshold.toFixed(2)}       ${r.hit_rate.toFixed(3)}     ${r.precision === null ? '  -  ' : r.precision.toFixed(3)}      ${r.paraphrase_hit_rate.toFixed(3)}\n`);
  }
  process.stderr.write(`\nlowest threshold with precision >= ${TARGET_PRECISION}: ${JSON.stringify(safe)} -> default ${chosenThreshold}\n`);
  await fastify.close();
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((e) => {
    process.stderr.write(`${e instanceof Error ? e.stack : e}\n`);
    process.exit(1);
  });
}
