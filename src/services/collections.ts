/**
 * Question answering over document collections (Haystack's blueprint): ingest (chunk on the embedding model's
 * tokens, embed through the same batcher and workers as every request, write atomically), retrieve (vector,
 * keyword BM25, or hybrid by reciprocal rank fusion, with metadata filters), rerank the candidates with a
 * text-ranking model, and read them with a QA model in one batched submission. Every offset it returns points
 * into the original document. Knows nothing of HTTP; the store is behind src/collections/types.ts.
 */
import { randomUUID } from 'node:crypto';
import { GatewayError } from '../errors.ts';
import type { GatewayConfig } from '../config/schema.ts';
import type { Lease, ModelRegistry, ServingModel } from '../inference/registry.ts';
import type { PoolLogger } from '../inference/pool.ts';
import { queryTerms, terms } from '../collections/analyzer.ts';
import { chunkSpans } from '../collections/chunker.ts';
import { checkMetadata, type FilterNode } from '../collections/filter.ts';
import { reciprocalRankFusion, RRF_K } from '../collections/fusion.ts';
import { chunkKey, type Chunking, type CollectionInfo, type CollectionStore, type DocumentRecord, type Hit, type Metadata } from '../collections/types.ts';
import { uncached, type ServiceContext } from './context.ts';
import { embed } from './embeddings.ts';
import { answerQuestions } from './qa.ts';
import { cachedAnswers, resultKey } from './caches.ts';
import { rerank } from './ranking.ts';

export const COLLECTION_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
// eslint-disable-next-line no-control-regex -- ids must not hold control characters
const DOCUMENT_ID = /^[^\u0000-\u001f]{1,256}$/;
/** Chunks embedded per submission while ingesting, and submissions in flight (keeps both workers busy). */
const EMBED_SLICE = 128;
const EMBED_PARALLEL = 2;

export type RetrievalMode = 'vector' | 'keyword' | 'hybrid';

export interface DocumentInput {
  id?: unknown;
  text?: unknown;
  metadata?: unknown;
}

/** A source's stand-in for a document it could not read (an NDJSON line that is not JSON): reported where it was. */
export class BadDocument {
  constructor(readonly problem: string) {}
}

export interface SearchOptions {
  query: string;
  topK?: number;
  filter?: FilterNode;
  mode?: RetrievalMode;
  /**
   * Hybrid only: BM25's weight in the fusion, the embedding model's list getting 1 - w (0.5: plain RRF). Default:
   * the embedding model's calibrated gateway.json `hybrid_keyword_weight`, else 0.5.
   */
  keywordWeight?: number;
  /** Rerank the candidates with a text-ranking model (the default one, or the named one). */
  rerank?: boolean | { model?: string; candidates?: number };
}

/** The rerank step a search asked for: `true` is the defaults, false or absent none. */
const rerankOptions = (rerank: SearchOptions['rerank']): { model?: string; candidates?: number } | undefined => (rerank === true ? {} : rerank || undefined);

export interface SearchResult extends Hit {
  /** Which score `score` is. */
  scoredBy: 'cosine' | 'bm25' | 'rrf' | 'rerank';
}

export interface CollectionAnswer {
  answer: string;
  score: number;
  document_id: string | null;
  start: number;
  end: number;
  metadata: Metadata | null;
  /** The chunk it was read in. */
  chunk: { index: number; start: number; end: number } | null;
}

export interface CollectionEvents {
  onIngest?(e: { collection: string; documents: number; chunks: number; seconds: number }): void;
  onRetrieve?(e: { mode: RetrievalMode | 'rerank'; seconds: number }): void;
  onRead?(e: { seconds: number; chunks: number }): void;
}

type Limits = GatewayConfig['collections'];

/** The special tokens the model's template adds to one text ([CLS] … [SEP]: 2). */
async function specialTokens(model: ServingModel): Promise<number> {
  const ids = await model.tokenizer.encodeIds('a');
  return ids.ids.length - (await model.tokenizer.tokenOffsets('a')).length / 2;
}

