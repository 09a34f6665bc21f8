import { LRUCache } from 'lru-cache';

export interface CacheStats {
  hits: number;
  misses: number;
  bytes: number;
  entries: number;
}

/**
 * A byte-bounded LRU whose keys start with the model's cache key (name, version, content digest and load
 * number), so one model never answers from another's entries, nor a reloaded model from its old build's.
 */
export class BoundedCache<V extends object> {
  private readonly lru?: LRUCache<string, V>;
  hits = 0;
  misses = 0;

  constructor(
    maxBytes: number,
    private readonly sizeOf: (key: string, value: V) => number,
  ) {
    if (maxBytes > 0) this.lru = new LRUCache<string, V>({ maxSize: maxBytes, sizeCalculation: (v, k) => Math.max(1, sizeOf(k, v)) });
  }

  get(key: string): V | undefined {
    if (!this.lru) return undefined;
    const v = this.lru.get(key);
    if (v === undefined) this.misses++;
    else this.hits++;
    return v;
  }

  set(key: string, value: V): void {
    this.lru?.set(key, value);
  }

  stats(): CacheStats {
    return { hits: this.hits, misses: this.misses, bytes: this.lru?.calculatedSize ?? 0, entries: this.lru?.size ?? 0 };
  }
}

/** The gateway's caches: sentence embeddings (shared by every similarity and embedding route) and exact results. */
export class Caches {
  readonly embeddings: BoundedCache<{ vector: Float32Array; tokens: number }>;
  readonly results: BoundedCache<{ value: unknown }>;

  constructor(opts: { embeddingBytes: number; resultBytes: number }) {
    // Strings are UTF-16 in memory; count the key twice its length plus the vector.
    this.embeddings = new BoundedCache(opts.embeddingBytes, (k, v) => k.length * 2 + v.vector.byteLength + 64);
    this.results = new BoundedCache(opts.resultBytes, (k, v) => k.length * 2 + JSON.stringify(v.value).length * 2 + 64);
  }
}

/** A cache key: the model's cache key and the exact inputs and options. */
export function resultKey(modelKey: string, kind: string, input: unknown): string {
  return `${modelKey}\u0000${kind}\u0000${JSON.stringify(input)}`;
}
