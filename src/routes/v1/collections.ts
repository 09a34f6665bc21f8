import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import multipart from '@fastify/multipart';
import { createInterface } from 'node:readline';
import { Readable, Transform } from 'node:stream';
import { GatewayError } from '../../errors.ts';
import { parseFilter } from '../../collections/filter.ts';
import type { CollectionInfo } from '../../collections/types.ts';
import { BadDocument, type DocumentInput, type RetrievalMode } from '../../services/collections.ts';
import { checkText } from '../../services/limits.ts';
import { inferenceErrors, ModelName } from '../schemas.ts';
import { ctxOf } from '../context.ts';

const Name = Type.String({ minLength: 1, maxLength: 64, examples: ['docs'], description: 'Collection name' });
const Params = Type.Object({ name: Name });
const DocParams = Type.Object({ name: Name, id: Type.String({ minLength: 1, maxLength: 256 }) });
const Filter = Type.Record(Type.String(), Type.Unknown(), {
  description: 'Metadata filter: { "field": value } (equality), { "field": { "$in": [..] } }, several fields (all hold), { "$and": [..] }, { "$or": [..] }',
  examples: [{ lang: 'en' }],
});
const Mode = Type.Union([Type.Literal('vector'), Type.Literal('keyword'), Type.Literal('hybrid')], { description: 'hybrid (default): reciprocal rank fusion of vector and BM25 keyword retrieval' });
const KeywordWeight = Type.Number({
  minimum: 0,
  maximum: 1,
  description: "hybrid only: BM25's weight in the fusion, the vector list getting 1 - w (0.5: plain RRF; 1: keyword order first). Default: the embedding model's calibrated gateway.json hybrid_keyword_weight (retrieve-demo: 0.75), else 0.5",
});
const Rerank = Type.Union([Type.Boolean(), Type.Object({ model: Type.Optional(ModelName), candidates: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, description: 'Candidates the cross-encoder reads (default 20)' })) })], {
  description: 'Rerank the retrieved candidates with a text-ranking model (true: the default one)',
});

const CollectionOut = Type.Object({
  name: Type.String(),
  embedding_model: Type.String(),
  embedding_version: Type.String({ description: 'The model version that embedded it: queries need that version (409 otherwise)' }),
  dim: Type.Integer(),
  chunking: Type.Object({ max_tokens: Type.Integer(), overlap_tokens: Type.Integer() }),
  documents: Type.Integer(),
  chunks: Type.Integer(),
  created_at: Type.String(),
  version: Type.Integer({ description: 'Bumped by every write' }),
});

const out = (c: CollectionInfo) => ({
  name: c.name,
  embedding_model: c.embeddingModel,
  embedding_version: c.embeddingVersion,
  dim: c.dim,
  chunking: { max_tokens: c.chunking.maxTokens, overlap_tokens: c.chunking.overlapTokens },
  documents: c.documents,
  chunks: c.chunks,
  created_at: c.createdAt,
  version: c.version,
});

const DocumentIn = Type.Object(
  { id: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })), text: Type.String({ minLength: 1 }), metadata: Type.Optional(Type.Record(Type.String(), Type.Unknown())) },
  { additionalProperties: false },
);
const IngestJson = Type.Object(
  { documents: Type.Array(DocumentIn, { minItems: 1 }) },
  {
    examples: [
      {
        documents: [
          { id: 'nginx', text: 'The nginx package provides a small, powerful, scalable web and proxy server. It is maintained by the Debian Nginx Maintainers.', metadata: { section: 'httpd' } },
          { id: 'curl', text: 'curl is a command line tool for transferring data with URL syntax. It is maintained by the Debian curl Maintainers.', metadata: { section: 'web' } },
        ],
      },
    ],
  },
);

const Hit = Type.Object({
  document_id: Type.String(),
  score: Type.Number(),
  scored_by: Type.Union([Type.Literal('cosine'), Type.Literal('bm25'), Type.Literal('rrf'), Type.Literal('rerank')]),
  text: Type.String({ description: 'The chunk: document.text.slice(start, end)' }),
  start: Type.Integer(),
  end: Type.Integer(),
  chunk_index: Type.Integer(),
  metadata: Type.Record(Type.String(), Type.Unknown()),
});

const SearchBody = Type.Object(
  { query: Type.String({ minLength: 1 }), top_k: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 5 })), filter: Type.Optional(Filter), mode: Type.Optional(Mode), keyword_weight: Type.Optional(KeywordWeight), rerank: Type.Optional(Rerank) },
  { examples: [{ query: 'Who maintains the web server?', top_k: 3 }] },
);

