/**
 * The in-memory store: exact cosine search and BM25 over JS maps. Nothing persists: it is the semantic cache's
 * index and a reference the SQL stores are tested against, not a place for users' collections.
 */
import { GatewayError } from '../../../errors.ts';
import { bm25Term, idf } from '../../analyzer.ts';
import { matches, type FilterNode } from '../../filter.ts';
import { chunkKey, type ChunkRef, type CollectionInfo, type CollectionRecord, type CollectionStore, type DocumentRecord, type Hit, type StoredDocument } from '../../types.ts';

interface MemCollection {
  record: CollectionRecord;
  docs: Map<string, DocumentRecord>;
}

function dot(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

function norm(a: Float32Array): number {
  return Math.sqrt(dot(a, a)) || 1;
}

export class MemoryStore implements CollectionStore {
  readonly kind = 'memory' as const;
  private readonly collections = new Map<string, MemCollection>();

  async open(): Promise<void> {}
  async close(): Promise<void> {}

  private get(name: string): MemCollection {
    const c = this.collections.get(name);
    if (!c) throw new GatewayError('not_found', `no collection "${name}"`);
    return c;
  }

  private info(c: MemCollection): CollectionInfo {
    let chunks = 0;
    for (const d of c.docs.values()) chunks += d.chunks.length;
    return { ...c.record, chunking: { ...c.record.chunking }, documents: c.docs.size, chunks };
  }

  async createCollection(r: CollectionRecord): Promise<void> {
    if (this.collections.has(r.name)) throw new GatewayError('conflict', `collection "${r.name}" exists`);
    this.collections.set(r.name, { record: { ...r }, docs: new Map() });
  }

  async getCollection(name: string): Promise<CollectionInfo | undefined> {
    const c = this.collections.get(name);
    return c && this.info(c);
  }

  async listCollections(): Promise<CollectionInfo[]> {
    return [...this.collections.values()].map((c) => this.info(c)).sort((a, b) => a.name.localeCompare(b.name));
  }

  async deleteCollection(name: string): Promise<boolean> {
    return this.collections.delete(name);
  }

  async upsert(collection: string, docs: DocumentRecord[], opts: { maxChunks: number }): Promise<{ chunks: number }> {
    const c = this.get(collection);
    // Copies: a store owns what it holds (a caller's records may change after the write).
    const replaced = new Map<string, DocumentRecord>();
    for (const d of docs) replaced.set(d.id, { ...d, metadata: { ...d.metadata }, chunks: d.chunks.map((ch) => ({ ...ch, vector: Float32Array.from(ch.vector), terms: [...ch.terms] })) });
    let total = 0;
    for (const [id, d] of c.docs) if (!replaced.has(id)) total += d.chunks.length;
    for (const d of replaced.values()) total += d.chunks.length;
    if (total > opts.maxChunks) throw new GatewayError('too_large', `collection "${collection}" would hold ${total} chunks; the limit is ${opts.maxChunks}`, { details: { limit: opts.maxChunks } });
    for (const d of replaced.values()) c.docs.set(d.id, d);
    c.record.version++;
    return { chunks: docs.reduce((n, d) => n + d.chunks.length, 0) };
  }

  async getDocument(collection: string, id: string): Promise<StoredDocument | undefined> {
    const d = this.get(collection).docs.get(id);
    return d && { id: d.id, text: d.text, metadata: d.metadata, chunks: d.chunks.length };
  }

  async deleteDocuments(collection: string, sel: { ids?: string[]; filter?: FilterNode }): Promise<number> {
    const c = this.get(collection);
    let n = 0;
    for (const [id, d] of c.docs) {
      if ((sel.ids && sel.ids.includes(id)) || (sel.filter && matches(d.metadata, sel.filter))) {
        c.docs.delete(id);
        n++;
      }
    }
    if (n) c.record.version++;
    return n;
  }

  private *chunks(c: MemCollection, filter?: FilterNode) {
    for (const d of c.docs.values()) {
      if (filter && !matches(d.metadata, filter)) continue;
      for (const ch of d.chunks) yield { d, ch };
    }
  }

  async vectorSearch(collection: string, vector: Float32Array, k: number, filter?: FilterNode): Promise<Hit[]> {
    const c = this.get(collection);
    const qn = norm(vector);
    const hits: Hit[] = [];
    for (const { d, ch } of this.chunks(c, filter)) {
      hits.push({ documentId: d.id, chunkIndex: ch.index, start: ch.start, end: ch.end, text: ch.text, metadata: d.metadata, score: dot(vector, ch.vector) / (qn * norm(ch.vector)) });
    }
    return hits.sort((a, b) => b.score - a.score).slice(0, k);
  }

  async keywordSearch(collection: string, terms: string[], k: number, filter?: FilterNode): Promise<Hit[]> {
    const c = this.get(collection);
    const all = [...this.chunks(c)];
    if (all.length === 0 || terms.length === 0) return [];
    const avg = all.reduce((n, x) => n + x.ch.terms.length, 0) / all.length;
    const df = new Map(terms.map((t) => [t, 0]));
    for (const { ch } of all) for (const t of new Set(ch.terms)) if (df.has(t)) df.set(t, df.get(t)! + 1);
    const hits: Hit[] = [];
    for (const { d, ch } of all) {
      if (filter && !matches(d.metadata, filter)) continue;
      const tf = new Map<string, number>();
      for (const t of ch.terms) if (df.has(t)) tf.set(t, (tf.get(t) ?? 0) + 1);
      if (tf.size === 0) continue;
      let score = 0;
      for (const [t, f] of tf) score += bm25Term(f, ch.terms.length, avg, idf(all.length, df.get(t)!));
      hits.push({ documentId: d.id, chunkIndex: ch.index, start: ch.start, end: ch.end, text: ch.text, metadata: d.metadata, score });
    }
    return hits.sort((a, b) => b.score - a.score).slice(0, k);
  }

  async existing(collection: string, ids: string[]): Promise<Set<string>> {
    const c = this.collections.get(collection);
    return new Set(ids.filter((id) => c?.docs.has(id)));
  }

  async chunkTexts(collection: string): Promise<ChunkRef[]> {
    return [...this.chunks(this.get(collection))].map(({ d, ch }) => ({ documentId: d.id, chunkIndex: ch.index, text: ch.text }));
  }

  async reembed(collection: string, model: { name: string; version: string; dim: number }, vectors: Map<string, Float32Array>): Promise<void> {
    const c = this.get(collection);
    for (const { d, ch } of this.chunks(c)) if (!vectors.has(chunkKey(d.id, ch.index))) throw new GatewayError('internal_error', `no new vector for chunk ${ch.index} of ${d.id}`);
    for (const { d, ch } of this.chunks(c)) ch.vector = Float32Array.from(vectors.get(chunkKey(d.id, ch.index))!);
    Object.assign(c.record, { embeddingModel: model.name, embeddingVersion: model.version, dim: model.dim });
    c.record.version++;
  }

  async sizeBytes(): Promise<number> {
    let n = 0;
    for (const c of this.collections.values()) for (const d of c.docs.values()) n += d.text.length * 2 + d.chunks.reduce((s, ch) => s + ch.vector.byteLength + ch.text.length * 2, 0);
    return n;
  }
}
