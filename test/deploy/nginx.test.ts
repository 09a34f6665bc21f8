/**
 * The shipped nginx config (nginx/gateway.conf.template rendered by nginx/render.sh), run for real by
 * Debian's nginx in front of small stand-in upstreams: routing, retries, failover, request ids,
 * limits and the error body. The gateway itself is exercised through nginx in test/e2e.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { NGINX_BIN, ROOT, freePort, nginxConfigTest, postJson, request, startNginx, type NginxHandle } from './harness.ts';

interface Seen {
  name: string;
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A stand-in replica: records what it saw, answers with `answer(seen)` or a JSON echo. */
async function fakeReplica(name: string, answer?: (s: Seen, res: http.ServerResponse) => boolean) {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const s: Seen = { name, method: req.method ?? '', url: req.url ?? '', headers: req.headers, body };
      seen.push(s);
      if (answer?.(s, res)) return;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ replica: name, url: s.url, big: 'x'.repeat(2000) }));
    });
  });
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return { name, port, seen, addr: `127.0.0.1:${port}`, close: () => new Promise<void>((r) => server.close(() => r())) };
}

describe('nginx config', () => {
  it('passes nginx -t with one and with three upstreams (compose host names resolve only there)', async () => {
    expect(spawnSync(NGINX_BIN, ['-v']).status, `nginx not found at ${NGINX_BIN} (CI: apt-get install nginx-light)`).toBe(0);
    for (const ups of [['127.0.0.1:8081'], ['127.0.0.2:8080', '127.0.0.3:8080', '[::1]:8080']]) {
      const { code, output, prefix } = await nginxConfigTest(ups);
      expect(output).toContain('test is successful');
      expect(code).toBe(0);
      const conf = readFileSync(path.join(prefix, 'nginx.conf'), 'utf8');
      // Everything nginx writes stays under the prefix.
      for (const d of ['pid', 'error_log', 'client_body_temp_path', 'proxy_temp_path', 'fastcgi_temp_path', 'uwsgi_temp_path', 'scgi_temp_path']) {
        expect(conf).toMatch(new RegExp(`\\b${d} ${prefix}/`));
      }
      for (const u of ups) expect(conf).toContain(`server ${u} `);
      expect(conf).toContain('least_conn;');
      expect(conf).toMatch(/proxy_next_upstream error timeout http_502 http_503 non_idempotent;/);
    }
  });

  it('refuses a bad upstream list instead of writing a broken config', () => {
    const r = spawnSync('sh', [path.join(ROOT, 'nginx/render.sh')], { env: { ...process.env, NGINX_PREFIX: '/tmp/gw-nginx-bad', NGINX_UPSTREAMS: 'a:1; evil' } });
    expect(r.status).not.toBe(0);
    expect(r.stderr.toString()).toContain('NGINX_UPSTREAMS');
  });
});

describe('nginx in front of two replicas', () => {
  let a: Awaited<ReturnType<typeof fakeReplica>>;
  let b: Awaited<ReturnType<typeof fakeReplica>>;
  let nginx: NginxHandle;

  beforeAll(async () => {
    // Replica "a" is busy (503 with Retry-After) on /v1/busy; "b" always answers.
    const busy = (s: Seen, res: http.ServerResponse) => {
      if (!s.url.startsWith('/v1/busy')) return false;
      res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '1' });
      res.end('{"error":{"code":"overloaded","message":"queue full"}}');
      return true;
    };
    a = await fakeReplica('a', busy);
    b = await fakeReplica('b');
    nginx = await startNginx([a.addr, b.addr], { RATE: '1000r/s', BURST: '1000' });
  });
  afterAll(async () => {
    await nginx?.stop();
    await a?.close();
    await b?.close();
  });

  it('serves the web form itself with security headers', async () => {
    const r = await request(`${nginx.url}/`);
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toContain('text/html');
    expect(r.headers['content-security-policy']).toContain("default-src 'self'");
    expect(r.headers['x-content-type-options']).toBe('nosniff');
    expect(a.seen.length + b.seen.length).toBe(0);
  });

  it('proxies /v1, /models, /docs and /health, and nothing else', async () => {
    for (const p of ['/v1/models', '/models/qa-demo', '/docs', '/docs/json', '/docs/static/index.html', '/health/ready']) {
      const r = await request(`${nginx.url}${p}`);
      expect(r.status, p).toBe(200);
      expect(r.json<{ url: string }>().url).toBe(p);
    }
    expect((await request(`${nginx.url}/metrics`)).status).toBe(404);
  });

  it('passes the X-Request-Id it got, or makes one, and X-Forwarded-For', async () => {
    await request(`${nginx.url}/v1/models?rid=given`, { headers: { 'x-request-id': 'client-id-123' } });
    await request(`${nginx.url}/v1/models?rid=none`);
    const all = [...a.seen, ...b.seen];
    const given = all.find((s) => s.url.endsWith('rid=given'));
    const made = all.find((s) => s.url.endsWith('rid=none'));
    expect(given?.headers['x-request-id']).toBe('client-id-123');
    expect(made?.headers['x-request-id']).toMatch(/^[0-9a-f]{32}$/);
    expect(made?.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(made?.headers['x-real-ip']).toBe('127.0.0.1');
    expect(nginx.accessLog()).toContain(`rid=${made?.headers['x-request-id'] as string}`);
  });

  it('spreads requests over both replicas', async () => {
    a.seen.length = 0;
    b.seen.length = 0;
    await Promise.all(Array.from({ length: 40 }, () => postJson(`${nginx.url}/v1/similarity`, { sentence_1: 'a', sentence_2: 'b' })));
    expect(a.seen.length).toBeGreaterThan(5);
    expect(b.seen.length).toBeGreaterThan(5);
    expect(a.seen[0]?.body).toContain('sentence_1');
  });

  it('retries a POST that met a busy replica (503) on the other one', async () => {
    const answers = await Promise.all(Array.from({ length: 20 }, () => postJson(`${nginx.url}/v1/busy`, { inputs: 'x' })));
    expect(answers.map((r) => r.status)).toEqual(Array(20).fill(200));
    expect(answers.every((r) => r.json<{ replica: string }>().replica === 'b')).toBe(true);
  });

  it("passes a 503 on when every replica is busy, with the replica's own body and Retry-After", async () => {
    const bothBusy = await fakeReplica('busy-too', (s, res) => {
      res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '3' });
      res.end('{"error":{"code":"overloaded","message":"queue full"}}');
      return true;
    });
    const lb = await startNginx([a.addr, bothBusy.addr], { RATE: '1000r/s', BURST: '1000' });
    try {
      const r = await postJson(`${lb.url}/v1/busy`, { inputs: 'x' });
      expect(r.status).toBe(503);
      expect(['1', '3']).toContain(r.headers['retry-after']);
      expect(r.json()).toEqual({ error: { code: 'overloaded', message: 'queue full' } });
    } finally {
      await lb.stop();
      await bothBusy.close();
    }
  });

  it('gzips JSON answers for clients that accept it', async () => {
    const r = await request(`${nginx.url}/v1/models`, { headers: { 'accept-encoding': 'gzip' } });
    expect(r.headers['content-encoding']).toBe('gzip');
    expect(JSON.parse(gunzipSync(r.body).toString()).url).toBe('/v1/models');
  });
});

