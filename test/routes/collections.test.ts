/**
 * Collections through the HTTP API with the real demo models (sts-demo embeds, qa-demo reads) and ml-commons'
 * real XLM-R cross-encoder export as the reranker, on the default embedded store.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp, demoZip, testConfig } from '../helpers/app.ts';
import { crossEncoderFolder } from '../helpers/real-models.ts';
import { postMultipart } from '../helpers/http.ts';
import { craftZip } from '../helpers/zip-craft.ts';
import { readZip } from '../helpers/unzip.ts';

const WRITE = 'write-key-0123456789abcdef';
const INFER = 'infer-key-0123456789abcdef';
const ADMIN = 'admin-key-0123456789abcdef';

let app: FastifyInstance;
const auth = (key = ADMIN) => ({ authorization: `Bearer ${key}` });
const post = async (url: string, payload: unknown, key?: string) => {
  const r = await app.inject({ method: 'POST', url, headers: auth(key), payload: payload as object });
  return { status: r.statusCode, body: r.json(), headers: r.headers };
};
const get = async (url: string) => {
  const r = await app.inject({ url, headers: auth() });
  return { status: r.statusCode, body: r.json() };
};

/** Package prose, repeated with a fact deep inside: a document far longer than one chunk. */
const FILLER = 'The archive holds many packages for editors, servers and tools, each with its own maintainers and sections. ';
const LONG = `${FILLER.repeat(60)}The zebra package was written by Grace Hopper in 1952, and the Debian Zebra Team maintains it in Rust. ${FILLER.repeat(40)}`;

beforeAll(async () => {
  const ranker = await crossEncoderFolder();
  app = await buildApp(
    testConfig({
      models: [
        { name: 'qa-demo', source: demoZip('qa-demo') },
        { name: 'sts-demo', source: demoZip('sts-demo') },
        { name: 'rerank-xlmr', source: ranker },
      ],
      security: { apiKeys: [INFER, `write:${WRITE}`, `admin:${ADMIN}`] },
      collections: { dir: mkdtempSync(join(tmpdir(), 'coll-routes-')), maxDocumentChars: 50_000, maxDocumentsPerRequest: 300, maxChunksPerCollection: 400 },
    }),
  );
}, 120_000);
afterAll(async () => app?.close());

