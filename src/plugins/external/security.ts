import fp from 'fastify-plugin';
import cors from '@fastify/cors';
import helmet from 'helmet';
import rateLimit from '@fastify/rate-limit';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { GatewayError } from '../../errors.ts';
import { sendError } from '../app/errors.ts';

const digest = (s: string) => createHash('sha256').update(s).digest();

/** What a key may do; each scope includes the ones before it (../shared/API.md, "Added in the second wave"). */
export const SCOPES = ['infer', 'write', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The scope a key needs for this route; `infer` when omitted (routes that are open say so by URL below). */
    scope?: Scope;
  }
}

/** A configured key: `[infer|write|admin:]secret`, `infer` when no scope is written. */
export function parseKey(entry: string): { scope: Scope; key: string } {
  const m = /^(infer|write|admin):(.+)$/.exec(entry);
  return m ? { scope: m[1] as Scope, key: m[2] } : { scope: 'infer', key: entry };
}

/** Compares against every key, always all of them, on fixed-length digests: no timing hint of which or how long. */
export function keyMatches(given: string, keys: Buffer[]): boolean {
  return keyIndex(given, keys) >= 0;
}

/** Index of the matching key (or -1), comparing against all of them in constant time. */
function keyIndex(given: string, keys: Buffer[]): number {
  const d = digest(given);
  let found = -1;
  keys.forEach((k, i) => {
    if (timingSafeEqual(d, k)) found = i;
  });
  return found;
}

function presentedKey(req: FastifyRequest): string | undefined {
  const auth = req.headers.authorization;
  if (typeof auth === 'string' && /^Bearer\s+/i.test(auth)) return auth.replace(/^Bearer\s+/i, '').trim();
  const x = req.headers['x-api-key'];
  return typeof x === 'string' ? x.trim() : undefined;
}

/**
 * The headers helmet sets, computed once. They depend on the options only, never on the request, and
 * @fastify/helmet rebuilt helmet (re-parsing the CSP) on every request: ~5% of the event loop under load.
 */
export function helmetHeaders(options: Parameters<typeof helmet>[0]): Record<string, string> {
  const headers: Record<string, string> = {};
  const res = {
    setHeader: (name: string, value: string | number | string[]) => (headers[name.toLowerCase()] = String(value)),
    removeHeader: (name: string) => delete headers[name.toLowerCase()],
  };
  helmet(options)({} as IncomingMessage, res as unknown as ServerResponse, (err?: unknown) => {
    if (err) throw err;
  });
  return headers;
}

/**
 * Security headers, CORS allowlist, per-client rate limit and optional API keys. Health probes are always
 * open; /docs and /metrics are open unless configured otherwise; the web form's static files are open (the
 * API calls it makes are not).
 */
async function securityPlugin(app: FastifyInstance) {
  const { security } = app.config;
  const headers = helmetHeaders({
    contentSecurityPolicy: {
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'", "'unsafe-inline'"],
        imgSrc: ["'self'", 'data:'],
        connectSrc: ["'self'"],
        frameAncestors: ["'none'"],
      },
    },
    crossOriginResourcePolicy: { policy: security.corsOrigins.length ? 'cross-origin' : 'same-origin' },
  });
  app.addHook('onRequest', (_req, reply, done) => {
    reply.headers(headers);
    done();
  });
  if (security.corsOrigins.length) {
    await app.register(cors, { origin: security.corsOrigins, methods: ['GET', 'POST', 'PUT', 'DELETE'], exposedHeaders: ['x-request-id', 'x-total-time', 'x-queue-time', 'x-inference-time', 'x-model-version', 'x-cache', 'retry-after'] });
  }
  if (security.rateLimit.max > 0) {
    await app.register(rateLimit, {
      max: security.rateLimit.max,
      timeWindow: security.rateLimit.windowMs,
      allowList: (req) => req.url.startsWith('/health/'),
      errorResponseBuilder: (_req, ctx) => {
        const e = new GatewayError('rate_limited', `rate limit of ${ctx.max} requests per ${Math.round(ctx.ttl / 1000) || 1} s reached for this client; retry after ${ctx.after}`, { retryAfter: Math.ceil(ctx.ttl / 1000) });
        return Object.assign(e, { statusCode: 429 });
      },
    });
  }
  if (security.apiKeys.length === 0) {
    app.log.warn('no API keys configured: every route is open, including writes (collections, feedback) and model administration');
    return;
  }
  const parsed = security.apiKeys.map(parseKey);
  const keys = parsed.map((k) => digest(k.key));
  const rank = (s: Scope) => SCOPES.indexOf(s);
  const open = (url: string, method: string) =>
    url.startsWith('/health/') ||
    url.startsWith('/v2/health/') ||
    (!security.protectDocs && (url === '/docs' || url.startsWith('/docs/'))) ||
    (!security.protectMetrics && url === '/metrics') ||
    // The web form's own files (its API calls are not open).
    ((method === 'GET' || method === 'HEAD') && !/^\/(v1|v2|models|docs|metrics|rerank|embed|predict)(\/|$)/.test(url));
  app.addHook('onRequest', async (req, reply) => {
    if (open(req.url.split('?')[0], req.method)) return;
    const key = presentedKey(req);
    const at = key === undefined ? -1 : keyIndex(key, keys);
    if (at < 0) {
      reply.header('www-authenticate', 'Bearer');
      return sendError(reply, new GatewayError('unauthorized', key === undefined ? 'API key required: send Authorization: Bearer <key>' : 'API key not accepted'));
    }
    const needed = req.routeOptions.config?.scope ?? 'infer';
    if (rank(parsed[at].scope) < rank(needed)) {
      return sendError(reply, new GatewayError('forbidden', `this route needs a key with the ${needed} scope; this key has ${parsed[at].scope}`, { details: { needed, scope: parsed[at].scope } }));
    }
  });
}

export default fp(securityPlugin, { name: 'security', dependencies: ['config', 'errors'] });
