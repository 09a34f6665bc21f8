/**
 * One behavioural suite for every collection store: the in-memory reference, the embedded SQLite file, and
 * PostgreSQL + pgvector over its real wire protocol (PGlite served by pglite-socket, through the `pg` driver).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryStore } from '../../src/collections/stores/memory/index.ts';
import { SqliteStore } from '../../src/collections/stores/sqlite/index.ts';
import { PostgresStore } from '../../src/collections/stores/postgres/index.ts';
import { parseFilter } from '../../src/collections/filter.ts';
import { terms } from '../../src/collections/analyzer.ts';
import { chunkKey, type CollectionRecord, type CollectionStore, type DocumentRecord } from '../../src/collections/types.ts';
import { startPostgres, type TestPostgres } from '../helpers/pglite.ts';

const DIM = 256;

/** A deterministic unit vector per word: documents about the same words point the same way. */
function vectorOf(text: string): Float32Array {
  const v = new Float32Array(DIM);
  for (const t of terms(text)) {
    let h = 2166136261;
    for (const ch of t) h = Math.imul(h ^ ch.charCodeAt(0), 16777619);
    v[Math.abs(h) % DIM] += 1;
  }
  const n = Math.hypot(...v) || 1;
  return v.map((x) => x / n);
}

function doc(id: string, sentences: string[], metadata: DocumentRecord['metadata'] = {}): DocumentRecord {
  const text = sentences.join(' ');
  let at = 0;
  const chunks = sentences.map((s, index) => {
    const start = text.indexOf(s, at);
    at = start + s.length;
    return { index, start, end: start + s.length, text: s, vector: vectorOf(s), terms: terms(s) };
  });
  return { id, text, metadata, chunks };
}

const record = (name: string): CollectionRecord => ({ name, embeddingModel: 'm', embeddingVersion: '1+abc', dim: DIM, chunking: { maxTokens: 64, overlapTokens: 8 }, createdAt: new Date().toISOString(), version: 0 });

const CORPUS = [
  doc('nginx', ['Nginx is a web server and reverse proxy.', 'It is maintained by the Debian Nginx Maintainers.'], { section: 'httpd', year: 2020, lts: true }),
  doc('curl', ['curl transfers data with URL syntax.', 'The curl maintainers release it often.'], { section: 'web', year: 2021, lts: false }),
  doc('vim', ['Vim is a highly configurable text editor.', 'Editors like vim are loved by programmers.'], { section: 'editors', year: 2019, lts: true }),
  doc('emacs', ['Emacs is an extensible editor.', 'Emacs has a Lisp interpreter.'], { section: 'editors', year: 2021, lts: null }),
];

let pg: TestPostgres;
/** Each factory opens the same backing store again when asked twice (a second connection, or a second replica). */
const memory = new MemoryStore();
const sqliteDir = mkdtempSync(join(tmpdir(), 'sqlite-store-'));
const stores: [string, () => Promise<CollectionStore>][] = [
  ['memory', async () => memory],
  ['sqlite', async () => new SqliteStore(sqliteDir)],
  ['postgres', async () => new PostgresStore({ url: pg.url, poolSize: 4 })],
];

beforeAll(async () => {
  pg = await startPostgres();
}, 60_000);
afterAll(async () => pg?.stop());