export class CollectionService {
  constructor(
    readonly store: CollectionStore,
    private readonly models: ModelRegistry,
    private readonly limits: Limits,
    private readonly logger: PoolLogger,
    private readonly events: CollectionEvents = {},
  ) {}

  private async collection(name: string): Promise<CollectionInfo> {
    const c = await this.store.getCollection(name);
    if (!c) {
      const names = (await this.store.listCollections()).map((x) => x.name);
      throw new GatewayError('not_found', `no collection "${name}"; collections: ${names.join(', ') || '(none)'}`, { details: { collections: names } });
    }
    return c;
  }

  /** The collection's embedding model, refused with 409 when it is not the version the collection was built with. */
  private async embedder(c: CollectionInfo, lease?: Lease): Promise<ServingModel> {
    let model: ServingModel;
    try {
      model = await this.models.resolve('sentence-similarity', c.embeddingModel, lease);
    } catch (err) {
      if (err instanceof GatewayError && err.code === 'model_not_found') {
        throw new GatewayError('conflict', `collection "${c.name}" was built with model "${c.embeddingModel}", which is not served now; add it back or re-embed with POST /v1/collections/${c.name}/reembed`, {
          details: { collection: c.name, embedding_model: c.embeddingModel, embedding_version: c.embeddingVersion },
        });
      }
      throw err;
    }
    if (model.version !== c.embeddingVersion) {
      throw new GatewayError('conflict', `collection "${c.name}" was embedded by ${c.embeddingModel} version ${c.embeddingVersion}; that model is now version ${model.version}, whose vectors must not mix with the old ones: re-embed with POST /v1/collections/${c.name}/reembed`, {
        details: { collection: c.name, embedding_model: c.embeddingModel, built_with: c.embeddingVersion, now: model.version },
      });
    }
    return model;
  }

  async create(input: { name: string; embedding_model?: string; chunking?: { max_tokens?: number; overlap_tokens?: number } }, ctx: ServiceContext, lease?: Lease): Promise<CollectionInfo> {
    if (!COLLECTION_NAME.test(input.name)) throw new GatewayError('invalid_request', `collection name must match ${COLLECTION_NAME} (letters, digits, . _ -, at most 64)`);
    if ((await this.store.listCollections()).length >= this.limits.maxCollections) {
      throw new GatewayError('too_large', `the gateway holds ${this.limits.maxCollections} collections, its limit; delete one first`, { details: { limit: this.limits.maxCollections } });
    }
    const model = await this.models.resolve('sentence-similarity', input.embedding_model ?? this.limits.embeddingModel, lease);
    const window = model.manifest.maxLength;
    const maxTokens = input.chunking?.max_tokens ?? Math.min(window, this.limits.defaultChunkTokens);
    if (maxTokens > window) throw new GatewayError('invalid_request', `chunking.max_tokens is ${maxTokens}; model "${model.name}" reads at most ${window} tokens`);
    if (maxTokens < 8) throw new GatewayError('invalid_request', 'chunking.max_tokens must be at least 8');
    const overlapTokens = input.chunking?.overlap_tokens ?? Math.min(this.limits.defaultOverlapTokens, Math.floor(maxTokens / 4));
    if (overlapTokens >= maxTokens / 2) throw new GatewayError('invalid_request', `chunking.overlap_tokens must be under half of max_tokens (${maxTokens})`);
    const dim = (await embed(model, ['dimension probe'], uncached(ctx))).vectors[0].length;
    const chunking: Chunking = { maxTokens, overlapTokens };
    await this.store.createCollection({ name: input.name, embeddingModel: model.name, embeddingVersion: model.version, dim, chunking, createdAt: new Date().toISOString(), version: 0 });
    return this.collection(input.name);
  }

  list(): Promise<CollectionInfo[]> {
    return this.store.listCollections();
  }

  get(name: string): Promise<CollectionInfo> {
    return this.collection(name);
  }

