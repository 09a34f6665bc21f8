/**
 * Collections: documents cut into chunks, each chunk embedded, searchable by vector, keyword (BM25) or both,
 * and read by a QA model. This file is the vocabulary and the one small interface every store implements
 * (stores/memory, stores/sqlite, stores/postgres). Pure types: no HTTP, no ONNX, no driver.
 */
import type { FilterNode } from './filter.ts';

export type MetadataValue = string | number | boolean | null;
export type Metadata = Record<string, MetadataValue>;

export interface Chunking {
  /** Tokens of the embedding model per chunk, special tokens included. */
  maxTokens: number;
  /** Tokens a chunk shares with the one before it. */
  overlapTokens: number;
}

export interface CollectionRecord {
  name: string;
  /** The embedding model the collection was built with, by name, and the version that embedded it. */
  embeddingModel: string;
  embeddingVersion: string;
  dim: number;
  chunking: Chunking;
  createdAt: string;
  /** Bumped by every write: what a cached answer over the collection is keyed by. */
  version: number;
}

export interface CollectionInfo extends CollectionRecord {
  documents: number;
  chunks: number;
}

export interface ChunkRecord {
  /** Position of the chunk in its document. */
  index: number;
  /** [start, end) in UTF-16 code units of the document text: text === document.text.slice(start, end). */
  start: number;
  end: number;
  text: string;
  vector: Float32Array;
  /** The chunk's keyword terms (src/collections/analyzer.ts), for BM25. */
  terms: string[];
}

export interface DocumentRecord {
  id: string;
  text: string;
  metadata: Metadata;
  chunks: ChunkRecord[];
}

export interface StoredDocument {
  id: string;
  text: string;
  metadata: Metadata;
  chunks: number;
}

export interface Hit {
  documentId: string;
  chunkIndex: number;
  start: number;
  end: number;
  text: string;
  metadata: Metadata;
  /** Cosine similarity (vector), BM25 (keyword): higher is better. */
  score: number;
}

export interface ChunkRef {
  documentId: string;
  chunkIndex: number;
  text: string;
}

/**
 * What every store does. Writes are atomic (all of a call or none of it is ever visible) and durable once
 * they resolve; reads see committed writes only.
 */
export interface CollectionStore {
  readonly kind: 'memory' | 'sqlite' | 'postgres';
  open(): Promise<void>;
  close(): Promise<void>;
  /** Throws GatewayError conflict when the name is taken. */
  createCollection(c: CollectionRecord): Promise<void>;
  getCollection(name: string): Promise<CollectionInfo | undefined>;
  listCollections(): Promise<CollectionInfo[]>;
  /** Removes the collection, its documents and chunks. */
  deleteCollection(name: string): Promise<boolean>;
  /**
   * Writes documents, each replacing the one with its id whole (no chunk of the old version survives).
   * Refuses with GatewayError too_large, writing nothing, when the collection would hold more than maxChunks.
   */
  upsert(collection: string, docs: DocumentRecord[], opts: { maxChunks: number }): Promise<{ chunks: number }>;
  getDocument(collection: string, id: string): Promise<StoredDocument | undefined>;
  /** Deletes by id or by metadata filter; resolves with how many documents went. */
  deleteDocuments(collection: string, sel: { ids?: string[]; filter?: FilterNode }): Promise<number>;
  /** The k chunks most similar (cosine) to `vector` among those whose document matches `filter`. */
  vectorSearch(collection: string, vector: Float32Array, k: number, filter?: FilterNode): Promise<Hit[]>;
  /** The k chunks with the best BM25 score for `terms`. */
  keywordSearch(collection: string, terms: string[], k: number, filter?: FilterNode): Promise<Hit[]>;
  /** Which of these document ids still exist (a search checks its answer against deletes that raced it). */
  existing(collection: string, ids: string[]): Promise<Set<string>>;
  /** Every chunk's text, in document order (re-embedding). */
  chunkTexts(collection: string): Promise<ChunkRef[]>;
  /** Replaces every chunk's vector and the collection's model in one write. */
  reembed(collection: string, model: { name: string; version: string; dim: number }, vectors: Map<string, Float32Array>): Promise<void>;
  /** Bytes the store takes (files, or an estimate for memory). */
  sizeBytes(): Promise<number>;
}

/** The key of a chunk in maps: document id and chunk index. */
export const chunkKey = (documentId: string, index: number) => `${documentId}\u0000${index}`;
