import type { FastifyRequest } from 'fastify';
import type { ServiceContext } from '../services/context.ts';

/** What a service gets from the request: the client-abort signal, the timings to fill, the caches (not read under Cache-Control: no-cache). */
export function ctxOf(req: FastifyRequest): ServiceContext {
  const cc = req.headers['cache-control'];
  const fresh = typeof cc === 'string' && /\bno-(cache|store)\b/i.test(cc);
  return {
    // Read only when work is queued: a request answered from a cache never builds its abort controller.
    get signal() {
      return req.abortSignal;
    },
    timings: req.timings,
    caches: req.server.caches,
    fresh,
  };
}
