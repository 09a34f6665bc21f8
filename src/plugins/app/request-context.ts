import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import { GatewayError } from '../../errors.ts';
import { sendError } from './errors.ts';

/** Where a request's time went; filled by services, sent as headers. */
export interface Timings {
  /** The model that served the request, for per-model metrics. */
  model?: string;
  /** The version of it that answered (manifest version + content digest), sent as x-model-version. */
  modelVersion?: string;
  /** Items answered from the exact cache, the semantic cache, or computed: sent as x-cache. */
  cache?: { hit: number; semantic: number; miss: number; similarity?: number };
  tokenizeMs: number;
  queueMs: number;
  inferenceMs: number;
}

/** The model versions a request holds: released when it is answered, so a replaced version drains first. */
export class RequestLease {
  private releases: (() => void)[] = [];
  add(release: () => void): void {
    this.releases.push(release);
  }
  releaseAll(): void {
    const r = this.releases;
    this.releases = [];
    for (const f of r) f();
  }
}

declare module 'fastify' {
  interface FastifyRequest {
    timings: Timings;
    lease: RequestLease;
    /** Aborted when the client goes away before the answer: queued work for it is skipped. */
    abortSignal: AbortSignal;
  }
  interface FastifyInstance {
    /** Set on SIGTERM: readiness answers 503 and new work is refused while in-flight work finishes. */
    draining: boolean;
    startDraining(): void;
  }
}

const fmt = (ms: number) => ms.toFixed(2);

/** Request id and timing headers on every response, client-abort signal, and refusal of new work while draining. */
async function requestContext(app: FastifyInstance) {
  app.decorate('draining', false);
  app.decorate('startDraining', function (this: FastifyInstance) {
    this.draining = true;
  });
  app.decorateRequest('timings', null as unknown as Timings);
  app.decorateRequest('abortSignal', null as unknown as AbortSignal);
  app.decorateRequest('lease', null as unknown as RequestLease);

  app.addHook('onRequest', async (request, reply) => {
    request.timings = { tokenizeMs: 0, queueMs: 0, inferenceMs: 0 };
    const lease = new RequestLease();
    request.lease = lease;
    const ac = new AbortController();
    request.abortSignal = ac.signal;
    // The response closing before it finished means the client went away (the request's own 'close' fires
    // as soon as its body has been read, so it cannot tell). Either way the request is over: release its models.
    reply.raw.once('close', () => {
      if (!reply.raw.writableFinished) ac.abort();
      lease.releaseAll();
    });
    reply.header('x-request-id', request.id);
    if (app.draining && !request.url.startsWith('/health/') && !request.url.startsWith('/v2/health/')) {
      return sendError(reply, new GatewayError('draining', 'the server is shutting down; retry on another replica', { retryAfter: 1 }));
    }
  });

  // The access log: one line per request, without its body and without the query string (where a
  // client could put text). Fastify's own request logging (two lines) is off in serverOptions.
  app.addHook('onResponse', (request, reply, done) => {
    request.lease?.releaseAll();
    const q = request.url.indexOf('?');
    request.log.info({ method: request.method, url: q < 0 ? request.url : request.url.slice(0, q), statusCode: reply.statusCode, ms: Number(reply.elapsedTime.toFixed(2)) }, 'request completed');
    done();
  });

  app.addHook('onSend', async (request, reply) => {
    // While draining, every answer closes its connection: a kept-alive socket would hold the close open
    // until its keep-alive timeout (72 s in Fastify) ran out.
    if (app.draining) reply.header('connection', 'close');
    const t = request.timings;
    if (!t) return;
    reply.header('x-tokenize-time', fmt(t.tokenizeMs));
    reply.header('x-queue-time', fmt(t.queueMs));
    reply.header('x-inference-time', fmt(t.inferenceMs));
    reply.header('x-total-time', fmt(reply.elapsedTime));
    if (t.modelVersion) reply.header('x-model-version', t.modelVersion);
    if (t.cache) {
      // Whole answers only: "hit" or "semantic" when no item had to be computed.
      const c = t.cache;
      reply.header('x-cache', c.miss > 0 ? 'miss' : c.semantic > 0 ? 'semantic' : 'hit');
      if (c.similarity !== undefined && c.miss === 0 && c.semantic > 0) reply.header('x-cache-similarity', c.similarity.toFixed(4));
    }
  });
}

export default fp(requestContext, { name: 'request-context', dependencies: ['errors'] });
