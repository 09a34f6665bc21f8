/**
 * Bad input on every task route: each case gets its documented status and the one error body, whose message
 * names the field or the limit; never a 500, and the app stays live and ready after each.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApp, testConfig } from '../helpers/app.ts';
import { expectErrorBody, expectHealthy, ok, postJson, postMultipart, type Part } from '../helpers/http.ts';

const LIMITS = { maxBatchItems: 4, maxTextChars: 600, maxContextChars: 1000, maxEssayChars: 1000 };
const BODY_LIMIT = 16_384;
/** 580 characters, about 292 tokens: within the character limits, over every demo model's window. */
const MANY_TOKENS = 'a '.repeat(290);

let app: FastifyInstance;
beforeAll(async () => {
  app = await buildApp(testConfig({ limits: LIMITS, server: { logLevel: 'silent', bodyLimitBytes: BODY_LIMIT } }));
});
afterAll(async () => app?.close());

type Path = (string | number)[];
type Json = Record<string, unknown>;

function setAt(body: Json, path: Path, value: unknown): Json {
  const copy = JSON.parse(JSON.stringify(body)) as Json;
  let node = copy as Record<string | number, unknown>;
  for (const k of path.slice(0, -1)) node = node[k] as Record<string | number, unknown>;
  const last = path[path.length - 1];
  if (value === undefined) delete node[last];
  else node[last] = value;
  return copy;
}

interface Case {
  name: string;
  url: string;
  payload: unknown;
  contentType?: string;
  status: number;
  code: string;
  message: RegExp;
}

interface RouteSpec {
  url: string;
  valid: Json;
  /** Texts the route checks: missing, empty, whitespace-only, wrong type and too long are tried on each. */
  texts: { path: Path; field: RegExp; limit: number }[];
  /** The list field, if any, with the limit applying to its items. */
  batch?: { path: Path; field: RegExp; item: unknown };
  task: string;
  /** A model name of another task. */
  wrongModel: string;
  taskModel: string;
}

const QA_ITEM = { question: 'Who maintains the nginx package?', context: 'The nginx package is maintained by the Debian Nginx Maintainers.' };
const PAIR = { sentence_1: 'A man is playing a guitar.', sentence_2: 'A man plays the guitar.' };

const ROUTES: RouteSpec[] = [
  {
    url: '/v1/qa',
    valid: { ...QA_ITEM },
    texts: [
      { path: ['question'], field: /question/, limit: LIMITS.maxTextChars },
      { path: ['context'], field: /context/, limit: LIMITS.maxContextChars },
    ],
    task: 'question-answering',
    wrongModel: 'sts-demo',
    taskModel: 'qa-demo',
  },
  {
    url: '/v1/qa/batch',
    valid: { items: [{ ...QA_ITEM }, { ...QA_ITEM }] },
    texts: [
      { path: ['items', 1, 'question'], field: /items.*1.*question/, limit: LIMITS.maxTextChars },
      { path: ['items', 1, 'context'], field: /items.*1.*context/, limit: LIMITS.maxContextChars },
    ],
    batch: { path: ['items'], field: /items/, item: QA_ITEM },
    task: 'question-answering',
    wrongModel: 'classify-demo',
    taskModel: 'qa-demo',
  },
  {
    url: '/v1/similarity',
    valid: { ...PAIR },
    texts: [
      { path: ['sentence_1'], field: /sentence_1/, limit: LIMITS.maxTextChars },
      { path: ['sentence_2'], field: /sentence_2/, limit: LIMITS.maxTextChars },
    ],
    task: 'sentence-similarity',
    wrongModel: 'qa-demo',
    taskModel: 'sts-demo',
  },
  {
    url: '/v1/similarity/batch',
    valid: { pairs: [{ ...PAIR }, { ...PAIR }] },
    texts: [{ path: ['pairs', 1, 'sentence_2'], field: /pairs.*1.*sentence_2/, limit: LIMITS.maxTextChars }],
    batch: { path: ['pairs'], field: /pairs/, item: PAIR },
    task: 'sentence-similarity',
    wrongModel: 'essay-demo',
    taskModel: 'sts-demo',
  },
  {
    url: '/v1/embeddings',
    valid: { input: ['first text', 'second text'] },
    texts: [{ path: ['input', 1], field: /input/, limit: LIMITS.maxTextChars }],
    batch: { path: ['input'], field: /input/, item: 'a text' },
    task: 'sentence-similarity',
    wrongModel: 'classify-demo',
    taskModel: 'sts-demo',
  },
  {
    url: '/v1/essays/score',
    valid: { essays: ['Libraries matter. They lend books to everyone.', 'A second essay about parks and trees.'] },
    texts: [{ path: ['essays', 1], field: /essays/, limit: LIMITS.maxEssayChars }],
    batch: { path: ['essays'], field: /essays/, item: 'An essay.' },
    task: 'essay-scoring',
    wrongModel: 'classify-demo',
    taskModel: 'essay-demo',
  },
  {
    url: '/v1/classify',
    valid: { inputs: ['a terminal text editor', 'a puzzle game'] },
    texts: [{ path: ['inputs', 1], field: /inputs/, limit: LIMITS.maxTextChars }],
    batch: { path: ['inputs'], field: /inputs/, item: 'a text' },
    task: 'text-classification',
    wrongModel: 'essay-demo-bands',
    taskModel: 'classify-demo',
  },
];

