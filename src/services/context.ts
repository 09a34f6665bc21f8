import type { Timings } from '../plugins/app/request-context.ts';
import type { Caches } from './caches.ts';

/** What a service needs from the request it serves, without knowing HTTP. */
export interface ServiceContext {
  signal?: AbortSignal;
  timings: Timings;
  /** Absent: nothing is cached (benchmarks of the uncached path, tests). */
  caches?: Caches;
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
