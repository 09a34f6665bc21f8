/** Answer feedback through the API: checked against its text, tied to the answering model version, exported as SQuAD 2.0. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApp, demoZip, testConfig } from '../helpers/app.ts';

const CONTEXT = 'The nginx package provides a web server. It is maintained by the Debian Nginx Maintainers.';
const WRITE = 'write-key-0123456789abcdef';
const INFER = 'infer-key-0123456789abcdef';

let app: FastifyInstance;
const post = async (url: string, payload: unknown, key = WRITE) => {
  const r = await app.inject({ method: 'POST', url, headers: { authorization: `Bearer ${key}` }, payload: payload as object });
  return { status: r.statusCode, body: r.json(), headers: r.headers };
};

beforeAll(async () => {
  app = await buildApp(testConfig({ models: ['qa-demo', 'sts-demo'].map((name) => ({ name, source: demoZip(name) })), security: { apiKeys: [INFER, `write:${WRITE}`] } }));
});
afterAll(async () => app?.close());

describe('feedback', () => {
  it('stores right and wrong answers with corrections, tied to the model version that answered the request', async () => {
    const qa = await post('/v1/qa', { question: 'Who maintains nginx?', context: CONTEXT }, INFER);
    const best = qa.body.answers[0];
    const right = await post('/v1/feedback', { request_id: qa.headers['x-request-id'], question: 'Who maintains nginx?', context: CONTEXT, answer: { text: best.answer, start: best.start }, correct: true });
    expect(right.status).toBe(201);
    expect(right.body.model_version).toBe(qa.body.model_version);
    const start = CONTEXT.indexOf('a web server');
    const corrected = await post('/v1/feedback', { question: 'What does the package provide?', context: CONTEXT, answer: { text: 'nginx', start: 4 }, correct: false, correction: { start, end: start + 'a web server'.length } });
    expect(corrected.status).toBe(201);
    const unanswerable = await post('/v1/feedback', { question: 'When was nginx released?', context: CONTEXT, answer: { text: 'Debian', start: CONTEXT.indexOf('Debian') }, correct: false });
    expect(unanswerable.status).toBe(201);
    const stored = await app.feedback.store.all();
    expect(stored.find((r) => r.id === right.body.id)).toMatchObject({ model: 'qa-demo', model_version: qa.body.model_version, correct: true });
  });

  it('refuses feedback that does not fit its text, naming what is wrong', async () => {
    const cases: [unknown, RegExp][] = [
      [{ question: 'q', context: CONTEXT, answer: { text: 'nginx', start: 0 }, correct: true }, /answer\.text is not the context's text at answer\.start 0/],
      [{ question: 'q', context: CONTEXT, correct: false, correction: { start: 5, end: 500 } }, /correction must be a span/],
      [{ question: 'q', context: CONTEXT, correct: false, correction: { start: 9, end: 9 } }, /correction must be a span/],
      [{ question: 'q', context: CONTEXT, correct: true, correction: { start: 0, end: 3 } }, /a correction goes with "correct": false/],
      [{ question: 'q', correct: true }, /give either "context", or "collection" and "document_id"/],
      [{ question: 'q', context: CONTEXT, collection: 'c', document_id: 'd', correct: true }, /give either/],
      [{ question: 'q', collection: 'nope', document_id: 'd', correct: true }, /no document "d" in collection "nope"/],
      [{ question: '   ', context: CONTEXT, correct: true }, /question is empty/],
      [{ question: 'q', context: CONTEXT }, /correct/],
    ];
    for (const [body, message] of cases) {
      const r = await post('/v1/feedback', body);
      expect(r.status, JSON.stringify(body)).toBeGreaterThanOrEqual(400);
      expect(r.body.error.message).toMatch(message);
    }
    expect((await post('/v1/feedback', { question: 'q', context: CONTEXT, correct: true }, INFER)).status).toBe(403);
  });

  it('takes feedback on an answer read in a collection document, with the document as its context', async () => {
    await post('/v1/collections', { name: 'fb' });
    const text = `Some other text first. ${CONTEXT}`;
    await post('/v1/collections/fb/documents', { documents: [{ id: 'doc', text }] });
    const start = text.indexOf('Debian Nginx Maintainers');
    const r = await post('/v1/feedback', { question: 'Who maintains nginx?', collection: 'fb', document_id: 'doc', answer: { text: 'Debian Nginx Maintainers', start }, correct: true });
    expect(r.status).toBe(201);
    expect((await app.feedback.store.all()).find((x) => x.id === r.body.id)).toMatchObject({ collection: 'fb', document_id: 'doc', context: text });
  });

  it('exports SQuAD 2.0 in which every answer_start slices its context to its text; wrong without a correction is unanswerable', async () => {
    const r = await app.inject({ url: '/v1/feedback/export?format=squad', headers: { authorization: `Bearer ${WRITE}` } });
    expect(r.statusCode).toBe(200);
    const squad = r.json();
    expect(squad.version).toBe('v2.0');
    const qas = squad.data.flatMap((d: { paragraphs: { context: string; qas: { question: string; answers: { text: string; answer_start: number }[]; is_impossible: boolean }[] }[] }) =>
      d.paragraphs.flatMap((p) => p.qas.map((q) => ({ ...q, context: p.context }))),
    );
    expect(qas).toHaveLength(4);
    for (const q of qas) {
      expect(q.is_impossible).toBe(q.answers.length === 0);
      for (const a of q.answers) expect(q.context.slice(a.answer_start, a.answer_start + a.text.length)).toBe(a.text);
    }
    expect(qas.find((q: { question: string }) => q.question === 'What does the package provide?').answers[0].text).toBe('a web server');
    expect(qas.find((q: { question: string }) => q.question === 'When was nginx released?').is_impossible).toBe(true);
    // One paragraph per distinct context.
    expect(squad.data[0].paragraphs).toHaveLength(2);
    expect((await app.inject({ url: '/v1/feedback/export?format=csv', headers: { authorization: `Bearer ${WRITE}` } })).statusCode).toBe(400);
  });
});