function casesOf(r: RouteSpec): Case[] {
  const cases: Case[] = [];
  const add = (name: string, payload: unknown, status: number, code: string, message: RegExp, contentType?: string) =>
    cases.push({ name: `${r.url} ${name}`, url: r.url, payload, status, code, message, contentType });
  for (const t of r.texts) {
    const f = t.path.join('.');
    add(`${f} missing`, setAt(r.valid, t.path, undefined), 400, 'invalid_request', t.field);
    add(`${f} empty`, setAt(r.valid, t.path, ''), 400, 'invalid_request', t.field);
    add(`${f} whitespace only`, setAt(r.valid, t.path, ' \t\n  '), 400, 'invalid_request', t.field);
    add(`${f} wrong type`, setAt(r.valid, t.path, 42), 400, 'invalid_request', t.field);
    add(`${f} one character over the limit`, setAt(r.valid, t.path, 'x'.repeat(t.limit + 1)), 413, 'too_large', new RegExp(`${t.field.source}.*\\b${t.limit}\\b`));
  }
  if (r.batch) {
    const f = r.batch.path.join('.');
    add(`${f} one item over the limit`, setAt(r.valid, r.batch.path, new Array(LIMITS.maxBatchItems + 1).fill(r.batch.item)), 413, 'too_large', new RegExp(`${r.batch.field.source}.*\\b${LIMITS.maxBatchItems}\\b`));
    add(`${f} empty list`, setAt(r.valid, r.batch.path, []), 400, 'invalid_request', r.batch.field);
    add(`${f} not a list`, setAt(r.valid, r.batch.path, { a: 1 }), 400, 'invalid_request', r.batch.field);
  }
  add('unknown model', { ...r.valid, model: 'nope' }, 404, 'model_not_found', new RegExp(`"nope".*${r.taskModel}`));
  add('model of another task', { ...r.valid, model: r.wrongModel }, 422, 'wrong_task', new RegExp(`${r.wrongModel}.*${r.task}.*${r.taskModel}`));
  add('model name of the wrong type', { ...r.valid, model: 7 }, 400, 'invalid_request', /model/);
  add('malformed JSON', '{"oops": ', 400, 'invalid_request', /JSON/);
  add('empty body', '', 400, 'invalid_request', /body/);
  add('a JSON array instead of an object', '[1, 2]', 400, 'invalid_request', /body/);
  add('text/plain', JSON.stringify(r.valid), 415, 'unsupported_media_type', /content type/, 'text/plain');
  add('form-urlencoded', 'question=x', 415, 'unsupported_media_type', /content type/, 'application/x-www-form-urlencoded');
  add('body over the body limit', { ...r.valid, padding: 'x'.repeat(BODY_LIMIT) }, 413, 'too_large', new RegExp(`${BODY_LIMIT}`));
  return cases;
}

describe.each(ROUTES)('$url', (r) => {
  it('takes its valid body (the baseline every bad case departs from)', async () => {
    await ok(app, r.url, r.valid);
    await ok(app, r.url, { ...r.valid, model: r.taskModel });
  });

  it.each(casesOf(r))('$name: $status $code', async (c) => {
    const res = await postJson(app, c.url, c.payload, c.contentType);
    expectErrorBody(res, c.status, c.code, c.message);
    await expectHealthy(app);
  });
});