  async remove(name: string): Promise<void> {
    if (!(await this.store.deleteCollection(name))) await this.collection(name);
  }

  /**
   * Ingests documents from any source (a JSON list, an NDJSON stream, uploaded files), read as they come: a
   * bad document fails the whole request (400 naming where), nothing is written until every document is
   * chunked and embedded, then all are written in one atomic write.
   */
  async ingest(name: string, docs: AsyncIterable<{ doc: DocumentInput | BadDocument; where: string }>, ctx: ServiceContext, lease?: Lease): Promise<{ ingested: number; chunks: number; ids: string[] }> {
    const t0 = performance.now();
    const c = await this.collection(name);
    const model = await this.embedder(c, lease);
    const budget = c.chunking.maxTokens - (await specialTokens(model));
    const records: DocumentRecord[] = [];
    const errors: string[] = [];
    let pending: { record: DocumentRecord; texts: string[] }[] = [];
    let pendingChunks = 0;
    const inFlight = new Set<Promise<void>>();
    const ingestCtx: ServiceContext = uncached(ctx);
    let lastLog = performance.now();
    let embedded = 0;
    const flush = () => {
      const batch = pending;
      pending = [];
      pendingChunks = 0;
      const texts = batch.flatMap((b) => b.texts);
      const p = (async () => {
        const { vectors } = await embed(model, texts, ingestCtx, { truncate: true, names: texts.map((_, i) => `chunk ${i}`) });
        let at = 0;
        for (const b of batch) for (const ch of b.record.chunks) ch.vector = vectors[at++];
        embedded += texts.length;
        if (performance.now() - lastLog > 10_000) {
          lastLog = performance.now();
          this.logger.info({ collection: name, documents: records.length, chunksEmbedded: embedded }, `ingesting into ${name}: ${embedded} chunks embedded`);
        }
      })();
      inFlight.add(p);
      void p.finally(() => inFlight.delete(p)).catch(() => undefined);
      return p;
    };
    let count = 0;
    for await (const { doc, where } of docs) {
      if (++count > this.limits.maxDocumentsPerRequest) {
        throw new GatewayError('too_large', `more than ${this.limits.maxDocumentsPerRequest} documents in one request; send them in several`, { details: { limit: this.limits.maxDocumentsPerRequest } });
      }
      let record: DocumentRecord;
      try {
        record = await this.prepare(doc, where, model, budget, c);
      } catch (err) {
        if (!(err instanceof GatewayError) || err.code !== 'invalid_request') throw err;
        errors.push(err.message);
        if (errors.length >= 20) break;
        continue;
      }
      if (errors.length) continue; // nothing will be written: stop spending inference on it
      records.push(record);
      if (record.chunks.length) {
        pending.push({ record, texts: record.chunks.map((ch) => ch.text) });
        pendingChunks += record.chunks.length;
      }
      if (pendingChunks >= EMBED_SLICE) {
        void flush();
        // Backpressure: stop reading the source while enough is in flight.
        while (inFlight.size >= EMBED_PARALLEL) await Promise.race(inFlight);
      }
    }
    if (errors.length) {
      await Promise.allSettled(inFlight);
      throw new GatewayError('invalid_request', `nothing was ingested: ${errors.slice(0, 5).join('; ')}${errors.length > 5 ? `; and ${errors.length - 5} more` : ''}`, { details: { errors } });
    }
    if (records.length === 0) throw new GatewayError('invalid_request', 'no documents to ingest');
    if (pendingChunks) void flush();
    await Promise.all(inFlight);
    const written = await this.store.upsert(name, records, { maxChunks: this.limits.maxChunksPerCollection });
    const seconds = (performance.now() - t0) / 1000;
    this.events.onIngest?.({ collection: name, documents: records.length, chunks: written.chunks, seconds });
    if (seconds > 5) this.logger.info({ collection: name, documents: records.length, chunks: written.chunks, seconds: Number(seconds.toFixed(1)) }, `ingested into ${name}`);
    return { ingested: records.length, chunks: written.chunks, ids: records.map((r) => r.id) };
  }

