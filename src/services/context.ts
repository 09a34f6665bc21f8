import type { Timings } from '../plugins/app/request-context.ts';
import type { Caches } from './caches.ts';

/** What a service needs from the request it serves, without knowing HTTP. */
export interface ServiceContext {
  signal?: AbortSignal;
  timings: Timings;
  /** Absent: nothing is cached (benchmarks of the uncached path, tests). */
  caches?: Caches;
  /** The client said Cache-Control: no-cache: answers are computed (and may still be stored). */
  fresh?: boolean;
}

/**
 * The same request without the caches (ingestion: every chunk is embedded, none cached). Never spread a context
 * (`{ ...ctx }`): its `signal` may be a getter on a prototype, which a spread drops.
 */
export function uncached(ctx: ServiceContext): ServiceContext {
  return {
    timings: ctx.timings,
    fresh: ctx.fresh,
    get signal() {
      return ctx.signal;
    },
  };
}

/** Counts where an item's answer came from, for the x-cache header. */
export function noteCache(ctx: ServiceContext, how: 'hit' | 'semantic' | 'miss', n = 1, similarity?: number): void {
  const c = (ctx.timings.cache ??= { hit: 0, semantic: 0, miss: 0 });
  c[how] += n;
  if (similarity !== undefined) c.similarity = Math.min(c.similarity ?? 1, similarity);
}

/** Runs fn and adds its wall time to timings.tokenizeMs. */
export async function timedTokenize<T>(ctx: ServiceContext, fn: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  try {
    return await fn();
  } finally {
    ctx.timings.tokenizeMs += performance.now() - t0;
  }
}