describe('texts over the model window (in characters within the limit, in tokens over it)', () => {
  const cases: { url: string; payload: Json; field: RegExp }[] = [
    { url: '/v1/embeddings', payload: { input: ['short', MANY_TOKENS] }, field: /^input\[1\] is \d+ tokens; model "sts-demo" takes at most \d+/ },
    { url: '/v1/embeddings', payload: { input: MANY_TOKENS }, field: /^input is \d+ tokens/ },
    { url: '/v1/classify', payload: { inputs: ['short', 'also short', MANY_TOKENS] }, field: /^inputs\[2\] is \d+ tokens; model "classify-demo" takes at most \d+/ },
    { url: '/v1/similarity', payload: { sentence_1: 'short', sentence_2: MANY_TOKENS }, field: /is \d+ tokens; model "sts-demo" takes at most \d+/ },
    { url: '/v1/similarity/batch', payload: { pairs: [PAIR, { sentence_1: 'short', sentence_2: MANY_TOKENS }] }, field: /is \d+ tokens/ },
  ];
  it.each(cases)('$url refuses with 413 naming the text and the window, never a silent cut', async (c) => {
    const res = await postJson(app, c.url, c.payload);
    expectErrorBody(res, 413, 'too_large', c.field);
    expect(res.body.error.details).toMatchObject({ tokens: expect.any(Number), max_tokens: expect.any(Number) });
    expect(res.body.error.details.tokens).toBeGreaterThan(res.body.error.details.max_tokens);
    await expectHealthy(app);
  });

  it('cuts them only when asked with truncate: true', async () => {
    await ok(app, '/v1/embeddings', { input: ['short', MANY_TOKENS], truncate: true });
    await ok(app, '/v1/classify', { inputs: MANY_TOKENS, truncate: true });
  });

  it('a QA question that leaves no room for the context is a 413 naming the question', async () => {
    const res = await postJson(app, '/v1/qa', { question: MANY_TOKENS, context: 'A short context.' });
    expectErrorBody(res, 413, 'too_large', /question too long/);
    await expectHealthy(app);
  });

  it('long QA contexts and essays are not refused: they are read in windows', async () => {
    // 980 characters, about 490 tokens: within the character limit, over every demo model's window.
    const long = 'a b '.repeat(245);
    expect(long.length).toBeLessThanOrEqual(LIMITS.maxContextChars);
    expect((await ok(app, '/v1/qa', { question: 'Who maintains the package?', context: long })).body.windows).toBeGreaterThan(1);
    expect((await ok(app, '/v1/essays/score', { essay: long })).body.windows).toBeGreaterThan(1);
  });
});