const QaBody = Type.Object(
  {
    question: Type.String({ minLength: 1 }),
    top_k: Type.Optional(Type.Integer({ minimum: 1, maximum: 20, default: 3, description: 'Answers to return' })),
    retrieve_k: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 10, description: 'Chunks retrieved (and reranked) for the reader' })),
    read_k: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, description: 'Of those, how many the reader reads (default all)' })),
    filter: Type.Optional(Filter),
    mode: Type.Optional(Mode),
    keyword_weight: Type.Optional(KeywordWeight),
    rerank: Type.Optional(Rerank),
    handle_impossible_answer: Type.Optional(Type.Boolean({ default: false, description: 'Answer "" when every chunk the reader reads says it does not answer' })),
    max_answer_length: Type.Optional(Type.Integer({ minimum: 1, maximum: 512, default: 30 })),
    model: Type.Optional({ ...ModelName, description: 'The question-answering model that reads (the task default when omitted)' }),
  },
  { examples: [{ question: 'Who maintains the nginx package?', top_k: 2 }] },
);

const Answer = Type.Object({
  answer: Type.String({ description: 'Exactly document.text.slice(start, end) ("" for no answer)' }),
  score: Type.Number(),
  document_id: Type.Union([Type.String(), Type.Null()]),
  start: Type.Integer({ description: 'UTF-16 index into the original document text' }),
  end: Type.Integer(),
  metadata: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()]),
  chunk: Type.Union([Type.Object({ index: Type.Integer(), start: Type.Integer(), end: Type.Integer() }), Type.Null()]),
});

const FILE_TYPES = ['.txt', '.md', '.json', '.jsonl'];

/**
 * Lines of a stream, as they arrive (backpressure: the stream is read only as fast as lines are taken). The
 * reader is made on the first line asked for: lines that readline emits before its async iterator exists are lost.
 */
async function* lines(stream: Readable, limit: number): AsyncIterable<string> {
  let bytes = 0;
  const counted = stream.pipe(
    new Transform({
      transform(chunk: Buffer, _enc, cb) {
        bytes += chunk.length;
        if (bytes > limit) cb(new GatewayError('too_large', `the upload is over the limit of ${limit} bytes (collections.maxUploadBytes)`, { details: { limit } }));
        else cb(null, chunk);
      },
    }),
  );
  stream.on('error', (e) => counted.destroy(e));
  yield* createInterface({ input: counted, crlfDelay: Infinity });
}

/** NDJSON documents, one per line, each named by its line number; a line that is not JSON is a bad document there. */
async function* ndjsonDocs(source: AsyncIterable<string>, prefix: string): AsyncIterable<{ doc: DocumentInput | BadDocument; where: string }> {
  let n = 0;
  for await (const line of source) {
    n++;
    if (line.trim() === '') continue;
    let doc: unknown;
    try {
      doc = JSON.parse(line);
    } catch {
      yield { doc: new BadDocument('is not valid JSON'), where: `${prefix}line ${n}` };
      continue;
    }
    yield { doc: doc as DocumentInput, where: `${prefix}line ${n}` };
  }
}

const decoder = new TextDecoder('utf-8', { fatal: true });

/** Documents of the uploaded files: a .txt or .md file is one document (id: its file name); .json and .jsonl hold documents. */
async function* fileDocs(req: FastifyRequest, limit: number): AsyncIterable<{ doc: DocumentInput | BadDocument; where: string }> {
  let files = 0;
  for await (const part of req.parts()) {
    if (part.type !== 'file') continue;
    files++;
    const name = part.filename || `file-${files}`;
    const ext = FILE_TYPES.find((e) => name.toLowerCase().endsWith(e));
    if (!ext) {
      await part.toBuffer().catch(() => undefined);
      throw new GatewayError('unsupported_media_type', `file "${name}": send .txt, .md, .json or .jsonl files`);
    }
    if (ext === '.jsonl') {
      yield* ndjsonDocs(lines(part.file, limit), `file "${name}" `);
      continue;
    }
    const buf = await part.toBuffer();
    if (part.file.truncated) throw new GatewayError('too_large', `file "${name}" is over the limit of ${limit} bytes (collections.maxUploadBytes)`, { details: { limit } });
    let text: string;
    try {
      text = decoder.decode(buf);
    } catch {
      throw new GatewayError('invalid_request', `file "${name}" is not UTF-8 text`);
    }
    if (ext === '.json') {
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        throw new GatewayError('invalid_request', `file "${name}" is not valid JSON`);
      }
      const docs = Array.isArray(parsed) ? parsed : (parsed as { documents?: unknown })?.documents;
      if (!Array.isArray(docs)) throw new GatewayError('invalid_request', `file "${name}" must hold [documents] or { "documents": [...] }`);
      for (const [i, d] of docs.entries()) yield { doc: d as DocumentInput, where: `file "${name}" documents[${i}]` };
    } else {
      yield { doc: { id: name, text, metadata: { filename: name } }, where: `file "${name}"` };
    }
  }
  if (files === 0) throw new GatewayError('invalid_request', 'no file in the upload; send documents as file fields (.txt, .md, .json, .jsonl)');
}

