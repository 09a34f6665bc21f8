import fp from 'fastify-plugin';
import type { FastifyBaseLogger, FastifyInstance, FastifyRequest } from 'fastify';
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
    /** Aborted when the client goes away before the answer: queued work for it is skipped. Made on first use. */
    abortSignal: AbortSignal;
    /** The controller behind abortSignal, once something asked for it. */
    abortController: AbortController | null;
    /** The client went away before its answer was written. */
    clientGone: boolean;
  }
  interface FastifyInstance {
    /** Set on SIGTERM: readiness answers 503 and new work is refused while in-flight work finishes. */
    draining: boolean;
    startDraining(): void;
  }
}

const fmt = (ms: number) => ms.toFixed(2);

/** Whether info lines are written (pino knows; any other logger is asked to log and decides itself). */
const infoEnabled = (log: FastifyBaseLogger) => {
  const isLevelEnabled = (log as FastifyBaseLogger & { isLevelEnabled?: (level: string) => boolean }).isLevelEnabled;
  return typeof isLevelEnabled === 'function' ? isLevelEnabled.call(log, 'info') : true;
};

/**
 * Request id and timing headers on every response, client-abort signal, and refusal of new work while draining.
 * The hooks are callback-style (no promise per hook per request) and the abort signal is made only when a
 * service asks for it: a request answered from a cache never builds one (an AbortController is ~2 µs).
 */
async function requestContext(app: FastifyInstance) {
  app.decorate('draining', false);
  app.decorate('startDraining', function (this: FastifyInstance) {
    this.draining = true;
  });
  app.decorateRequest('timings', null as unknown as Timings);
  app.decorateRequest('lease', null as unknown as RequestLease);
  app.decorateRequest('abortController', null);
  app.decorateRequest('clientGone', false);
  app.decorateRequest('abortSignal', {
    getter(this: FastifyRequest): AbortSignal {
      if (!this.abortController) {
        this.abortController = new AbortController();
        if (this.clientGone) this.abortController.abort();
      }
      return this.abortController.signal;
    },
  });

  app.addHook('onRequest', (request, reply, done) => {
    request.timings = { tokenizeMs: 0, queueMs: 0, inferenceMs: 0 };
    const lease = new RequestLease();
    request.lease = lease;
    const res = reply.raw;
    // The response closing before it finished means the client went away (the request's own 'close' fires
    // as soon as its body has been read, so it cannot tell). Either way the request is over: release its models.
    res.once('close', () => {
      if (!res.writableFinished) {
        request.clientGone = true;
        request.abortController?.abort();
      }
      lease.releaseAll();
    });
    reply.header('x-request-id', request.id);
    if (app.draining && !request.url.startsWith('/health/') && !request.url.startsWith('/v2/health/')) {
      // Answered here: the route never runs (a callback hook that replies does not call done).
      sendError(reply, new GatewayError('draining', 'the server is shutting down; retry on another replica', { retryAfter: 1 }));
      return;
    }
    done();
  });

  // The access log: one line per request, without its body and without the query string (where a
  // client could put text). Fastify's own request logging (two lines) is off in serverOptions.
  app.addHook('onResponse', (request, reply, done) => {
    request.lease?.releaseAll();
    if (infoEnabled(request.log)) {
      const q = request.url.indexOf('?');
      request.log.info({ method: request.method, url: q < 0 ? request.url : request.url.slice(0, q), statusCode: reply.statusCode, ms: Number(reply.elapsedTime.toFixed(2)) }, 'request completed');
    }
    done();
  });

  app.addHook('onSend', (request, reply, payload, done) => {
    // While draining, every answer closes its connection: a kept-alive socket would hold the close open
    // until its keep-alive timeout (72 s in Fastify) ran out.
    if (app.draining) reply.header('connection', 'close');
    const t = request.timings;
    if (t) {
      reply.header('x-tokenize-time', fmt(t.tokenizeMs));
      reply.header('x-queue-time', fmt(t.queueMs));
      reply.header('x-inference-time', fmt(t.inferenceMs));
      reply.header('x-total-time', fmt(reply.elapsedTime));
      // The version that ran. A pure cache hit sends none (its body's model_version says it): one more header on
      // the hit path measured +13-19 µs a request side by side (docs/performance.md, Per-request cost).
      if (t.modelVersion) reply.header('x-model-version', t.modelVersion);
      if (t.cache) {
        // Whole answers only: "hit" or "semantic" when no item had to be computed.
        const c = t.cache;
        reply.header('x-cache', c.miss > 0 ? 'miss' : c.semantic > 0 ? 'semantic' : 'hit');
        if (c.similarity !== undefined && c.miss === 0 && c.semantic > 0) reply.header('x-cache-similarity', c.similarity.toFixed(4));
      }
    }
    done(null, payload);
  });
}

export default fp(requestContext, { name: 'request-context', dependencies: ['errors'] });
