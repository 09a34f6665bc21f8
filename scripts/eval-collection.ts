/**
 * Question answering over a collection, evaluated end to end through the gateway's own routes:
 * a SQuAD-format file becomes a collection (each paragraph a document), every question is asked, and the
 * script reports retrieval recall@1/5/20 (the question's own paragraph among the retrieved chunks' documents)
 * and end-to-end EM/F1 (official SQuAD normalisation, best over the gold answers) for vector, keyword (BM25) and
 * hybrid retrieval, each with and without reranking. Keyword without reranking is the baseline.
 *
 *   npm run eval:collection -- --squad ../shared/data/qa-train/squadshifts_new_wiki_v1.0.json [--limit 1000]
 *     [--config FILE] [--embedding-model NAME] [--rerank-model NAME] [--reader NAME] [--retrieve-k 10] [--out FILE]
 *     [--modes keyword,vector,hybrid] [--keyword-weights 0.5,0.7] (hybrid rows at these keyword_weight values besides
 *     the model's default)
 *
 * The gateway runs in this process (the committed default config, or --config), on a throwaway collections folder.
 */
import Fastify from 'fastify';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import app, { serverOptions } from '../src/app.ts';
import { loadConfig } from '../src/config/load.ts';
import { emF1 } from './squad-metrics.ts';