describe.each(stores)('%s store', (kind, make) => {
  let store: CollectionStore;
  let n = 0;
  const fresh = async () => {
    const name = `c${++n}-${kind}`;
    await store.createCollection(record(name));
    return name;
  };

  beforeAll(async () => {
    store = await make();
    await store.open();
  }, 60_000);
  afterAll(async () => store?.close());

  it('creates, lists, describes and deletes collections; a taken name is a conflict', async () => {
    const name = await fresh();
    await expect(store.createCollection(record(name))).rejects.toMatchObject({ code: 'conflict' });
    expect(await store.getCollection(name)).toMatchObject({ name, embeddingModel: 'm', embeddingVersion: '1+abc', dim: DIM, documents: 0, chunks: 0, version: 0, chunking: { maxTokens: 64, overlapTokens: 8 } });
    expect((await store.listCollections()).map((c) => c.name)).toContain(name);
    expect(await store.deleteCollection(name)).toBe(true);
    expect(await store.getCollection(name)).toBeUndefined();
    expect(await store.deleteCollection(name)).toBe(false);
  });

  it('upserts documents whole: a document with an existing id replaces the old one, no chunk of it survives', async () => {
    const name = await fresh();
    expect(await store.upsert(name, CORPUS, { maxChunks: 100 })).toEqual({ chunks: 8 });
    expect(await store.getCollection(name)).toMatchObject({ documents: 4, chunks: 8, version: 1 });
    await store.upsert(name, [doc('nginx', ['Replaced text about a proxy.'], { section: 'new' })], { maxChunks: 100 });
    expect(await store.getDocument(name, 'nginx')).toEqual({ id: 'nginx', text: 'Replaced text about a proxy.', metadata: { section: 'new' }, chunks: 1 });
    expect(await store.getCollection(name)).toMatchObject({ documents: 4, chunks: 7, version: 2 });
    const hits = await store.keywordSearch(name, ['maintained'], 10);
    expect(hits.map((h) => h.documentId)).not.toContain('nginx');
    // Two documents with one id in one write: the later wins, once.
    await store.upsert(name, [doc('x', ['first version']), doc('x', ['second version', 'with two chunks'])], { maxChunks: 100 });
    expect(await store.getDocument(name, 'x')).toMatchObject({ text: 'second version with two chunks', chunks: 2 });
  });

  it('refuses a write past maxChunks with too_large and writes none of it', async () => {
    const name = await fresh();
    await store.upsert(name, CORPUS.slice(0, 2), { maxChunks: 5 });
    await expect(store.upsert(name, CORPUS.slice(2), { maxChunks: 5 })).rejects.toMatchObject({ code: 'too_large' });
    expect(await store.getCollection(name)).toMatchObject({ documents: 2, chunks: 4, version: 1 });
    expect(await store.getDocument(name, 'vim')).toBeUndefined();
  });

  it('finds by vector (cosine), best first, with exact offsets into the document', async () => {
    const name = await fresh();
    await store.upsert(name, CORPUS, { maxChunks: 100 });
    const hits = await store.vectorSearch(name, vectorOf('Emacs has a Lisp interpreter.'), 3);
    expect(hits[0]).toMatchObject({ documentId: 'emacs', chunkIndex: 1, text: 'Emacs has a Lisp interpreter.' });
    expect(hits[0].score).toBeCloseTo(1, 5);
    for (let i = 1; i < hits.length; i++) expect(hits[i].score).toBeLessThanOrEqual(hits[i - 1].score + 1e-9);
    for (const h of hits) expect(CORPUS.find((d) => d.id === h.documentId)!.text.slice(h.start, h.end)).toBe(h.text);
  });

  it('finds by BM25 keyword score the same ranking as the in-memory reference', async () => {
    const name = await fresh();
    await store.upsert(name, CORPUS, { maxChunks: 100 });
    const ref = new MemoryStore();
    await ref.createCollection(record('ref'));
    await ref.upsert('ref', CORPUS, { maxChunks: 100 });
    for (const q of [['editor'], ['emacs', 'lisp'], ['maintainers', 'curl'], ['web', 'server', 'proxy'], ['nothing']]) {
      const ours = await store.keywordSearch(name, q, 5);
      const theirs = await ref.keywordSearch('ref', q, 5);
      expect(ours.map((h) => chunkKey(h.documentId, h.chunkIndex)), q.join(' ')).toEqual(theirs.map((h) => chunkKey(h.documentId, h.chunkIndex)));
      ours.forEach((h, i) => expect(h.score).toBeCloseTo(theirs[i].score, 4));
    }
  });

  it('filters inside the search: equality, $in, several fields, $and, $or, on strings, numbers, booleans and null', async () => {
    const name = await fresh();
    await store.upsert(name, CORPUS, { maxChunks: 100 });
    const ids = async (f: unknown) => [...new Set((await store.vectorSearch(name, vectorOf('editor'), 20, parseFilter(f))).map((h) => h.documentId))].sort();
    expect(await ids({ section: 'editors' })).toEqual(['emacs', 'vim']);
    expect(await ids({ year: 2021 })).toEqual(['curl', 'emacs']);
    expect(await ids({ year: { $in: [2019, 2020] } })).toEqual(['nginx', 'vim']);
    expect(await ids({ lts: true })).toEqual(['nginx', 'vim']);
    expect(await ids({ lts: null })).toEqual(['emacs']);
    expect(await ids({ section: 'editors', year: 2021 })).toEqual(['emacs']);
    expect(await ids({ $or: [{ section: 'web' }, { lts: true }] })).toEqual(['curl', 'nginx', 'vim']);
    expect(await ids({ $and: [{ section: { $in: ['editors', 'web'] } }, { $or: [{ year: 2019 }, { year: 2021 }] }] })).toEqual(['curl', 'emacs', 'vim']);
    expect(await ids({ year: '2021' })).toEqual([]);
    const kw = await store.keywordSearch(name, ['editor', 'maintainers'], 20, parseFilter({ section: 'editors' }));
    expect(new Set(kw.map((h) => h.documentId))).toEqual(new Set(['vim', 'emacs']));
  });

  it('treats hostile filter keys and values as plain data', async () => {
    const name = await fresh();
    const hostile = [`x' OR '1'='1`, `"); DROP TABLE documents; --`, 'a$.b', 'a.b', '%', '\\', "'; DELETE FROM chunks; --", '->>', "metadata->>'x'"];
    await store.upsert(name, [doc('h', ['hostile metadata here'], Object.fromEntries(hostile.map((k, i) => [k, `${k}-${i}`])))], { maxChunks: 100 });
    await store.upsert(name, CORPUS, { maxChunks: 100 });
    for (const [i, k] of hostile.entries()) {
      const hits = await store.vectorSearch(name, vectorOf('hostile'), 20, parseFilter({ [k]: `${k}-${i}` }));
      expect(hits.map((h) => h.documentId), k).toEqual(['h']);
      expect(await store.keywordSearch(name, ['metadata'], 20, parseFilter({ [k]: { $in: [hostile[0], `${k}-${i}`] } }))).toHaveLength(1);
      expect(await store.vectorSearch(name, vectorOf('hostile'), 20, parseFilter({ section: k }))).toEqual([]);
    }
    expect(await store.getCollection(name)).toMatchObject({ documents: 5, chunks: 9 });
    // Keys that look like operators are refused before they reach a store.
    expect(() => parseFilter({ '$where': 'x' })).toThrow(/unknown operator/);
  });

  it('deletes by id and by filter, with the chunks; other documents stay', async () => {
    const name = await fresh();
    await store.upsert(name, CORPUS, { maxChunks: 100 });
    expect(await store.deleteDocuments(name, { ids: ['vim', 'nope'] })).toBe(1);
    expect(await store.deleteDocuments(name, { filter: parseFilter({ year: 2021 }) })).toBe(2);
    expect(await store.getCollection(name)).toMatchObject({ documents: 1, chunks: 2 });
    expect((await store.vectorSearch(name, vectorOf('editor'), 20)).map((h) => h.documentId)).toEqual(['nginx', 'nginx']);
    expect(await store.keywordSearch(name, ['emacs', 'vim', 'curl'], 20)).toEqual([]);
    expect(await store.existing(name, ['nginx', 'vim', 'curl'])).toEqual(new Set(['nginx']));
  });

  it('re-embeds every chunk and records the new model in one write', async () => {
    const name = await fresh();
    await store.upsert(name, CORPUS, { maxChunks: 100 });
    const refs = await store.chunkTexts(name);
    expect(refs).toHaveLength(8);
    const flipped = new Map(refs.map((r) => [chunkKey(r.documentId, r.chunkIndex), vectorOf(r.text).map((x) => -x)]));
    await store.reembed(name, { name: 'm2', version: '2+def', dim: DIM }, flipped);
    expect(await store.getCollection(name)).toMatchObject({ embeddingModel: 'm2', embeddingVersion: '2+def', version: 2 });
    const hits = await store.vectorSearch(name, vectorOf('Emacs has a Lisp interpreter.').map((x) => -x), 1);
    expect(hits[0]).toMatchObject({ documentId: 'emacs', chunkIndex: 1 });
  });

  it('keeps concurrent upserts of one document id to exactly one version, never duplicated chunks', async () => {
    const name = await fresh();
    const other = await make();
    await other.open();
    try {
      const versions = Array.from({ length: 6 }, (_, i) => doc('same', Array.from({ length: 1 + (i % 3) }, (_, j) => `version ${i} sentence ${j}`)));
      await Promise.all(versions.map((v, i) => (i % 2 ? other : store).upsert(name, [v], { maxChunks: 100 })));
      const d = await store.getDocument(name, 'same');
      const winner = versions.find((v) => v.text === d?.text)!;
      expect(winner).toBeDefined();
      expect(d?.chunks).toBe(winner.chunks.length);
      expect(await store.getCollection(name)).toMatchObject({ documents: 1, chunks: winner.chunks.length });
      const all = await store.keywordSearch(name, ['version'], 100);
      expect(all.map((h) => h.text).sort()).toEqual(winner.chunks.map((c) => c.text).sort());
    } finally {
      if (other !== store) await other.close();
    }
  }, 30_000);

  it('a search that starts after a delete has answered never sees the deleted document', async () => {
    const name = await fresh();
    await store.upsert(name, [...CORPUS, ...Array.from({ length: 20 }, (_, i) => doc(`filler-${i}`, [`filler text number ${i} about editors`]))], { maxChunks: 1000 });
    let deletedAt = Infinity;
    let stop = false;
    const seen: { startedAt: number; ids: string[] }[] = [];
    const searching = Promise.all(
      Array.from({ length: 4 }, async () => {
        while (!stop) {
          const startedAt = performance.now();
          const hits = await store.vectorSearch(name, vectorOf('Vim is a highly configurable text editor.'), 10);
          seen.push({ startedAt, ids: hits.map((h) => h.documentId) });
          await new Promise((r) => setImmediate(r));
        }
      }),
    );
    await new Promise((r) => setTimeout(r, 30));
    await store.deleteDocuments(name, { ids: ['vim'] });
    deletedAt = performance.now();
    await new Promise((r) => setTimeout(r, 50));
    stop = true;
    await searching;
    expect(seen.some((s) => s.startedAt < deletedAt && s.ids.includes('vim'))).toBe(true);
    expect(seen.filter((s) => s.startedAt > deletedAt).length).toBeGreaterThan(0);
    expect(seen.filter((s) => s.startedAt > deletedAt && s.ids.includes('vim'))).toEqual([]);
  }, 30_000);
});