describe('nginx when replicas fail', () => {
  it('sends everything to the live replica when one is down, and a JSON 503 when none is', async () => {
    const live = await fakeReplica('live');
    const deadPort = await freePort(); // nothing listens there: connection refused
    const nginx = await startNginx([`127.0.0.1:${deadPort}`, live.addr], { RATE: '1000r/s', BURST: '1000' });
    try {
      const answers = await Promise.all(Array.from({ length: 30 }, () => postJson(`${nginx.url}/v1/qa`, { question: 'q', context: 'c' })));
      expect(answers.map((r) => r.status)).toEqual(Array(30).fill(200));
      await live.close();
      const down = await postJson(`${nginx.url}/v1/qa`, { question: 'q', context: 'c' });
      expect(down.status).toBe(503);
      expect(down.headers['retry-after']).toBe('2');
      expect(down.headers['x-request-id']).toMatch(/^[0-9a-f]{32}$/);
      expect(down.json()).toEqual({ error: { code: 'not_ready', message: expect.stringContaining('retry') } });
    } finally {
      await nginx.stop();
      await live.close().catch(() => undefined);
    }
  });
});

describe('nginx unprivileged', () => {
  it.runIf(process.getuid?.() === 0)('runs as an ordinary user in the foreground, writing only under its prefix', async () => {
    const nobody = 65534;
    const up = await fakeReplica('u');
    const nginx = await startNginx([up.addr], {}, { uid: nobody, gid: nobody });
    try {
      expect((await request(`${nginx.url}/v1/models`)).status).toBe(200);
      expect((await request(`${nginx.url}/`)).status).toBe(200);
      // A body big enough to be spooled to client_body_temp_path under the prefix.
      const big = await postJson(`${nginx.url}/v1/classify`, { inputs: 'x'.repeat(200_000) });
      expect(big.status).toBe(200);
      expect(up.seen.at(-1)?.body.length).toBeGreaterThan(200_000);
      const pid = Number(readFileSync(path.join(nginx.prefix, 'nginx.pid'), 'utf8'));
      expect(pid).toBe(nginx.proc.pid); // run.sh exec's nginx: the PID the test holds is the master
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      expect(/^Uid:\s+(\d+)/m.exec(status)?.[1]).toBe(String(nobody));
      for (const d of ['client_body', 'proxy']) expect(statSync(path.join(nginx.prefix, 'tmp', d)).uid).toBe(nobody);
    } finally {
      await nginx.stop();
      await up.close();
    }
  });
});

describe('nginx limits', () => {
  let up: Awaited<ReturnType<typeof fakeReplica>>;
  let nginx: NginxHandle;
  beforeAll(async () => {
    up = await fakeReplica('only');
    nginx = await startNginx([up.addr], { RATE: '2r/s', BURST: '3', BODY_MAX: '1k' });
  });
  afterAll(async () => {
    await nginx?.stop();
    await up?.close();
  });

  it('answers 413 in the API error body when the body is over the limit', async () => {
    const r = await postJson(`${nginx.url}/v1/classify`, { inputs: 'x'.repeat(5000) });
    expect(r.status).toBe(413);
    expect(r.json<{ error: { code: string; message: string } }>().error).toMatchObject({ code: 'too_large', message: expect.stringContaining('1k') });
    expect(up.seen.length).toBe(0);
  });

  it('answers 429 with Retry-After past the rate limit, and still serves static files', async () => {
    const answers = await Promise.all(Array.from({ length: 12 }, () => request(`${nginx.url}/v1/models`)));
    const limited = answers.filter((r) => r.status === 429);
    expect(limited.length).toBeGreaterThan(0);
    expect(answers.filter((r) => r.status === 200).length).toBeGreaterThan(0);
    expect(limited[0]?.headers['retry-after']).toBe('1');
    expect(limited[0]?.json()).toEqual({ error: { code: 'rate_limited', message: expect.any(String) } });
    expect((await request(`${nginx.url}/`)).status).toBe(200);
  });
});
