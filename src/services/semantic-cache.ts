/**
 * The semantic cache (GPTCache's and redisvl's idea, without their known mistakes): after the exact cache
 * misses, an input is embedded by a configured embedding model and looked up among earlier inputs of the same
 * scope; at or above the threshold (cosine, higher is more alike) the earlier answer is returned. A scope holds
 * everything an answer depends on besides the input text: the answering model's load key (name, version,
 * digest, load number), the options, the QA context's hash or the collection and its version, and the
 * embedding model's own load key, so no answer crosses model versions, contexts or collection versions.
 * Bounded in entries and bytes (least recently used out first); an optional TTL counts from insertion and is
 * never refreshed by hits. The vector search is the collections' store interface (its in-memory store).
 */
import { MemoryStore } from '../collections/stores/memory/index.ts';
import type { CollectionStore } from '../collections/types.ts';

/** The tasks whose answers the semantic cache may give. */
export type SemanticTask = 'question-answering' | 'text-classification' | 'essay-scoring';

export interface SemanticOptions {
  threshold: number;
  /** Only these tasks are answered from the cache (question-answering covers collection QA too). */
  tasks: SemanticTask[];
  maxEntries: number;
  maxBytes: number;
  /** 0: no expiry. Counted from insertion; a hit does not extend it. */
  ttlMs: number;
}

/** Embeds texts for the cache: one vector per text, or undefined for a text the model cannot read whole. */
export type CacheEmbedder = (texts: string[]) => Promise<{ modelKey: string; vectors: (Float32Array | undefined)[] }>;

interface Entry {
  collection: string;
  id: string;
  value: unknown;
  bytes: number;
  insertedAt: number;
}

export interface SemanticLookup {
  /** The cached answer, when an earlier input of the scope was similar enough. */
  value?: unknown;
  similarity?: number;
  /** Similarity of the nearest earlier input when it was not enough (for choosing a threshold). */
  nearest?: number;
  /** Where to store this input's answer once computed; undefined when it cannot be cached (too long). */
  slot?: { scope: string; vector: Float32Array; text: string };
}

export interface SemanticStats {
  hits: number;
  misses: number;
  entries: number;
  bytes: number;
}

export class SemanticCache {
  private readonly index: CollectionStore = new MemoryStore();
  /** LRU order: the first entry is the least recently used. */
  private readonly entries = new Map<string, Entry>();
  private readonly scopes = new Map<string, string>();
  private nextId = 0;
  hits = 0;
  misses = 0;
  bytes = 0;

  constructor(
    readonly opts: SemanticOptions,
    private readonly embedder: CacheEmbedder,
    private readonly onLookup?: (e: { hit: boolean; similarity?: number }) => void,
  ) {}

  /** Whether answers of this task may come from the cache. */
  covers(task: SemanticTask): boolean {
    return this.opts.tasks.includes(task);
  }

  stats(): SemanticStats {
    return { hits: this.hits, misses: this.misses, entries: this.entries.size, bytes: this.bytes };
  }

  /** Looks each text up in its scope; every text is embedded in one submission. */
  async lookup(scopes: string[], texts: string[]): Promise<SemanticLookup[]> {
    const { modelKey, vectors } = await this.embedder(texts);
    const now = Date.now();
    const out: SemanticLookup[] = [];
    for (const [i, text] of texts.entries()) {
      const vector = vectors[i];
      if (!vector) {
        out.push({});
        continue;
      }
      const scope = `${modelKey}\u0000${scopes[i]}`;
      const slot = { scope, vector, text };
      const collection = this.scopes.get(scope);
      if (!collection) {
        this.miss(undefined);
        out.push({ slot });
        continue;
      }
      const [best] = await this.index.vectorSearch(collection, vector, 1);
      const key = best && `${collection}\u0000${best.documentId}`;
      const entry = key ? this.entries.get(key) : undefined;
      if (entry && this.opts.ttlMs > 0 && now - entry.insertedAt > this.opts.ttlMs) {
        await this.evict(key!);
        this.miss(undefined);
        out.push({ slot });
        continue;
      }
      if (entry && best.score >= this.opts.threshold) {
        // Most recently used now (the TTL stays as it was).
        this.entries.delete(key!);
        this.entries.set(key!, entry);
        this.hits++;
        this.onLookup?.({ hit: true, similarity: best.score });
        out.push({ value: entry.value, similarity: best.score });
        continue;
      }
      this.miss(best?.score);
      out.push({ nearest: best?.score, slot });
    }
    return out;
  }

  private miss(nearest: number | undefined): void {
    this.misses++;
    this.onLookup?.({ hit: false, similarity: nearest });
  }

  /** Stores an answer for a looked-up input; the least recently used entries go when a bound is passed. */
  async store(slot: NonNullable<SemanticLookup['slot']>, value: unknown): Promise<void> {
    const bytes = slot.vector.byteLength + slot.text.length * 2 + JSON.stringify(value).length * 2 + 128;
    if (bytes > this.opts.maxBytes) return;
    let collection = this.scopes.get(slot.scope);
    if (!collection) {
      collection = `s${this.nextId++}`;
      await this.index.createCollection({ name: collection, embeddingModel: '', embeddingVersion: '', dim: slot.vector.length, chunking: { maxTokens: 0, overlapTokens: 0 }, createdAt: '', version: 0 });
      this.scopes.set(slot.scope, collection);
    }
    const id = String(this.nextId++);
    await this.index.upsert(collection, [{ id, text: slot.text, metadata: {}, chunks: [{ index: 0, start: 0, end: slot.text.length, text: slot.text, vector: slot.vector, terms: [] }] }], { maxChunks: Number.MAX_SAFE_INTEGER });
    this.entries.set(`${collection}\u0000${id}`, { collection, id, value, bytes, insertedAt: Date.now() });
    this.bytes += bytes;
    while (this.entries.size > this.opts.maxEntries || this.bytes > this.opts.maxBytes) await this.evict(this.entries.keys().next().value!);
  }

  private async evict(key: string): Promise<void> {
    const e = this.entries.get(key);
    if (!e) return;
    this.entries.delete(key);
    this.bytes -= e.bytes;
    await this.index.deleteDocuments(e.collection, { ids: [e.id] });
    const left = await this.index.getCollection(e.collection);
    if (left && left.documents === 0) {
      await this.index.deleteCollection(e.collection);
      for (const [scope, c] of this.scopes) if (c === e.collection) this.scopes.delete(scope);
    }
  }
}
