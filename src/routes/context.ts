import type { FastifyRequest } from 'fastify';
import type { Caches } from '../services/caches.ts';
import type { ServiceContext } from '../services/context.ts';
import type { Timings } from '../plugins/app/request-context.ts';

const NO_CACHE = /\bno-(cache|store)\b/i;

/**
 * A request's service context. A class, so its `signal` getter lives on the prototype: an object literal with
 * a getter was built anew (and slowly) for every request.
 */
class RequestServiceContext implements ServiceContext {
  readonly timings: Timings;
  readonly caches?: Caches;
  readonly fresh: boolean;

  constructor(private readonly req: FastifyRequest) {
    const cc = req.headers['cache-control'];
    this.timings = req.timings;
    this.caches = req.server.caches;
    this.fresh = typeof cc === 'string' && NO_CACHE.test(cc);
  }

  /** Read only when work is queued: a request answered from a cache never builds its abort controller. */
  get signal(): AbortSignal {
    return this.req.abortSignal;
  }
}

/** What a service gets from the request: the client-abort signal, the timings to fill, the caches (not read under Cache-Control: no-cache). */
export function ctxOf(req: FastifyRequest): ServiceContext {
  return new RequestServiceContext(req);
}
