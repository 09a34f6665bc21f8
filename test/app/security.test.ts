import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Fastify, { type FastifyInstance } from 'fastify';
import { Writable } from 'node:stream';
import app, { serverOptions } from '../../src/app.ts';
import { keyMatches } from '../../src/plugins/external/security.ts';
import { createHash } from 'node:crypto';
import { demoZip, testConfig } from '../helpers/app.ts';

const KEYS = ['key-one-0123456789abcdef', 'key-two-0123456789abcdef'];
const SECRET_TEXT = 'my confidential sentence about project zebra';

/** The app with a logger writing into a string, so the test can read every log line. */
async function appWithLogs(overrides: Record<string, unknown>) {
  let logs = '';
  const stream = new Writable({
    write(chunk, _enc, cb) {
      logs += chunk;
      cb();
    },
  });
  const config = testConfig({ models: [{ name: 'classify-demo', source: demoZip('classify-demo') }], ...overrides });
  const fastify = Fastify({ ...serverOptions(config), logger: { level: 'debug', stream, redact: ['req.headers.authorization', 'req.headers["x-api-key"]'] } });
  await fastify.register(app, { config });
  await fastify.ready();
  await fastify.models.boot();
  return { app: fastify, logs: () => logs };
}

describe('security', () => {
  let gw: FastifyInstance;
  let logs: () => string;
  beforeAll(async () => {
    ({ app: gw, logs } = await appWithLogs({
      server: { trustProxy: true, logLevel: 'debug', bodyLimitBytes: 4096 },
      security: { apiKeys: KEYS, protectMetrics: true, corsOrigins: ['https://form.example'], rateLimit: { max: 5, windowMs: 60_000 } },
    }));
  });
  afterAll(async () => gw?.close());

  const classify = (headers: Record<string, string>, ip = '203.0.113.1') =>
    gw.inject({ method: 'POST', url: '/v1/classify', headers: { 'x-forwarded-for': ip, ...headers }, payload: { inputs: SECRET_TEXT } });

  it('requires one of the API keys on inference routes, as Bearer or X-API-Key', async () => {
    const none = await classify({}, '203.0.113.10');
    expect(none.statusCode).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Bearer');
    expect(none.json().error.code).toBe('unauthorized');
    expect((await classify({ authorization: 'Bearer wrong-key-0123456789' }, '203.0.113.10')).statusCode).toBe(401);
    expect((await classify({ authorization: `Bearer ${KEYS[0]}x` }, '203.0.113.10')).statusCode).toBe(401);
    expect((await classify({ authorization: `Bearer ${KEYS[1]}` }, '203.0.113.11')).statusCode).toBe(200);
    expect((await classify({ 'x-api-key': KEYS[0] }, '203.0.113.11')).statusCode).toBe(200);
  });

  it('leaves health and docs open, protects metrics when configured', async () => {
    expect((await gw.inject('/health/live')).statusCode).toBe(200);
    expect((await gw.inject('/health/ready')).statusCode).toBe(200);
    expect((await gw.inject('/docs/json')).statusCode).toBe(200);
    expect((await gw.inject('/metrics')).statusCode).toBe(401);
    expect((await gw.inject({ url: '/metrics', headers: { authorization: `Bearer ${KEYS[0]}` } })).statusCode).toBe(200);
  });

  it('rate-limits per client address as seen behind a proxy, with 429 and Retry-After', async () => {
    const auth = { authorization: `Bearer ${KEYS[0]}` };
    const a = [];
    for (let i = 0; i < 6; i++) a.push((await classify(auth, '198.51.100.7')).statusCode);
    expect(a).toEqual([200, 200, 200, 200, 200, 429]);
    const limited = await classify(auth, '198.51.100.7');
    expect(limited.json().error.code).toBe('rate_limited');
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    // Another client behind the same proxy has its own budget.
    expect((await classify(auth, '198.51.100.8')).statusCode).toBe(200);
  });

  it('answers CORS only for allowed origins and sends security headers', async () => {
    const allowed = await gw.inject({ method: 'OPTIONS', url: '/v1/classify', headers: { origin: 'https://form.example', 'access-control-request-method': 'POST' } });
    expect(allowed.headers['access-control-allow-origin']).toBe('https://form.example');
    const other = await gw.inject({ method: 'OPTIONS', url: '/v1/classify', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' } });
    expect(other.headers['access-control-allow-origin']).toBeUndefined();
    const res = await gw.inject('/health/live');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['content-security-policy']).toContain("default-src 'self'");
    expect(res.headers['x-frame-options']).toBeDefined();
  });

  it('refuses bodies over the limit with 413', async () => {
    const res = await gw.inject({ method: 'POST', url: '/v1/classify', headers: { authorization: `Bearer ${KEYS[0]}`, 'x-forwarded-for': '192.0.2.50' }, payload: { inputs: 'x'.repeat(5000) } });
    expect(res.statusCode).toBe(413);
    expect(res.json().error.message).toContain('4096');
  });

  it('never logs request text or a key, even at debug level', async () => {
    // Text in a query string is not logged either: the access log keeps the path only.
    await gw.inject({ method: 'GET', url: `/v1/models?note=${encodeURIComponent(SECRET_TEXT)}`, headers: { authorization: `Bearer ${KEYS[0]}` } });
    const text = logs();
    expect(text.length).toBeGreaterThan(1000);
    const access = text.split('\n').filter((l) => l.includes('request completed')).map((l) => JSON.parse(l));
    expect(access.find((l) => l.url === '/v1/models')).toMatchObject({ method: 'GET', statusCode: 200 });
    expect(access.every((l) => typeof l.ms === 'number' && typeof l.reqId === 'string')).toBe(true);
    expect(text).not.toContain('zebra');
    for (const k of KEYS) expect(text).not.toContain(k);
  });

  it('compares keys in constant time over digests', () => {
    const keys = KEYS.map((k) => createHash('sha256').update(k).digest());
    expect(keyMatches(KEYS[1], keys)).toBe(true);
    expect(keyMatches(KEYS[1].slice(0, -1), keys)).toBe(false);
    expect(keyMatches('', keys)).toBe(false);
  });
});

describe('scopes', () => {
  const INFER = 'infer-key-0123456789abcdef';
  const WRITE = 'write-key-0123456789abcdef';
  const ADMIN = 'admin-key-0123456789abcdef';
  let scoped: FastifyInstance;
  beforeAll(async () => {
    // Routes of each scope, as collections (write) and model administration (admin) declare them.
    const config = testConfig({ models: [{ name: 'classify-demo', source: demoZip('classify-demo') }], security: { apiKeys: [INFER, `write:${WRITE}`, `admin:${ADMIN}`] } });
    scoped = Fastify({ ...serverOptions(config), logger: false });
    await scoped.register(app, { config });
    scoped.post('/v1/test-write', { config: { scope: 'write' } }, async () => ({ ok: true }));
    scoped.post('/v1/test-admin', { config: { scope: 'admin' } }, async () => ({ ok: true }));
    await scoped.ready();
    await scoped.models.boot();
  });
  afterAll(async () => scoped?.close());

  it('a key of a higher scope may do what a lower one may; a lower one gets 403 naming the scope it needs', async () => {
    const call = (url: string, key?: string) => scoped.inject({ method: 'POST', url, headers: key ? { authorization: `Bearer ${key}` } : {}, payload: { inputs: 'a text editor' } });
    const table: [string, string | undefined, number][] = [
      ['/v1/classify', undefined, 401],
      ['/v1/classify', INFER, 200],
      ['/v1/classify', WRITE, 200],
      ['/v1/classify', ADMIN, 200],
      ['/v1/test-write', undefined, 401],
      ['/v1/test-write', INFER, 403],
      ['/v1/test-write', WRITE, 200],
      ['/v1/test-write', ADMIN, 200],
      ['/v1/test-admin', INFER, 403],
      ['/v1/test-admin', WRITE, 403],
      ['/v1/test-admin', ADMIN, 200],
    ];
    for (const [url, key, status] of table) expect((await call(url, key)).statusCode, `${url} ${key ?? 'no key'}`).toBe(status);
    const refused = (await call('/v1/test-admin', WRITE)).json();
    expect(refused.error).toMatchObject({ code: 'forbidden', message: 'this route needs a key with the admin scope; this key has write' });
    expect(JSON.stringify(refused)).not.toContain(WRITE);
  });

  it('protects TEI routes and the Hugging Face route like /v1', async () => {
    for (const url of ['/rerank', '/embed', '/predict', '/models/classify-demo']) expect((await scoped.inject({ method: 'POST', url, payload: {} })).statusCode, url).toBe(401);
  });
});

describe('config of keys', () => {
  it('takes scope prefixes and checks the key after it, never echoing it', async () => {
    const { loadConfig } = await import('../../src/config/load.ts');
    expect(() => loadConfig({ env: { GATEWAY_API_KEYS: 'admin:short-secret' } })).toThrowError(/security\.apiKeys\.0: API keys must be at least 16 characters/);
    expect(loadConfig({ env: { GATEWAY_API_KEYS: `admin:${KEYS[0]}` } }).security.apiKeys).toEqual([`admin:${KEYS[0]}`]);
  });

  it('takes keys from GATEWAY_API_KEYS and never echoes a bad one', async () => {
    const { loadConfig } = await import('../../src/config/load.ts');
    expect(loadConfig({ env: { GATEWAY_API_KEYS: ` ${KEYS[0]} ,${KEYS[1]}` } }).security.apiKeys).toEqual(KEYS);
    expect(() => loadConfig({ env: { GATEWAY_API_KEYS: 'short-secret' } })).toThrowError(/security\.apiKeys\.0: API keys must be at least 16 characters/);
    try {
      loadConfig({ env: { GATEWAY_API_KEYS: 'short-secret' } });
    } catch (err) {
      expect((err as Error).message).not.toContain('short-secret');
    }
  });
});
