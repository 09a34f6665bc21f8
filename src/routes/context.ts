import type { FastifyRequest } from 'fastify';
import type { ServiceContext } from '../services/context.ts';

/** What a service gets from the request: the client-abort signal, the timings to fill, the caches. */
export function ctxOf(req: FastifyRequest): ServiceContext {
  return { signal: req.abortSignal, timings: req.timings, caches: req.server.caches };
}
