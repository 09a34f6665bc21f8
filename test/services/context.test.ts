import { describe, expect, it } from 'vitest';
import type { FastifyRequest } from 'fastify';
import { ctxOf } from '../../src/routes/context.ts';
import { uncached, type ServiceContext } from '../../src/services/context.ts';
import { Caches } from '../../src/services/caches.ts';

/** A request as ctxOf reads it: headers, timings, the server's caches and a lazily made abort signal. */
function fakeRequest(headers: Record<string, string> = {}) {
  let made = 0;
  const controller = new AbortController();
  const req = {
    headers,
    timings: { tokenizeMs: 0, queueMs: 0, inferenceMs: 0 },
    server: { caches: new Caches({ embeddingBytes: 1024, resultBytes: 1024 }) },
    get abortSignal() {
      made++;
      return controller.signal;
    },
  };
  return { req: req as unknown as FastifyRequest, controller, made: () => made };
}

describe('service context', () => {
  it('reads the abort signal only when a service asks for it, and follows the client going away', () => {
    const { req, controller, made } = fakeRequest();
    const ctx = ctxOf(req);
    expect(made()).toBe(0);
    expect(ctx.caches).toBe(req.server.caches);
    expect(ctx.timings).toBe(req.timings);
    const signal = ctx.signal!;
    expect(made()).toBe(1);
    controller.abort();
    expect(signal.aborted).toBe(true);
  });

  it('is fresh (caches not read) under Cache-Control: no-cache or no-store only', () => {
    expect(ctxOf(fakeRequest({ 'cache-control': 'no-cache' }).req).fresh).toBe(true);
    expect(ctxOf(fakeRequest({ 'cache-control': 'max-age=0, No-Store' }).req).fresh).toBe(true);
    expect(ctxOf(fakeRequest({ 'cache-control': 'max-age=60' }).req).fresh).toBe(false);
    expect(ctxOf(fakeRequest().req).fresh).toBe(false);
  });

  it('uncached keeps the request\'s timings and abort signal (a spread would drop a prototype getter) and drops the caches', () => {
    const { req, controller, made } = fakeRequest({ 'cache-control': 'no-cache' });
    const ctx: ServiceContext = uncached(ctxOf(req));
    expect(ctx.caches).toBeUndefined();
    expect(ctx.fresh).toBe(true);
    expect(ctx.timings).toBe(req.timings);
    expect(made()).toBe(0);
    controller.abort();
    expect(ctx.signal?.aborted).toBe(true);
    // What a spread of the class instance would give: no signal at all.
    expect({ ...ctxOf(req) }.signal).toBeUndefined();
  });
});
