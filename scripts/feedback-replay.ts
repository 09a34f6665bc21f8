/**
 * Replays a SQuAD-format file as users of the web form would: every question is asked through POST /v1/qa, and
 * the answer is marked through POST /v1/feedback, right when it matches a gold answer (SQuAD normalisation),
 * wrong otherwise with the gold span as the correction (what a user selecting the right words in the context
 * sends). The feedback is then exported through GET /v1/feedback/export?format=squad: the file the training
 * scripts fine-tune on (scripts/train: FEEDBACK_FILE), gathered through the real routes and store.
 *
 *   npm run feedback:replay -- --squad ../shared/data/qa-train/qed_nq_dev.json --out feedback.json [--limit N] [--config FILE]
 *
 * The gateway runs in this process on a throwaway feedback journal.
 */
import Fastify from 'fastify';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import app, { serverOptions } from '../src/app.ts';
import { loadConfig } from '../src/config/load.ts';
import { emF1 } from './squad-metrics.ts';

interface Squad {
  data: { title: string; paragraphs: { context: string; qas: { id: string; question: string; answers: { text: string; answer_start: number }[]; is_impossible?: boolean }[] }[] }[];
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { squad: { type: 'string' }, out: { type: 'string' }, limit: { type: 'string' }, config: { type: 'string' }, model: { type: 'string' } } });
  if (!values.squad || !values.out) throw new Error('usage: feedback-replay --squad FILE --out FILE [--limit N] [--config FILE] [--model NAME]');
  const squad = JSON.parse(readFileSync(values.squad, 'utf8')) as Squad;
  const items = squad.data.flatMap((a) => a.paragraphs.flatMap((p) => p.qas.filter((q) => !q.is_impossible && q.answers.length).map((q) => ({ context: p.context, q }))));
  const asked = items.slice(0, values.limit ? Number(values.limit) : items.length);

  const config = loadConfig({
    env: { ...process.env, ...(values.config ? { GATEWAY_CONFIG: values.config } : {}) },
    overrides: { server: { logLevel: 'warn' }, feedback: { store: 'journal', dir: mkdtempSync(path.join(tmpdir(), 'feedback-replay-')) }, collections: { store: 'memory' } },
  });
  const fastify = Fastify({ ...serverOptions(config), logger: false });
  await fastify.register(app, { config });
  await fastify.ready();
  await fastify.models.boot();
  let right = 0;
  let f = 0;
  for (const { context, q } of asked) {
    const r = await fastify.inject({ method: 'POST', url: '/v1/qa', payload: { question: q.question, context, ...(values.model ? { model: values.model } : {}) } });
    if (r.statusCode !== 200) throw new Error(`/v1/qa: ${r.statusCode} ${r.body.slice(0, 300)}`);
    const a = (r.json() as { answers: { answer: string; start: number }[] }).answers[0] ?? { answer: '', start: 0 };
    const [em, fs] = emF1(a.answer, q.answers.map((g) => g.text));
    const correct = em === 1;
    right += em;
    f += fs;
    const gold = q.answers[0];
    const fb = await fastify.inject({
      method: 'POST',
      url: '/v1/feedback',
      payload: {
        request_id: r.headers['x-request-id'],
        question: q.question,
        context,
        answer: { text: a.answer, start: a.start },
        correct,
        ...(correct ? {} : { correction: { start: gold.answer_start, end: gold.answer_start + gold.text.length } }),
      },
    });
    if (fb.statusCode !== 201) throw new Error(`/v1/feedback: ${fb.statusCode} ${fb.body.slice(0, 300)}`);
  }
  const exported = await fastify.inject({ url: '/v1/feedback/export?format=squad' });
  writeFileSync(values.out, exported.body);
  process.stderr.write(`feedback:replay: ${asked.length} questions, ${right} answered right (EM ${((100 * right) / asked.length).toFixed(1)}, F1 ${((100 * f) / asked.length).toFixed(1)}); feedback exported to ${values.out}\n`);
  await fastify.close();
}

main().catch((e) => {
  process.stderr.write(`${e instanceof Error ? e.stack : e}\n`);
  process.exit(1);
});