  /** Checks one document and cuts it into chunks (vectors come later, in batches). */
  private async prepare(doc: DocumentInput | BadDocument, where: string, model: ServingModel, budget: number, c: CollectionInfo): Promise<DocumentRecord> {
    if (doc instanceof BadDocument) throw new GatewayError('invalid_request', `${where} ${doc.problem}`);
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new GatewayError('invalid_request', `${where} must be an object { id?, text, metadata? }`);
    const extra = Object.keys(doc).filter((k) => k !== 'id' && k !== 'text' && k !== 'metadata');
    if (extra.length) throw new GatewayError('invalid_request', `${where} has unknown field ${extra.map((k) => `"${k}"`).join(', ')}; a document is { id?, text, metadata? }`);
    if (typeof doc.text !== 'string' || doc.text.trim() === '') throw new GatewayError('invalid_request', `${where}.text must be a non-empty string`);
    if (doc.text.length > this.limits.maxDocumentChars) {
      throw new GatewayError('too_large', `${where}.text is ${doc.text.length} characters; the limit is ${this.limits.maxDocumentChars}`, { details: { limit: this.limits.maxDocumentChars, length: doc.text.length } });
    }
    if (doc.id !== undefined && (typeof doc.id !== 'string' || !DOCUMENT_ID.test(doc.id))) throw new GatewayError('invalid_request', `${where}.id must be a string of 1 to 256 characters without control characters`);
    const metadata = checkMetadata(doc.metadata, `${where}.metadata`);
    const text = doc.text;
    const offsets = await model.tokenizer.tokenOffsets(text);
    const spans = chunkSpans(text, offsets, Math.max(1, budget), c.chunking.overlapTokens);
    return {
      id: (doc.id as string | undefined) ?? randomUUID(),
      text,
      metadata,
      chunks: spans.map((s, index) => {
        const chunkText = text.slice(s.start, s.end);
        return { index, start: s.start, end: s.end, text: chunkText, vector: new Float32Array(0), terms: terms(chunkText) };
      }),
    };
  }

  async getDocument(name: string, id: string) {
    await this.collection(name);
    const d = await this.store.getDocument(name, id);
    if (!d) throw new GatewayError('not_found', `no document "${id}" in collection "${name}"`);
    return d;
  }

  async deleteDocuments(name: string, sel: { ids?: string[]; filter?: FilterNode }): Promise<number> {
    await this.collection(name);
    return this.store.deleteDocuments(name, sel);
  }

  /** Re-embeds every chunk with the collection's model as it is now (or another), replacing all vectors at once. */
  async reembed(name: string, modelName: string | undefined, ctx: ServiceContext, lease?: Lease): Promise<CollectionInfo> {
    const c = await this.collection(name);
    const model = await this.models.resolve('sentence-similarity', modelName ?? c.embeddingModel, lease);
    const refs = await this.store.chunkTexts(name);
    const vectors = new Map<string, Float32Array>();
    const ingestCtx: ServiceContext = uncached(ctx);
    let dim = c.dim;
    for (let i = 0; i < refs.length; i += EMBED_SLICE) {
      const slice = refs.slice(i, i + EMBED_SLICE);
      const { vectors: vs } = await embed(model, slice.map((r) => r.text), ingestCtx, { truncate: true, names: slice.map((r) => `chunk ${r.chunkIndex} of ${r.documentId}`) });
      slice.forEach((r, j) => vectors.set(chunkKey(r.documentId, r.chunkIndex), vs[j]));
      dim = vs[0]?.length ?? dim;
    }
    if (refs.length === 0) dim = (await embed(model, ['dimension probe'], ingestCtx)).vectors[0].length;
    await this.store.reembed(name, { name: model.name, version: model.version, dim }, vectors);
    this.logger.info({ collection: name, model: model.name, version: model.version, chunks: refs.length }, `re-embedded ${name}`);
    return this.collection(name);
  }