describe('collections', () => {
  it('creates one (201), names the model and version it is built with; refuses bad names, taken names, unknown models and windows past the model', async () => {
    const created = await post('/v1/collections', { name: 'packages', chunking: { max_tokens: 64, overlap_tokens: 16 } });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name: 'packages', embedding_model: 'sts-demo', embedding_version: expect.stringMatching(/^3\.0\.0\+/), dim: 256, documents: 0, chunks: 0, chunking: { max_tokens: 64, overlap_tokens: 16 } });
    expect((await post('/v1/collections', { name: 'packages' })).status).toBe(409);
    expect((await post('/v1/collections', { name: 'bad name/../x' })).body.error.message).toMatch(/collection name must match/);
    expect((await post('/v1/collections', { name: 'x', embedding_model: 'nope' })).status).toBe(404);
    expect((await post('/v1/collections', { name: 'x', chunking: { max_tokens: 4096 } })).body.error.message).toMatch(/reads at most 128 tokens/);
    expect((await get('/v1/collections')).body.data.map((c: { name: string }) => c.name)).toEqual(['packages']);
  });

  it('ingests JSON documents; an id replaces its document whole; every chunk keeps its range in the original text', async () => {
    const r = await post('/v1/collections/packages/documents', {
      documents: [
        { id: 'long', text: LONG, metadata: { kind: 'long', year: 2024 } },
        { id: 'nginx', text: 'The nginx package provides a web server. It is maintained by the Debian Nginx Maintainers.', metadata: { kind: 'server', year: 2020 } },
        { id: 'vim', text: 'Vim is a text editor. It is maintained by the Debian Vim Maintainers.', metadata: { kind: 'editor', year: 2021 } },
      ],
    });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.ids).toEqual(['long', 'nginx', 'vim']);
    expect(r.body.chunks).toBeGreaterThan(20);
    const doc = await get('/v1/collections/packages/documents/long');
    expect(doc.body).toMatchObject({ id: 'long', text: LONG, metadata: { kind: 'long', year: 2024 } });
    expect(doc.body.chunks).toBeGreaterThan(20);
    const hits = (await post('/v1/collections/packages/search', { query: 'Debian Zebra Team Rust', top_k: 20, mode: 'keyword' })).body.results;
    expect(hits[0].document_id).toBe('long');
    for (const h of hits) {
      const text = h.document_id === 'long' ? LONG : (await get(`/v1/collections/packages/documents/${h.document_id}`)).body.text;
      expect(text.slice(h.start, h.end)).toBe(h.text);
    }
    expect(hits[0].start).toBeGreaterThan(1000);
    await post('/v1/collections/packages/documents', { documents: [{ id: 'vim', text: 'Vim, replaced. Maintained by nobody.', metadata: { kind: 'editor', year: 2022 } }] });
    expect((await get('/v1/collections/packages/documents/vim')).body).toMatchObject({ text: 'Vim, replaced. Maintained by nobody.', chunks: 1, metadata: { year: 2022 } });
  });

  it('answers from the documents: offsets slice the original document exactly, deep inside a long one', async () => {
    const r = await post('/v1/collections/packages/qa', { question: 'When was the zebra package written?', top_k: 3, mode: 'keyword', retrieve_k: 5 });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.read).toBe(5);
    const best = r.body.answers[0];
    expect(best.document_id).toBe('long');
    expect(LONG.slice(best.start, best.end)).toBe(best.answer);
    expect(best.start).toBeGreaterThan(LONG.indexOf('The zebra') - 1);
    expect(best.answer).toMatch(/1952/);
    expect(best.metadata).toEqual({ kind: 'long', year: 2024 });
    // Answers are distinct spans, best first.
    const keys = r.body.answers.map((a: { document_id: string; start: number; end: number }) => `${a.document_id}:${a.start}:${a.end}`);
    expect(new Set(keys).size).toBe(keys.length);
  });

  it('retrieves by vector, keyword and hybrid, filters by metadata, reranks with a cross-encoder', async () => {
    for (const mode of ['vector', 'keyword', 'hybrid']) {
      const r = await post('/v1/collections/packages/search', { query: 'web server maintained by Debian', top_k: 4, mode });
      expect(r.status).toBe(200);
      expect(r.body.results.length).toBeGreaterThan(0);
      expect(r.body.results[0].scored_by).toBe({ vector: 'cosine', keyword: 'bm25', hybrid: 'rrf' }[mode]);
    }
    const filtered = await post('/v1/collections/packages/search', { query: 'maintained', top_k: 10, filter: { kind: { $in: ['server', 'editor'] } } });
    expect(new Set(filtered.body.results.map((h: { document_id: string }) => h.document_id))).toEqual(new Set(['nginx', 'vim']));
    const none = await post('/v1/collections/packages/search', { query: 'maintained', filter: { $and: [{ kind: 'server' }, { year: 1999 }] } });
    expect(none.body.results).toEqual([]);
    const reranked = await post('/v1/collections/packages/search', { query: 'web server', top_k: 3, rerank: { model: 'rerank-xlmr', candidates: 8 } });
    expect(reranked.status, JSON.stringify(reranked.body)).toBe(200);
    const scores = reranked.body.results.map((h: { score: number; scored_by: string }) => {
      expect(h.scored_by).toBe('rerank');
      return h.score;
    });
    expect(scores).toEqual([...scores].sort((a, b) => b - a));
    expect((await post('/v1/collections/packages/search', { query: 'x', filter: { $where: 1 } })).status).toBe(400);
  });

  it('weighs hybrid retrieval by keyword_weight: 1 keeps keyword order, 0 vector order; refuses it out of range or outside hybrid', async () => {
    const ids = async (body: object) => {
      const r = await post('/v1/collections/packages/search', { query: 'editor maintained by the Debian team', top_k: 3, ...body });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      return r.body.results.map((h: { document_id: string; chunk_index: number }) => `${h.document_id}#${h.chunk_index}`);
    };
    const keyword = await ids({ mode: 'keyword' });
    const vector = await ids({ mode: 'vector' });
    expect(keyword).not.toEqual(vector);
    expect(await ids({ mode: 'hybrid', keyword_weight: 1 })).toEqual(keyword);
    expect(await ids({ keyword_weight: 0 })).toEqual(vector);
    const half = await post('/v1/collections/packages/search', { query: 'editor maintained by the Debian team', top_k: 3, keyword_weight: 0.5 });
    const plain = await post('/v1/collections/packages/search', { query: 'editor maintained by the Debian team', top_k: 3 });
    // sts-demo declares no weight: the default is plain RRF.
    expect(half.body.results).toEqual(plain.body.results);
    const bad = await post('/v1/collections/packages/search', { query: 'x', keyword_weight: 1.5 });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/keyword_weight/);
    const outside = await post('/v1/collections/packages/qa', { question: 'who?', mode: 'vector', keyword_weight: 0.3 });
    expect(outside.status).toBe(400);
    expect(outside.body.error).toMatchObject({ code: 'invalid_request', message: 'keyword_weight weighs the two lists of hybrid retrieval; mode is vector' });
  });

  it('streams NDJSON; a malformed line is reported by line number and nothing is ingested', async () => {
    await post('/v1/collections', { name: 'stream' });
    const lines = Array.from({ length: 200 }, (_, i) => JSON.stringify({ id: `doc-${i}`, text: `Package number ${i} is a tool maintained by team ${i % 7}.`, metadata: { team: i % 7 } }));
    const ok = await app.inject({ method: 'POST', url: '/v1/collections/stream/documents', headers: { ...auth(WRITE), 'content-type': 'application/x-ndjson' }, payload: `${lines.join('\n')}\n` });
    expect(ok.statusCode, ok.body).toBe(200);
    expect(ok.json()).toMatchObject({ ingested: 200, chunks: 200 });
    const bad = [...lines.slice(0, 3).map((l) => l.replace('doc-', 'new-')), 'not json', '{"id": "x"}', lines[5].replace('doc-', 'new-')].join('\n');
    const refused = await app.inject({ method: 'POST', url: '/v1/collections/stream/documents', headers: { ...auth(WRITE), 'content-type': 'application/x-ndjson' }, payload: bad });
    expect(refused.statusCode).toBe(400);
    expect(refused.json().error.message).toBe('nothing was ingested: line 4 is not valid JSON; line 5.text must be a non-empty string');
    expect((await get('/v1/collections/stream')).body).toMatchObject({ documents: 200, chunks: 200 });
    expect((await get('/v1/collections/stream/documents/new-0')).status).toBe(404);
  });

  it('takes uploaded files: .txt and .md one document each, .json and .jsonl of documents; refuses other types', async () => {
    await post('/v1/collections', { name: 'files' });
    const res = await postMultipart(
      app,
      '/v1/collections/files/documents',
      [
        { name: 'file', filename: 'readme.md', content: '# Readme\n\nThe tool is maintained by the Files Team.' },
        { name: 'file', filename: 'notes.txt', content: 'Plain notes about packaging.' },
        { name: 'file', filename: 'docs.json', content: JSON.stringify({ documents: [{ id: 'j1', text: 'From a JSON file.' }] }) },
        { name: 'file', filename: 'more.jsonl', content: '{"id":"l1","text":"From a JSONL file."}\n{"id":"l2","text":"Second line."}\n' },
      ],
      auth(WRITE),
    );
    expect(res.status, res.raw).toBe(200);
    expect(JSON.parse(res.raw).ids).toEqual(['readme.md', 'notes.txt', 'j1', 'l1', 'l2']);
    expect((await get('/v1/collections/files/documents/readme.md')).body.metadata).toEqual({ filename: 'readme.md' });
    const pdf = await postMultipart(app, '/v1/collections/files/documents', [{ name: 'file', filename: 'paper.pdf', content: '%PDF-1.4' }], auth(WRITE));
    expect(pdf.status).toBe(415);
  });

  it('refuses over its limits with 413 naming them, writing nothing', async () => {
    await post('/v1/collections', { name: 'limits', chunking: { max_tokens: 16, overlap_tokens: 2 } });
    const big = await post('/v1/collections/limits/documents', { documents: [{ text: 'x '.repeat(30_000) }] });
    expect(big.status).toBe(413);
    expect(big.body.error.message).toMatch(/documents\[0\]\.text is 60000 characters; the limit is 50000/);
    const many = await post('/v1/collections/limits/documents', { documents: Array.from({ length: 301 }, (_, i) => ({ text: `doc ${i}` })) });
    expect(many.status).toBe(413);
    expect(many.body.error.message).toMatch(/limit is 300/);
    const chunks = await post('/v1/collections/limits/documents', { documents: [{ text: 'word and more words. '.repeat(2000) }] });
    expect(chunks.status).toBe(413);
    expect(chunks.body.error.message).toMatch(/chunks; the limit is 400/);
    expect((await get('/v1/collections/limits')).body).toMatchObject({ documents: 0, chunks: 0 });
  });

  it('an empty collection answers with no answers, not an error', async () => {
    await post('/v1/collections', { name: 'empty' });
    const r = await post('/v1/collections/empty/qa', { question: 'Anything?' });
    expect(r.status).toBe(200);
    expect(r.body.answers).toEqual([]);
  });

  it('deletes documents by id and by filter, and whole collections', async () => {
    expect((await app.inject({ method: 'DELETE', url: '/v1/collections/stream/documents/doc-1', headers: auth(WRITE) })).statusCode).toBe(200);
    expect((await get('/v1/collections/stream/documents/doc-1')).status).toBe(404);
    const byFilter = await app.inject({ method: 'DELETE', url: '/v1/collections/stream/documents', headers: auth(WRITE), payload: { filter: { team: 3 } } });
    expect(byFilter.json().deleted).toBe(29);
    expect((await get('/v1/collections/stream')).body.documents).toBe(200 - 1 - 29);
    expect((await app.inject({ method: 'DELETE', url: '/v1/collections/stream', headers: auth(WRITE) })).statusCode).toBe(200);
    expect((await get('/v1/collections/stream')).status).toBe(404);
  });

  it('needs the write scope to write; infer keys may search', async () => {
    expect((await post('/v1/collections/packages/documents', { documents: [{ text: 'x' }] }, INFER)).status).toBe(403);
    expect((await post('/v1/collections', { name: 'nope' }, INFER)).status).toBe(403);
    expect((await app.inject({ method: 'DELETE', url: '/v1/collections/packages', headers: auth(INFER) })).statusCode).toBe(403);
    expect((await post('/v1/collections/packages/search', { query: 'server' }, INFER)).status).toBe(200);
  });

  it('refuses queries with 409 once the embedding model has a new version, until the collection is re-embedded', async () => {
    // Asked (and cached) before the replacement: afterwards the cache must not answer what retrieval would refuse.
    const question = { question: 'Which package is a web server?', top_k: 1 };
    expect((await post('/v1/collections/packages/qa', question)).status).toBe(200);
    expect((await post('/v1/collections/packages/qa', question)).headers['x-cache']).toBe('hit');
    const files = await readZip(demoZip('sts-demo'));
    files['gateway.json'] = Buffer.from(JSON.stringify({ ...JSON.parse(files['gateway.json'].toString()), version: '3.0.1' }));
    const v2 = join(mkdtempSync(join(tmpdir(), 'sts-v2-')), 'sts-v2.zip');
    writeFileSync(v2, craftZip(Object.entries(files).map(([name, data]) => ({ name, data }))));
    expect((await app.inject({ method: 'PUT', url: '/v1/models/sts-demo', headers: auth(ADMIN), payload: { source: v2 } })).statusCode).toBe(202);
    await expect.poll(async () => (await get('/v1/models/sts-demo')).body.version, { timeout: 60_000 }).toMatch(/^3\.0\.1\+/);
    const refused = await post('/v1/collections/packages/search', { query: 'server', mode: 'vector' });
    expect(refused.status).toBe(409);
    expect(refused.body.error.message).toMatch(/was embedded by sts-demo version 3\.0\.0\+\w+; that model is now version 3\.0\.1\+\w+.*POST \/v1\/collections\/packages\/reembed/);
    expect((await post('/v1/collections/packages/documents', { documents: [{ text: 'new' }] })).status).toBe(409);
    const cachedBefore = await post('/v1/collections/packages/qa', question);
    expect(cachedBefore.status, JSON.stringify(cachedBefore.body)).toBe(409);
    // Keyword retrieval needs no embedding model: it still answers.
    expect((await post('/v1/collections/packages/qa', { ...question, mode: 'keyword' })).status).toBe(200);
    const re = await post('/v1/collections/packages/reembed', {}, WRITE);
    expect(re.status, JSON.stringify(re.body)).toBe(200);
    expect(re.body.embedding_version).toMatch(/^3\.0\.1\+/);
    const ok = await post('/v1/collections/packages/search', { query: 'server', mode: 'vector' });
    expect(ok.status).toBe(200);
    expect(ok.body.results.length).toBeGreaterThan(0);
  }, 90_000);
});