describe('route-specific options', () => {
  const cases: { name: string; url: string; payload: unknown; status: number; code: string; field: RegExp }[] = [
    { name: 'qa top_k 0', url: '/v1/qa', payload: { ...QA_ITEM, top_k: 0 }, status: 400, code: 'invalid_request', field: /top_k/ },
    { name: 'qa top_k over 20', url: '/v1/qa', payload: { ...QA_ITEM, top_k: 21 }, status: 400, code: 'invalid_request', field: /top_k/ },
    { name: 'qa top_k not an integer', url: '/v1/qa', payload: { ...QA_ITEM, top_k: 1.5 }, status: 400, code: 'invalid_request', field: /top_k/ },
    { name: 'qa max_answer_length 0', url: '/v1/qa', payload: { ...QA_ITEM, max_answer_length: 0 }, status: 400, code: 'invalid_request', field: /max_answer_length/ },
    { name: 'qa handle_impossible_answer a string', url: '/v1/qa', payload: { ...QA_ITEM, handle_impossible_answer: 'yes' }, status: 400, code: 'invalid_request', field: /handle_impossible_answer/ },
    { name: 'qa batch item not an object', url: '/v1/qa/batch', payload: { items: ['what?'] }, status: 400, code: 'invalid_request', field: /items/ },
    { name: 'classify top_k 0', url: '/v1/classify', payload: { inputs: 'x', top_k: 0 }, status: 400, code: 'invalid_request', field: /top_k/ },
    { name: 'classify a list with a non-string', url: '/v1/classify', payload: { inputs: ['x', 3] }, status: 400, code: 'invalid_request', field: /inputs/ },
    { name: 'embeddings encoding_format unknown', url: '/v1/embeddings', payload: { input: 'x', encoding_format: 'hex' }, status: 400, code: 'invalid_request', field: /encoding_format/ },
    { name: 'embeddings dimensions not the model dimension', url: '/v1/embeddings', payload: { input: 'x', dimensions: 3 }, status: 422, code: 'unprocessable_input', field: /dimensions/ },
    { name: 'embeddings token arrays', url: '/v1/embeddings', payload: { input: [[1, 2, 3]] }, status: 400, code: 'invalid_request', field: /input/ },
    { name: 'essays: essay and essays both', url: '/v1/essays/score', payload: { essay: 'One.', essays: ['Two.'] }, status: 400, code: 'invalid_request', field: /essay/ },
    { name: 'essays: neither', url: '/v1/essays/score', payload: { model: 'essay-demo' }, status: 400, code: 'invalid_request', field: /essay/ },
    { name: 'essays: essay whitespace only', url: '/v1/essays/score', payload: { essay: '\n\n\t ' }, status: 400, code: 'invalid_request', field: /essay/ },
    { name: 'essays: essay over the limit', url: '/v1/essays/score', payload: { essay: 'x'.repeat(LIMITS.maxEssayChars + 1) }, status: 413, code: 'too_large', field: new RegExp(`essay.*${LIMITS.maxEssayChars}`) },
  ];
  it.each(cases)('$name: $status', async (c) => {
    expectErrorBody(await postJson(app, c.url, c.payload), c.status, c.code, c.field);
    await expectHealthy(app);
  });
});

describe('/v1/similarity/file', () => {
  const url = '/v1/similarity/file';
  const file = (content: string | Buffer, filename = 'pairs.json'): Part => ({ name: 'file', filename, content });
  const pairs = JSON.stringify([PAIR, PAIR]);

  it('takes a valid upload', async () => {
    const res = await postMultipart(app, url, [file(pairs)]);
    expect(res.status, res.raw).toBe(200);
    expect(res.body.results).toHaveLength(2);
  });

  const cases: { name: string; parts: Part[]; urlSuffix?: string; status: number; code: string; field: RegExp }[] = [
    { name: 'no file, only a field', parts: [{ name: 'model', content: 'sts-demo' }], status: 400, code: 'invalid_request', field: /no file/ },
    { name: 'a file that is not JSON', parts: [file('sentence_1,sentence_2\na,b\n', 'pairs.csv')], status: 400, code: 'invalid_request', field: /pairs\.csv.*not valid JSON/ },
    { name: 'an empty file', parts: [file('')], status: 400, code: 'invalid_request', field: /pairs\.json.*not valid JSON/ },
    { name: 'JSON of the wrong shape', parts: [file(JSON.stringify({ items: [PAIR] }))], status: 400, code: 'invalid_request', field: /pairs\.json.*sentence_1/ },
    { name: 'a pair missing sentence_2', parts: [file(JSON.stringify([{ sentence_1: 'a' }]))], status: 400, code: 'invalid_request', field: /sentence_1.*sentence_2/ },
    { name: 'a pair with a number', parts: [file(JSON.stringify([{ sentence_1: 'a', sentence_2: 5 }]))], status: 400, code: 'invalid_request', field: /sentence_2/ },
    { name: 'an empty string', parts: [file(JSON.stringify([{ sentence_1: 'a', sentence_2: '' }]))], status: 400, code: 'invalid_request', field: /sentence/ },
    { name: 'a whitespace-only sentence', parts: [file(JSON.stringify({ pairs: [PAIR, { sentence_1: 'a', sentence_2: '   ' }] }))], status: 400, code: 'invalid_request', field: /pairs\[1\]\.sentence_2 is empty/ },
    { name: 'an empty list', parts: [file('[]')], status: 400, code: 'invalid_request', field: /pairs is empty/ },
    { name: 'one pair over the batch limit', parts: [file(JSON.stringify(new Array(LIMITS.maxBatchItems + 1).fill(PAIR)))], status: 413, code: 'too_large', field: new RegExp(`pairs.*${LIMITS.maxBatchItems}`) },
    { name: 'a sentence over the text limit', parts: [file(JSON.stringify([{ sentence_1: 'a', sentence_2: 'x'.repeat(LIMITS.maxTextChars + 1) }]))], status: 413, code: 'too_large', field: new RegExp(`sentence_2.*${LIMITS.maxTextChars}`) },
    { name: 'a file over the size limit', parts: [file(Buffer.alloc(BODY_LIMIT + 10, 0x20))], status: 413, code: 'too_large', field: new RegExp(`${BODY_LIMIT}`) },
    { name: 'an unknown model (form field)', parts: [{ name: 'model', content: 'nope' }, file(pairs)], status: 404, code: 'model_not_found', field: /"nope".*sts-demo/ },
    { name: 'an unknown model (query)', parts: [file(pairs)], urlSuffix: '?model=nope', status: 404, code: 'model_not_found', field: /"nope".*sts-demo/ },
    { name: 'a model of another task', parts: [{ name: 'model', content: 'qa-demo' }, file(pairs)], status: 422, code: 'wrong_task', field: /qa-demo.*sentence-similarity/ },
  ];
  it.each(cases)('$name: $status $code', async (c) => {
    expectErrorBody(await postMultipart(app, url + (c.urlSuffix ?? ''), c.parts), c.status, c.code, c.field);
    await expectHealthy(app);
  });

  it('JSON instead of multipart is a 415 naming multipart', async () => {
    expectErrorBody(await postJson(app, url, { pairs: [PAIR] }), 415, 'unsupported_media_type', /multipart/);
    expectErrorBody(await postJson(app, url, pairs, 'text/plain'), 415, 'unsupported_media_type', /content type/);
    await expectHealthy(app);
  });
});