interface Squad {
  data: { title: string; paragraphs: { context: string; qas: { id: string; question: string; answers: { text: string }[]; is_impossible?: boolean }[] }[] }[];
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      squad: { type: 'string' },
      limit: { type: 'string' },
      config: { type: 'string' },
      'embedding-model': { type: 'string' },
      'rerank-model': { type: 'string' },
      reader: { type: 'string' },
      'retrieve-k': { type: 'string' },
      out: { type: 'string' },
      modes: { type: 'string' },
      'keyword-weights': { type: 'string' },
    },
  });
  if (!values.squad) throw new Error('usage: eval-collection --squad FILE [--limit N] [--config FILE] ...');
  const raw = readFileSync(values.squad);
  const squad = JSON.parse((values.squad.endsWith('.gz') ? gunzipSync(raw) : raw).toString('utf8')) as Squad;
  const docs: { id: string; text: string; title: string }[] = [];
  const questions: { question: string; doc: string; answers: string[] }[] = [];
  squad.data.forEach((article, a) =>
    article.paragraphs.forEach((p, i) => {
      const id = `p${a}-${i}`;
      docs.push({ id, text: p.context, title: article.title });
      for (const q of p.qas) if (!q.is_impossible && q.answers.length) questions.push({ question: q.question, doc: id, answers: q.answers.map((x) => x.text) });
    }),
  );
  const limit = values.limit ? Number(values.limit) : questions.length;
  // A fixed stride through the file, so a limited run still covers every article.
  const step = Math.max(1, Math.floor(questions.length / limit));
  const asked = questions.filter((_, i) => i % step === 0).slice(0, limit);

  const config = loadConfig({
    env: { ...process.env, ...(values.config ? { GATEWAY_CONFIG: values.config } : {}) },
    overrides: { server: { logLevel: 'warn' }, collections: { store: 'sqlite', dir: mkdtempSync(path.join(tmpdir(), 'eval-collection-')), maxDocumentsPerRequest: 1000, maxChunksPerCollection: 10_000_000 } },
  });
  const fastify = Fastify({ ...serverOptions(config), logger: false });
  await fastify.register(app, { config });
  await fastify.ready();
  await fastify.models.boot();
  const post = async (url: string, payload: unknown) => {
    const r = await fastify.inject({ method: 'POST', url, payload: payload as object });
    if (r.statusCode >= 300) throw new Error(`${url}: ${r.statusCode} ${r.body.slice(0, 300)}`);
    return r.json();
  };
  const t0 = performance.now();
  const created = await post('/v1/collections', { name: 'eval', ...(values['embedding-model'] ? { embedding_model: values['embedding-model'] } : {}) });
  for (let i = 0; i < docs.length; i += 500) await post('/v1/collections/eval/documents', { documents: docs.slice(i, i + 500).map((d) => ({ id: d.id, text: d.text, metadata: { title: d.title } })) });
  const info = (await fastify.inject('/v1/collections/eval')).json();
  const ingestSeconds = (performance.now() - t0) / 1000;
  process.stderr.write(`ingested ${docs.length} paragraphs as ${info.chunks} chunks in ${ingestSeconds.toFixed(1)} s (${created.embedding_model})\n`);

  const hasRanker = fastify.models.list().some((m) => m.task === 'text-ranking' && m.state === 'ready');
  const modes = (values.modes ?? 'keyword,vector,hybrid').split(',') as ('keyword' | 'vector' | 'hybrid')[];
  const weights = values['keyword-weights']?.split(',').map(Number) ?? [];
  const settings = modes.flatMap((mode) => [{ mode, weight: undefined as number | undefined }, ...(mode === 'hybrid' ? weights.map((weight) => ({ mode, weight })) : [])]);
  const configs = settings.flatMap((s) => [{ ...s, rerank: false }, ...(hasRanker ? [{ ...s, rerank: true }] : [])]);
  const retrieveK = Number(values['retrieve-k'] ?? 10);
  const rows: Record<string, number | string | boolean>[] = [];
  for (const c of configs) {
    const rerank = c.rerank ? { candidates: 20, ...(values['rerank-model'] ? { model: values['rerank-model'] } : {}) } : undefined;
    const hitsAt = { 1: 0, 5: 0, 20: 0 };
    let em = 0;
    let f = 0;
    const t = performance.now();
    for (const q of asked) {
      const weight = c.weight === undefined ? {} : { keyword_weight: c.weight };
      const search = await post('/v1/collections/eval/search', { query: q.question, top_k: 20, mode: c.mode, ...weight, ...(rerank ? { rerank } : {}) });
      const ids: string[] = search.results.map((r: { document_id: string }) => r.document_id);
      for (const k of [1, 5, 20] as const) if (ids.slice(0, k).includes(q.doc)) hitsAt[k]++;
      const qa = await post('/v1/collections/eval/qa', { question: q.question, top_k: 1, retrieve_k: retrieveK, mode: c.mode, ...weight, ...(rerank ? { rerank, read_k: Math.min(5, retrieveK) } : {}), ...(values.reader ? { model: values.reader } : {}) });
      const answer: string = qa.answers[0]?.answer ?? '';
      const [e, fs] = emF1(answer, q.answers);
      em += e;
      f += fs;
    }
    const n = asked.length;
    const row = {
      retrieval: c.weight === undefined ? c.mode : `${c.mode}, keyword_weight ${c.weight}`,
      rerank: c.rerank,
      'recall@1': +(hitsAt[1] / n).toFixed(3),
      'recall@5': +(hitsAt[5] / n).toFixed(3),
      'recall@20': +(hitsAt[20] / n).toFixed(3),
      EM: +((100 * em) / n).toFixed(1),
      F1: +((100 * f) / n).toFixed(1),
      'ms/question': +((performance.now() - t) / n).toFixed(1),
    };
    rows.push(row);
    process.stderr.write(`${JSON.stringify(row)}\n`);
  }
  await fastify.close();
  const models = { embedding: created.embedding_model, reader: values.reader ?? fastify.models.list().find((m) => m.task === 'question-answering' && m.default)?.name, rerank: hasRanker ? (values['rerank-model'] ?? 'default') : 'none' };
  const table = [
    `| retrieval | rerank | recall@1 | recall@5 | recall@20 | EM | F1 | ms/question |`,
    `| --- | --- | --- | --- | --- | --- | --- | --- |`,
    ...rows.map((r) => `| ${r.retrieval}${r.retrieval === 'keyword' && !r.rerank ? ' (baseline)' : ''} | ${r.rerank ? 'yes' : 'no'} | ${r['recall@1']} | ${r['recall@5']} | ${r['recall@20']} | ${r.EM} | ${r.F1} | ${r['ms/question']} |`),
  ].join('\n');
  const summary = { file: path.basename(values.squad), paragraphs: docs.length, chunks: info.chunks, questions: asked.length, of: questions.length, retrieveK, models, ingestSeconds: +ingestSeconds.toFixed(1), rows };
  if (values.out) writeFileSync(values.out, `${JSON.stringify(summary, null, 2)}\n`);
  process.stdout.write(`${table}\n\n${JSON.stringify({ ...summary, rows: undefined })}\n`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname)) {
  main().catch((err: unknown) => {
    process.stderr.write(`eval-collection: ${(err as Error).message}\n`);
    process.exitCode = 1;
  });
}