  /** Candidates for a query: vector, keyword or hybrid retrieval, then the optional rerank; only documents that still exist. */
  async search(name: string, o: SearchOptions, ctx: ServiceContext, lease?: Lease): Promise<{ results: SearchResult[]; collection: CollectionInfo }> {
    const c = await this.collection(name);
    const topK = o.topK ?? 5;
    const mode = o.mode ?? 'hybrid';
    if (o.keywordWeight !== undefined && mode !== 'hybrid') throw new GatewayError('invalid_request', `keyword_weight weighs the two lists of hybrid retrieval; mode is ${mode}`);
    const rerankOpts = rerankOptions(o.rerank);
    const candidates = rerankOpts ? Math.max(topK, rerankOpts.candidates ?? 20) : topK;
    const t0 = performance.now();
    let results: SearchResult[];
    let embedder: ServingModel | undefined;
    const vector = async (k: number) => {
      const model = (embedder = await this.embedder(c, lease));
      const { vectors } = await embed(model, [o.query], ctx, { names: ['query'], truncate: true, step: true });
      return this.store.vectorSearch(name, vectors[0], k, o.filter);
    };
    const keyword = (k: number) => this.store.keywordSearch(name, queryTerms(o.query), k, o.filter);
    if (mode === 'vector') results = (await vector(candidates)).map((h) => ({ ...h, scoredBy: 'cosine' as const }));
    else if (mode === 'keyword') results = (await keyword(candidates)).map((h) => ({ ...h, scoredBy: 'bm25' as const }));
    else {
      // Each list deeper than what is kept: fusion rewards chunks both find.
      const [v, k] = await Promise.all([vector(candidates * 2), keyword(candidates * 2)]);
      // Weights 2(1 - w) and 2w: at w = 0.5 both are 1, the plain RRF scores.
      const w = o.keywordWeight ?? embedder?.manifest.hybridKeywordWeight ?? 0.5;
      results = reciprocalRankFusion([v, k], (h) => chunkKey(h.documentId, h.chunkIndex), RRF_K, [2 * (1 - w), 2 * w])
        .slice(0, candidates)
        .map(({ item, score }) => ({ ...item, score, scoredBy: 'rrf' as const }));
    }
    this.events.onRetrieve?.({ mode, seconds: (performance.now() - t0) / 1000 });
    if (rerankOpts && results.length) {
      const t1 = performance.now();
      const ranker = await this.models.resolve('text-ranking', rerankOpts.model, lease);
      const ranked = await rerank(ranker, o.query, results.map((r) => r.text), ctx, { truncate: true });
      results = ranked.map((r) => ({ ...results[r.index], score: r.score, scoredBy: 'rerank' as const }));
      this.events.onRetrieve?.({ mode: 'rerank', seconds: (performance.now() - t1) / 1000 });
    }
    results = results.slice(0, topK);
    // A delete that committed while this search ran must not show up in its answer.
    const alive = await this.store.existing(name, [...new Set(results.map((r) => r.documentId))]);
    return { results: results.filter((r) => alive.has(r.documentId)), collection: c };
  }