describe('/models/{name} (Hugging Face Inference API)', () => {
  const cases: { name: string; model: string; payload: unknown; status: number; code: string; field: RegExp; url?: string }[] = [
    { name: 'inputs missing', model: 'qa-demo', payload: { parameters: {} }, status: 400, code: 'invalid_request', field: /inputs/ },
    { name: 'QA inputs a string', model: 'qa-demo', payload: { inputs: 'who?' }, status: 400, code: 'invalid_request', field: /inputs.*question.*context/ },
    { name: 'QA context missing', model: 'qa-demo', payload: { inputs: { question: 'who?' } }, status: 400, code: 'invalid_request', field: /inputs.*context/ },
    { name: 'QA context whitespace only', model: 'qa-demo', payload: { inputs: { question: 'who?', context: '  \t' } }, status: 400, code: 'invalid_request', field: /inputs\.context is empty/ },
    { name: 'QA context over the limit', model: 'qa-demo', payload: { inputs: { question: 'who?', context: 'x'.repeat(LIMITS.maxContextChars + 1) } }, status: 413, code: 'too_large', field: new RegExp(`inputs\\.context.*${LIMITS.maxContextChars}`) },
    { name: 'QA list one over the batch limit', model: 'qa-demo', payload: { inputs: new Array(LIMITS.maxBatchItems + 1).fill(QA_ITEM) }, status: 413, code: 'too_large', field: new RegExp(`inputs.*${LIMITS.maxBatchItems}`) },
    { name: 'QA list with a bad item', model: 'qa-demo', payload: { inputs: [QA_ITEM, { question: 'q' }] }, status: 400, code: 'invalid_request', field: /inputs\[1\]/ },
    { name: 'QA top_k 0', model: 'qa-demo', payload: { inputs: QA_ITEM, parameters: { top_k: 0 } }, status: 400, code: 'invalid_request', field: /parameters\.top_k/ },
    { name: 'QA doc_stride a string', model: 'qa-demo', payload: { inputs: QA_ITEM, parameters: { doc_stride: 'big' } }, status: 400, code: 'invalid_request', field: /parameters\.doc_stride/ },
    { name: 'similarity sentences empty', model: 'sts-demo', payload: { inputs: { source_sentence: 'a', sentences: [] } }, status: 400, code: 'invalid_request', field: /sentences/ },
    { name: 'similarity source_sentence a number', model: 'sts-demo', payload: { inputs: { source_sentence: 1, sentences: ['a'] } }, status: 400, code: 'invalid_request', field: /source_sentence/ },
    { name: 'similarity one sentence whitespace only', model: 'sts-demo', payload: { inputs: { source_sentence: 'a', sentences: ['b', ' '] } }, status: 400, code: 'invalid_request', field: /inputs\.sentences\[1\] is empty/ },
    { name: 'similarity sentences one over the batch limit', model: 'sts-demo', payload: { inputs: { source_sentence: 'a', sentences: new Array(LIMITS.maxBatchItems + 1).fill('b') } }, status: 413, code: 'too_large', field: new RegExp(`sentences.*${LIMITS.maxBatchItems}`) },
    { name: 'feature-extraction a number', model: 'sts-demo', payload: { inputs: 5 }, status: 400, code: 'invalid_request', field: /inputs/ },
    { name: 'feature-extraction empty string', model: 'sts-demo', payload: { inputs: '' }, status: 400, code: 'invalid_request', field: /inputs/ },
    { name: 'feature-extraction text over the limit', model: 'sts-demo', payload: { inputs: 'x'.repeat(LIMITS.maxTextChars + 1) }, status: 413, code: 'too_large', field: new RegExp(`inputs.*${LIMITS.maxTextChars}`) },
    { name: 'feature-extraction text over the window', model: 'sts-demo', payload: { inputs: MANY_TOKENS }, status: 413, code: 'too_large', field: /inputs is \d+ tokens/ },
    { name: 'classification list with a number', model: 'classify-demo', payload: { inputs: ['a', 2] }, status: 400, code: 'invalid_request', field: /inputs/ },
    { name: 'classification whitespace only', model: 'classify-demo', payload: { inputs: '   ' }, status: 400, code: 'invalid_request', field: /inputs is empty/ },
    { name: 'classification list one over the batch limit', model: 'classify-demo', payload: { inputs: new Array(LIMITS.maxBatchItems + 1).fill('x') }, status: 413, code: 'too_large', field: new RegExp(`inputs.*${LIMITS.maxBatchItems}`) },
    { name: 'classification top_k -1', model: 'classify-demo', payload: { inputs: 'x', parameters: { top_k: -1 } }, status: 400, code: 'invalid_request', field: /parameters\.top_k/ },
    { name: 'essay inputs an object', model: 'essay-demo', payload: { inputs: { essay: 'x' } }, status: 400, code: 'invalid_request', field: /inputs/ },
    { name: 'essay over the limit', model: 'essay-demo-bands', payload: { inputs: 'x'.repeat(LIMITS.maxEssayChars + 1) }, status: 413, code: 'too_large', field: new RegExp(`inputs.*${LIMITS.maxEssayChars}`) },
    { name: 'unknown model', model: 'nope', payload: { inputs: 'x' }, status: 404, code: 'model_not_found', field: /"nope".*qa-demo.*classify-demo/ },
    { name: 'parameters not an object', model: 'classify-demo', payload: { inputs: 'x', parameters: 3 }, status: 400, code: 'invalid_request', field: /parameters/ },
    { name: 'feature-extraction pipeline on a QA model', model: 'qa-demo', url: '/models/qa-demo/pipeline/feature-extraction', payload: { inputs: 'x' }, status: 422, code: 'wrong_task', field: /qa-demo.*sentence-similarity/ },
    { name: 'an unknown pipeline', model: 'sts-demo', url: '/models/sts-demo/pipeline/summarization', payload: { inputs: 'x' }, status: 400, code: 'invalid_request', field: /pipeline/ },
  ];
  it.each(cases)('$name: $status $code', async (c) => {
    expectErrorBody(await postJson(app, c.url ?? `/models/${c.model}`, c.payload), c.status, c.code, c.field);
    await expectHealthy(app);
  });

  it('malformed JSON and wrong content types', async () => {
    expectErrorBody(await postJson(app, '/models/qa-demo', '{"inputs": {'), 400, 'invalid_request', /JSON/);
    expectErrorBody(await postJson(app, '/models/qa-demo', 'inputs', 'text/plain'), 415, 'unsupported_media_type', /content type/);
    await expectHealthy(app);
  });
});