describe('collections.embeddingModel', () => {
  it('embeds a new collection with the configured model when it names none, and with the default one when that model is not served', async () => {
    const both = await buildApp(
      testConfig({
        models: [{ name: 'sts-demo', source: demoZip('sts-demo'), default: true }, { name: 'retrieve-demo', source: demoZip('retrieve-demo') }],
        collections: { dir: mkdtempSync(join(tmpdir(), 'coll-embedder-')), embeddingModel: 'retrieve-demo' },
      }),
    );
    try {
      const r = await both.inject({ method: 'POST', url: '/v1/collections', payload: { name: 'c1' } });
      expect(r.statusCode).toBe(201);
      expect(r.json()).toMatchObject({ embedding_model: 'retrieve-demo', chunking: { max_tokens: 256 } });
      const named = await both.inject({ method: 'POST', url: '/v1/collections', payload: { name: 'c2', embedding_model: 'sts-demo' } });
      expect(named.json().embedding_model).toBe('sts-demo');
      // Hybrid search weighs BM25 by retrieve-demo's calibrated gateway.json hybrid_keyword_weight (0.75) unless asked otherwise.
      const docs = ['The nginx web server is maintained by the Debian Nginx Maintainers.', 'Vim is a text editor kept by the Debian Vim team.', 'Curl transfers data with URLs.'];
      expect((await both.inject({ method: 'POST', url: '/v1/collections/c1/documents', payload: { documents: docs.map((text) => ({ text })) } })).statusCode).toBe(200);
      const search = async (extra: object) => (await both.inject({ method: 'POST', url: '/v1/collections/c1/search', payload: { query: 'who maintains the web server', top_k: 3, ...extra } })).json().results;
      const byDefault = await search({});
      expect(byDefault.length).toBe(3);
      expect(byDefault).toEqual(await search({ keyword_weight: 0.75 }));
      expect(byDefault.map((h: { score: number }) => h.score)).not.toEqual((await search({ keyword_weight: 0.5 })).map((h: { score: number }) => h.score));
    } finally {
      await both.close();
    }
    // The suite's app above lists no retrieve-demo: its collections fell back to sts-demo (first test).
    expect(app.config.collections.embeddingModel).toBe('retrieve-demo');
  }, 60_000);
});