  /**
   * Answers from the collection: the retrieved (and reranked) chunks are read by the QA model in one batched
   * submission, answers ranked across documents by the reader's span score, duplicates (the same span of the
   * same document, read in two overlapping chunks) merged, offsets mapped into the original documents.
   */
  async qa(
    name: string,
    o: SearchOptions & { question: string; retrieveK?: number; readK?: number; model?: string; handleImpossibleAnswer?: boolean; maxAnswerLength?: number; stride: number },
    ctx: ServiceContext,
    lease?: Lease,
  ): Promise<{ model: ServingModel; answers: CollectionAnswer[]; read: number }> {
    const reader = await this.models.resolve('question-answering', o.model, lease);
    const c = await this.collection(name);
    // Every model the answer depends on is checked and keyed before the cache is read, so a cached answer is
    // refused exactly where a fresh one would be (a replaced embedding model: 409 until re-embedded) and a
    // replaced reranker is never answered for by the old one.
    const embedder = (o.mode ?? 'hybrid') === 'keyword' ? undefined : await this.embedder(c, lease);
    const rerankOpts = rerankOptions(o.rerank);
    const ranker = rerankOpts ? await this.models.resolve('text-ranking', rerankOpts.model, lease) : undefined;
    // The whole answer is cached per collection version (every write bumps it): exactly, and with the semantic
    // cache on, for a question like an earlier one about the same version of the same collection.
    const options = JSON.stringify([o.topK, o.retrieveK, o.readK, o.filter, o.mode, o.keywordWeight, o.rerank, o.handleImpossibleAnswer, o.maxAnswerLength, o.stride, embedder?.cacheKey, ranker?.cacheKey]);
    const [answer] = await cachedAnswers(
      ctx,
      [{ key: resultKey(reader.cacheKey, 'collection-qa', [name, c.version, o.question, options]), ...(ctx.caches?.semantic?.covers('question-answering') ? { semantic: { scope: `collection-qa\u0000${reader.cacheKey}\u0000${name}\u0000${c.version}\u0000${options}`, text: o.question } } : {}) }],
      async () => [await this.answer(name, reader, o, ctx, lease)],
    );
    return { model: reader, ...answer };
  }

  private async answer(
    name: string,
    reader: ServingModel,
    o: SearchOptions & { question: string; retrieveK?: number; readK?: number; handleImpossibleAnswer?: boolean; maxAnswerLength?: number; stride: number },
    ctx: ServiceContext,
    lease?: Lease,
  ): Promise<{ answers: CollectionAnswer[]; read: number }> {
    const retrieveK = o.retrieveK ?? 10;
    const { results } = await this.search(name, { ...o, query: o.question, topK: retrieveK }, ctx, lease);
    const chunks = results.slice(0, o.readK ?? retrieveK);
    if (chunks.length === 0) return { answers: [], read: 0 };
    const t0 = performance.now();
    const read = await answerQuestions(reader, chunks.map((ch) => ({ question: o.question, context: ch.text })), ctx, {
      topK: Math.max(3, o.topK ?? 3),
      maxAnswerLength: o.maxAnswerLength ?? 30,
      handleImpossibleAnswer: o.handleImpossibleAnswer ?? false,
      stride: o.stride,
      // The collection's own cache entry covers the whole answer; its chunks' reads are not cached one by one.
      semantic: false,
    });
    this.events.onRead?.({ seconds: (performance.now() - t0) / 1000, chunks: chunks.length });
    const merged = new Map<string, CollectionAnswer>();
    let abstained = 0;
    let nullScore = Infinity;
    read.forEach((r, i) => {
      const ch = chunks[i];
      if (r.answers[0] && r.answers[0].answer === '' && r.answers[0].end === 0) {
        abstained++;
        nullScore = Math.min(nullScore, r.answers[0].score);
      }
      for (const a of r.answers) {
        if (a.answer === '' && a.end === 0) continue;
        const start = ch.start + a.start;
        const end = ch.start + a.end;
        const key = `${ch.documentId}\u0000${start}\u0000${end}`;
        const prev = merged.get(key);
        if (!prev || prev.score < a.score) {
          merged.set(key, { answer: a.answer, score: a.score, document_id: ch.documentId, start, end, metadata: ch.metadata, chunk: { index: ch.chunkIndex, start: ch.start, end: ch.end } });
        }
      }
    });
    const ranked = [...merged.values()].sort((a, b) => b.score - a.score || a.start - b.start).slice(0, o.topK ?? 3);
    if (o.handleImpossibleAnswer && abstained === chunks.length) {
      return { answers: [{ answer: '', score: nullScore, document_id: null, start: 0, end: 0, metadata: null, chunk: null }], read: chunks.length };
    }
    return { answers: ranked, read: chunks.length };
  }
}