async function* listDocs(docs: unknown[]): AsyncIterable<{ doc: DocumentInput | BadDocument; where: string }> {
  for (const [i, d] of docs.entries()) yield { doc: d as DocumentInput, where: `documents[${i}]` };
}

function filterOf(raw: unknown) {
  return raw === undefined ? undefined : parseFilter(raw);
}

/** Document collections: create, ingest (JSON, NDJSON, files), get, delete, search and QA. Writes need the write scope. */
const collections: FastifyPluginAsyncTypebox = async (app) => {
  const { collections: limits, limits: textLimits } = app.config;
  await app.register(multipart, { limits: { fileSize: limits.maxUploadBytes, files: limits.maxDocumentsPerRequest, fields: 16, parts: limits.maxDocumentsPerRequest + 16 } });
  // NDJSON bodies are not buffered: the handler reads them line by line as it ingests.
  app.addContentTypeParser('application/x-ndjson', (_req, payload, done) => done(null, payload));
  const write = { scope: 'write' as const };
  const tags = ['collections'];

  app.post('/v1/collections', {
    config: write,
    schema: {
      tags,
      description: 'Create a collection. Its chunks are embedded by `embedding_model` (when omitted: `collections.embeddingModel` from the config, else the default sentence-similarity model), whose version it remembers.',
      body: Type.Object(
        {
          name: Name,
          embedding_model: Type.Optional(ModelName),
          chunking: Type.Optional(Type.Object({ max_tokens: Type.Optional(Type.Integer({ minimum: 8 })), overlap_tokens: Type.Optional(Type.Integer({ minimum: 0 })) }, { additionalProperties: false })),
        },
        { additionalProperties: false, examples: [{ name: 'docs', chunking: { max_tokens: 128, overlap_tokens: 16 } }] },
      ),
      response: { 201: CollectionOut, ...inferenceErrors, 409: inferenceErrors[422] },
    },
    handler: async (req, reply) => reply.status(201).send(out(await app.collections.create(req.body, ctxOf(req), req.lease))),
  });

  app.get('/v1/collections', {
    schema: { tags, description: 'Every collection with its counts and the model it was built with.', response: { 200: Type.Object({ data: Type.Array(CollectionOut) }) } },
    handler: async () => ({ data: (await app.collections.list()).map(out) }),
  });

  app.get('/v1/collections/:name', {
    schema: { tags, description: 'One collection.', params: Params, response: { 200: CollectionOut, 404: inferenceErrors[404] } },
    handler: async (req) => out(await app.collections.get(req.params.name)),
  });

  app.delete('/v1/collections/:name', {
    config: write,
    schema: { tags, description: 'Delete a collection with its documents and chunks.', params: Params, response: { 200: Type.Object({ deleted: Type.String() }), 404: inferenceErrors[404] } },
    handler: async (req) => {
      await app.collections.remove(req.params.name);
      return { deleted: req.params.name };
    },
  });

  app.post('/v1/collections/:name/documents', {
    config: write,
    bodyLimit: limits.maxUploadBytes,
    schema: {
      tags,
      description:
        'Add documents: JSON `{ documents: [{ id?, text, metadata? }] }`, `application/x-ndjson` (one document a line, read as it streams), or multipart files (`.txt`, `.md` one document each, `.json`, `.jsonl`). A document with an existing id replaces the old one whole. All documents of a request become visible at once or none do; a bad one (reported by position or line number) means none.',
      params: Params,
      body: { content: { 'application/json': { schema: IngestJson } } } as never,
      response: { 200: Type.Object({ ingested: Type.Integer(), chunks: Type.Integer(), ids: Type.Array(Type.String()) }), ...inferenceErrors, 409: inferenceErrors[422] },
    },
    handler: async (req) => {
      const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
      let docs: AsyncIterable<{ doc: DocumentInput | BadDocument; where: string }>;
      if (req.isMultipart()) docs = fileDocs(req, limits.maxUploadBytes);
      else if (type === 'application/x-ndjson') docs = ndjsonDocs(lines(req.body as Readable, limits.maxUploadBytes), '');
      else {
        const body = req.body as { documents?: unknown };
        if (!Array.isArray(body?.documents)) throw new GatewayError('invalid_request', 'body.documents must be a list of { id?, text, metadata? }');
        if (body.documents.length > limits.maxDocumentsPerRequest) {
          throw new GatewayError('too_large', `documents has ${body.documents.length} items; the limit is ${limits.maxDocumentsPerRequest}`, { details: { limit: limits.maxDocumentsPerRequest } });
        }
        docs = listDocs(body.documents);
      }
      return app.collections.ingest(req.params.name, docs, ctxOf(req), req.lease);
    },
  });

  app.get('/v1/collections/:name/documents/:id', {
    schema: {
      tags,
      description: 'One document: its text, metadata and how many chunks it was cut into.',
      params: DocParams,
      response: { 200: Type.Object({ id: Type.String(), text: Type.String(), metadata: Type.Record(Type.String(), Type.Unknown()), chunks: Type.Integer() }), 404: inferenceErrors[404] },
    },
    handler: async (req) => app.collections.getDocument(req.params.name, req.params.id),
  });

  app.delete('/v1/collections/:name/documents/:id', {
    config: write,
    schema: { tags, description: 'Delete one document and its chunks.', params: DocParams, response: { 200: Type.Object({ deleted: Type.Integer() }), 404: inferenceErrors[404] } },
    handler: async (req) => {
      const n = await app.collections.deleteDocuments(req.params.name, { ids: [req.params.id] });
      if (n === 0) throw new GatewayError('not_found', `no document "${req.params.id}" in collection "${req.params.name}"`);
      return { deleted: n };
    },
  });

  app.delete('/v1/collections/:name/documents', {
    config: write,
    schema: {
      tags,
      description: 'Delete every document whose metadata matches `filter`.',
      params: Params,
      body: Type.Object({ filter: Filter }, { additionalProperties: false }),
      response: { 200: Type.Object({ deleted: Type.Integer() }), 400: inferenceErrors[400], 404: inferenceErrors[404] },
    },
    handler: async (req) => ({ deleted: await app.collections.deleteDocuments(req.params.name, { filter: parseFilter(req.body.filter) }) }),
  });

  app.post('/v1/collections/:name/reembed', {
    config: write,
    schema: {
      tags,
      description: 'Re-embed every chunk with the collection\'s model as it is now (after a new version: queries answer 409 until this is done), or with another `embedding_model`. All vectors are replaced in one write.',
      params: Params,
      body: Type.Object({ embedding_model: Type.Optional(ModelName) }, { additionalProperties: false, examples: [{ embedding_model: 'sts-demo' }] }),
      response: { 200: CollectionOut, ...inferenceErrors },
    },
    handler: async (req) => out(await app.collections.reembed(req.params.name, req.body.embedding_model, ctxOf(req), req.lease)),
  });

  app.post('/v1/collections/:name/search', {
    schema: {
      tags,
      description: 'Chunks for a query: vector, keyword (BM25) or hybrid (reciprocal rank fusion) retrieval with metadata filters, optionally reranked by a text-ranking model. Offsets point into the original document.',
      params: Params,
      body: SearchBody,
      response: { 200: Type.Object({ results: Type.Array(Hit) }), ...inferenceErrors, 409: inferenceErrors[422] },
    },
    handler: async (req) => {
      checkText('query', req.body.query, textLimits.maxTextChars);
      const { results } = await app.collections.search(req.params.name, { query: req.body.query, topK: req.body.top_k, filter: filterOf(req.body.filter), mode: req.body.mode as RetrievalMode | undefined, keywordWeight: req.body.keyword_weight, rerank: req.body.rerank }, ctxOf(req), req.lease);
      return { results: results.map((r) => ({ document_id: r.documentId, score: r.score, scored_by: r.scoredBy, text: r.text, start: r.start, end: r.end, chunk_index: r.chunkIndex, metadata: r.metadata })) };
    },
  });

  app.post('/v1/collections/:name/qa', {
    schema: {
      tags,
      description:
        'Answers from the collection: the retrieved (and optionally reranked) chunks are read by the QA model in one batched submission; answers ranked across documents, duplicates merged, each with its document, metadata and offsets into the original document text.',
      params: Params,
      body: QaBody,
      response: { 200: Type.Object({ model: Type.String(), model_version: Type.String(), read: Type.Integer({ description: 'Chunks the reader read' }), answers: Type.Array(Answer) }), ...inferenceErrors, 409: inferenceErrors[422] },
    },
    handler: async (req) => {
      const b = req.body;
      checkText('question', b.question, textLimits.maxTextChars);
      const r = await app.collections.qa(
        req.params.name,
        { query: b.question, question: b.question, topK: b.top_k, retrieveK: b.retrieve_k, readK: b.read_k, filter: filterOf(b.filter), mode: b.mode as RetrievalMode | undefined, keywordWeight: b.keyword_weight, rerank: b.rerank, handleImpossibleAnswer: b.handle_impossible_answer, maxAnswerLength: b.max_answer_length, model: b.model, stride: textLimits.qaStride },
        ctxOf(req),
        req.lease,
      );
      app.feedback.answered(req.id, r.model.name, r.model.version);
      return { model: r.model.name, model_version: r.model.version, read: r.read, answers: r.answers };
    },
  });
};

export default collections;
