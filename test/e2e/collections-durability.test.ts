/**
 * Collections across processes: a gateway killed with SIGKILL in the middle of an ingest comes back with every
 * earlier document and none of the interrupted one's (no partial document, no orphan chunk); two gateway
 * processes on one PostgreSQL (PGlite with pgvector over the wire) serve the same collections.
 */
import { afterAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import { existsSync, mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { demoZip } from '../helpers/app.ts';
import { startGateway, type GatewayProcess } from '../helpers/gateway-process.ts';
import { startPostgres, type TestPostgres } from '../helpers/pglite.ts';

const MODELS = JSON.stringify([
  { name: 'sts-demo', source: demoZip('sts-demo') },
  { name: 'qa-demo', source: demoZip('qa-demo') },
]);

async function call(gw: GatewayProcess, method: string, path: string, body?: unknown) {
  const res = await fetch(`${gw.url}${path}`, { method, headers: body === undefined ? {} : { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> & { results?: { document_id: string }[] } };
}

/** Sends an NDJSON ingest without waiting for its answer (the process will die under it). */
function ingestInBackground(gw: GatewayProcess, name: string, lines: string[]): http.ClientRequest {
  const req = http.request(`${gw.url}/v1/collections/${name}/documents`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' } });
  req.on('error', () => undefined);
  req.on('response', (r) => r.resume());
  req.end(`${lines.join('\n')}\n`);
  return req;
}

describe('an ingest interrupted by SIGKILL', () => {
  const gateways: GatewayProcess[] = [];
  afterAll(async () => Promise.all(gateways.map((g) => g.stop('SIGKILL'))));

  it('restarts with all earlier documents and all or none of the interrupted request, never a partial document or an orphan chunk', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gw-durable-'));
    const env = { GATEWAY_MODELS: MODELS, GATEWAY_COLLECTIONS__DIR: dir };
    const file = join(dir, 'collections.sqlite');
    let gw = await startGateway(env);
    gateways.push(gw);
    await gw.waitReady(120_000);
    expect((await call(gw, 'POST', '/v1/collections', { name: 'd', chunking: { max_tokens: 32, overlap_tokens: 4 } })).status).toBe(201);
    const first = Array.from({ length: 20 }, (_, i) => ({ id: `first-${i}`, text: `Document ${i} of the first request. It talks about package ${i}.`, metadata: { batch: 'first' } }));
    expect((await call(gw, 'POST', '/v1/collections/d/documents', { documents: first })).status).toBe(200);

    const sentence = 'This sentence is one of many in a long document that the gateway cuts into chunks and embeds. ';
    // Kill points: while it embeds, and as soon as the write begins (the WAL file grows).
    for (const [round, when] of [['embedding', 300], ['writing', -1]] as const) {
      const batch = Array.from({ length: 150 }, (_, i) => JSON.stringify({ id: `${round}-${i}`, text: sentence.repeat(20 + (i % 5)), metadata: { batch: round } }));
      const walBefore = existsSync(`${file}-wal`) ? statSync(`${file}-wal`).size : 0;
      ingestInBackground(gw, 'd', batch);
      if (when > 0) await new Promise((r) => setTimeout(r, when));
      else {
        const t0 = Date.now();
        while (Date.now() - t0 < 60_000 && (existsSync(`${file}-wal`) ? statSync(`${file}-wal`).size : 0) <= walBefore) await new Promise((r) => setImmediate(r));
      }
      process.kill(gw.child.pid!, 'SIGKILL');
      await gw.exited;

      // The file itself, read directly: every chunk belongs to a document, every FTS row to a chunk.
      const db = new Database(file);
      const orphans = db.prepare('SELECT count(*) AS n FROM chunks c LEFT JOIN documents d ON d.collection_id = c.collection_id AND d.id = c.doc_id WHERE d.id IS NULL').get() as { n: number };
      expect(orphans.n, round).toBe(0);
      const perDoc = db.prepare("SELECT json_extract(d.metadata, '$.batch') AS batch, count(DISTINCT d.id) AS docs, count(c.rowid) AS chunks FROM documents d LEFT JOIN chunks c ON c.collection_id = d.collection_id AND c.doc_id = d.id GROUP BY batch").all() as { batch: string; docs: number; chunks: number }[];
      const fts = db.prepare("SELECT name FROM sqlite_master WHERE name LIKE 'fts_%' AND type = 'table'").get() as { name: string };
      const ftsRows = (db.prepare(`SELECT count(*) AS n FROM ${fts.name}`).get() as { n: number }).n;
      const chunkRows = (db.prepare('SELECT count(*) AS n FROM chunks').get() as { n: number }).n;
      db.close();
      expect(ftsRows, round).toBe(chunkRows);
      const byBatch = Object.fromEntries(perDoc.map((r) => [r.batch, r]));
      expect(byBatch.first?.docs).toBe(20);
      expect([undefined, 150]).toContain(byBatch[round]?.docs);
      process.stdout.write(`SIGKILL while ${round}: the interrupted request left ${byBatch[round]?.docs ?? 0} of 150 documents (all or none)\n`);

      gw = await startGateway(env);
      gateways.push(gw);
      await gw.waitReady(120_000);
      const c = await call(gw, 'GET', '/v1/collections/d');
      expect(c.body.documents).toBe(20 + (byBatch.embedding?.docs ?? 0) + (round === 'writing' ? (byBatch.writing?.docs ?? 0) : 0));
      const hit = await call(gw, 'POST', '/v1/collections/d/search', { query: 'package 7 of the first request', mode: 'keyword', top_k: 1 });
      expect(hit.body.results?.[0].document_id).toBe('first-7');
    }
  }, 240_000);
});

describe('two gateway processes on one PostgreSQL', () => {
  let pg: TestPostgres;
  const gateways: GatewayProcess[] = [];
  afterAll(async () => {
    await Promise.all(gateways.map((g) => g.stop('SIGKILL')));
    await pg?.stop();
  });

  it('serve the same collections: a document added through one is found through the other', async () => {
    pg = await startPostgres();
    const env = { GATEWAY_MODELS: MODELS, GATEWAY_COLLECTIONS__STORE: 'postgres', GATEWAY_COLLECTIONS__POSTGRES__URL: pg.url, GATEWAY_COLLECTIONS__POSTGRES__POOL_SIZE: '4' };
    for (let i = 0; i < 2; i++) gateways.push(await startGateway(env));
    await Promise.all(gateways.map((g) => g.waitReady(120_000)));
    const [a, b] = gateways;
    expect((await call(a, 'POST', '/v1/collections', { name: 'shared' })).status).toBe(201);
    expect((await call(b, 'POST', '/v1/collections', { name: 'shared' })).status).toBe(409);
    expect((await call(a, 'POST', '/v1/collections/shared/documents', { documents: [{ id: 'nginx', text: 'The nginx package is maintained by the Debian Nginx Maintainers.' }] })).status).toBe(200);
    const found = await call(b, 'POST', '/v1/collections/shared/search', { query: 'who maintains nginx', top_k: 1 });
    expect(found.body.results?.[0].document_id).toBe('nginx');
    expect((await call(b, 'POST', '/v1/collections/shared/documents', { documents: [{ id: 'curl', text: 'The curl package is maintained by the Debian curl Maintainers.' }] })).status).toBe(200);
    const back = await call(a, 'POST', '/v1/collections/shared/search', { query: 'curl', mode: 'keyword', top_k: 1 });
    expect(back.body.results?.[0].document_id).toBe('curl');
    const qa = await call(a, 'POST', '/v1/collections/shared/qa', { question: 'Who maintains the curl package?', mode: 'keyword', retrieve_k: 2 });
    expect(qa.body.read).toBe(2);
    expect((qa.body.answers as { document_id: string }[]).map((x) => x.document_id)).toContain('curl');
    expect((await call(a, 'GET', '/v1/collections/shared')).body).toMatchObject({ documents: 2 });
    // Concurrent upserts of one id through both replicas leave one version.
    await Promise.all(Array.from({ length: 6 }, (_, i) => call(gateways[i % 2], 'POST', '/v1/collections/shared/documents', { documents: [{ id: 'race', text: `Version ${i}. `.repeat(1 + i) }] })));
    const race = await call(b, 'GET', '/v1/collections/shared/documents/race');
    expect(race.status).toBe(200);
    expect((await call(a, 'GET', '/v1/collections/shared')).body).toMatchObject({ documents: 3 });
  }, 240_000);
});
