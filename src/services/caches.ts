import { LRUCache } from 'lru-cache';
import type { SemanticCache, SemanticLookup } from './semantic-cache.ts';
import { noteCache, type ServiceContext } from './context.ts';

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
  /** Set by the caches plugin when cache.semantic.enabled. */
  semantic?: SemanticCache;

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

/** One item to answer: its exact-cache key and, where the semantic cache may answer it, its scope and text. */
export interface CacheItem {
  key: string;
  semantic?: { scope: string; text: string };
}

/**
 * Answers items from the exact cache, then (for items that allow it) the semantic cache, and computes only the
 * rest, in one call for all of them; what is computed is stored in both. Under Cache-Control: no-cache nothing
 * is read (answers are still stored). Counts each item's source for the x-cache header.
 */
export async function cachedAnswers<T>(ctx: ServiceContext, items: CacheItem[], compute: (indices: number[]) => Promise<T[]>): Promise<T[]> {
  const exact = ctx.caches?.results;
  const semantic = ctx.caches?.semantic;
  const out: (T | undefined)[] = items.map((it) => (ctx.fresh ? undefined : (exact?.get(it.key)?.value as T | undefined)));
  const hits = out.filter((v) => v !== undefined).length;
  if (hits) noteCache(ctx, 'hit', hits);
  let todo = out.flatMap((v, i) => (v === undefined ? [i] : []));
  const slots = new Map<number, NonNullable<SemanticLookup['slot']>>();
  const wantSemantic = semantic ? todo.filter((i) => items[i].semantic) : [];
  if (semantic && wantSemantic.length) {
    const looked = await semantic.lookup(
      wantSemantic.map((i) => items[i].semantic!.scope),
      wantSemantic.map((i) => items[i].semantic!.text),
    );
    looked.forEach((l, j) => {
      const i = wantSemantic[j];
      if (l.value !== undefined && !ctx.fresh) {
        out[i] = l.value as T;
        noteCache(ctx, 'semantic', 1, l.similarity);
      } else if (l.slot) slots.set(i, l.slot);
    });
    todo = todo.filter((i) => out[i] === undefined);
  }
  if (todo.length) {
    noteCache(ctx, 'miss', todo.length);
    const computed = await compute(todo);
    computed.forEach((v, j) => {
      const i = todo[j];
      out[i] = v;
      exact?.set(items[i].key, { value: v as object });
      const slot = slots.get(i);
      if (slot) void semantic!.store(slot, v);
    });
  }
  return out as T[];
}
