/**
 * The embedded store: one SQLite file (better-sqlite3, WAL, synchronous=FULL so a resolved write survives a
 * crash or power cut), vectors as float32 BLOBs searched exactly with sqlite-vec's vec_distance_cosine, keyword
 * search by FTS5's bm25() on a table per collection (so one collection's statistics never score another's).
 * better-sqlite3 is synchronous: every call, a whole write transaction included, runs to completion before any
 * other JavaScript, so a read can never see half of a write (chosen from measurements in ../shared/FACTS.md:
 * 10k vectors inserted in ~0.1 s, exact top-10 in ~2 ms, filters inside the query, one file).
 */
import Database from 'better-sqlite3';
import * as sqliteVec from 'sqlite-vec';
import { mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { GatewayError } from '../../../errors.ts';
import type { FilterNode } from '../../filter.ts';
import { chunkKey, type ChunkRef, type CollectionInfo, type CollectionRecord, type CollectionStore, type DocumentRecord, type Hit, type Metadata, type StoredDocument } from '../../types.ts';

type Row = Record<string, unknown>;

/** SQL for a filter over `d.metadata` (JSON text): keys and values are bound parameters, never SQL text. */
export function filterSql(f: FilterNode, params: unknown[]): string {
  const cond = (key: string, value: unknown) => {
    params.push(key);
    if (value === null) return `je.key = ? AND je.type = 'null'`;
    if (typeof value === 'boolean') return `je.key = ? AND je.type = '${value ? 'true' : 'false'}'`;
    params.push(value);
    return typeof value === 'number' ? `je.key = ? AND je.type IN ('integer', 'real') AND je.value = ?` : `je.key = ? AND je.type = 'text' AND je.value = ?`;
  };
  switch (f.op) {
    case 'and':
    case 'or':
      return `(${f.items.map((x) => filterSql(x, params)).join(f.op === 'and' ? ' AND ' : ' OR ')})`;
    case 'eq':
      return `EXISTS (SELECT 1 FROM json_each(d.metadata) je WHERE ${cond(f.key, f.value)})`;
    case 'in':
      return `(${f.values.map((v) => `EXISTS (SELECT 1 FROM json_each(d.metadata) je WHERE ${cond(f.key, v)})`).join(' OR ')})`;
  }
}

const toBlob = (v: Float32Array) => Buffer.from(v.buffer, v.byteOffset, v.byteLength);
const fromBlob = (b: Buffer) => new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));

export class SqliteStore implements CollectionStore {
  readonly kind = 'sqlite' as const;
  private db!: Database.Database;
  readonly file: string;

  constructor(dir: string) {
    this.file = path.resolve(dir, 'collections.sqlite');
  }

  async open(): Promise<void> {
    mkdirSync(path.dirname(this.file), { recursive: true });
    this.db = new Database(this.file);
    sqliteVec.load(this.db);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma('foreign_keys = ON');
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS collections (
        id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, embedding_model TEXT NOT NULL, embedding_version TEXT NOT NULL,
        dim INTEGER NOT NULL, max_tokens INTEGER NOT NULL, overlap_tokens INTEGER NOT NULL, created_at TEXT NOT NULL, version INTEGER NOT NULL DEFAULT 0);
      CREATE TABLE IF NOT EXISTS documents (
        collection_id INTEGER NOT NULL REFERENCES collections(id) ON DELETE CASCADE, id TEXT NOT NULL, text TEXT NOT NULL, metadata TEXT NOT NULL,
        PRIMARY KEY (collection_id, id));
      CREATE TABLE IF NOT EXISTS chunks (
        rowid INTEGER PRIMARY KEY, collection_id INTEGER NOT NULL, doc_id TEXT NOT NULL, idx INTEGER NOT NULL,
        start INTEGER NOT NULL, "end" INTEGER NOT NULL, text TEXT NOT NULL, embedding BLOB NOT NULL,
        FOREIGN KEY (collection_id, doc_id) REFERENCES documents(collection_id, id) ON DELETE CASCADE);
      CREATE INDEX IF NOT EXISTS chunks_by_doc ON chunks(collection_id, doc_id, idx);
    `);
  }

  async close(): Promise<void> {
    this.db?.close();
  }

  private idOf(name: string): number {
    const row = this.db.prepare('SELECT id FROM collections WHERE name = ?').get(name) as { id: number } | undefined;
    if (!row) throw new GatewayError('not_found', `no collection "${name}"`);
    return row.id;
  }

  /** FTS5 table of one collection; the name is built from its integer id only. */
  private fts(id: number): string {
    if (!Number.isInteger(id)) throw new Error('bad collection id');
    return `fts_${id}`;
  }

  private info(r: Row): CollectionInfo {
    return {
      name: r.name as string,
      embeddingModel: r.embedding_model as string,
      embeddingVersion: r.embedding_version as string,
      dim: r.dim as number,
      chunking: { maxTokens: r.max_tokens as number, overlapTokens: r.overlap_tokens as number },
      createdAt: r.created_at as string,
      version: r.version as number,
      documents: r.documents as number,
      chunks: r.chunks as number,
    };
  }

  private readonly INFO_SQL = `SELECT c.*, (SELECT count(*) FROM documents WHERE collection_id = c.id) AS documents, (SELECT count(*) FROM chunks WHERE collection_id = c.id) AS chunks FROM collections c`;

  async createCollection(c: CollectionRecord): Promise<void> {
    const tx = this.db.transaction(() => {
      const res = this.db
        .prepare('INSERT INTO collections (name, embedding_model, embedding_version, dim, max_tokens, overlap_tokens, created_at, version) VALUES (?, ?, ?, ?, ?, ?, ?, 0) ON CONFLICT(name) DO NOTHING')
        .run(c.name, c.embeddingModel, c.embeddingVersion, c.dim, c.chunking.maxTokens, c.chunking.overlapTokens, c.createdAt);
      if (res.changes === 0) throw new GatewayError('conflict', `collection "${c.name}" exists`);
      this.db.exec(`CREATE VIRTUAL TABLE ${this.fts(Number(res.lastInsertRowid))} USING fts5(terms, content='', contentless_delete=1, tokenize='unicode61 remove_diacritics 0')`);
    });
    tx();
  }

  async getCollection(name: string): Promise<CollectionInfo | undefined> {
    const r = this.db.prepare(`${this.INFO_SQL} WHERE c.name = ?`).get(name) as Row | undefined;
    return r && this.info(r);
  }

  async listCollections(): Promise<CollectionInfo[]> {
    return (this.db.prepare(`${this.INFO_SQL} ORDER BY c.name`).all() as Row[]).map((r) => this.info(r));
  }

  async deleteCollection(name: string): Promise<boolean> {
    const row = this.db.prepare('SELECT id FROM collections WHERE name = ?').get(name) as { id: number } | undefined;
    if (!row) return false;
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM chunks WHERE collection_id = ?').run(row.id);
      this.db.prepare('DELETE FROM documents WHERE collection_id = ?').run(row.id);
      this.db.prepare('DELETE FROM collections WHERE id = ?').run(row.id);
      this.db.exec(`DROP TABLE IF EXISTS ${this.fts(row.id)}`);
    })();
    return true;
  }

  /** Deletes documents (their chunks and FTS rows with them) inside the caller's transaction. */
  private deleteDocs(id: number, docIds: string[]): number {
    const fts = this.fts(id);
    const chunkRows = this.db.prepare('SELECT rowid FROM chunks WHERE collection_id = ? AND doc_id = ?');
    const delFts = this.db.prepare(`DELETE FROM ${fts} WHERE rowid = ?`);
    const delChunks = this.db.prepare('DELETE FROM chunks WHERE collection_id = ? AND doc_id = ?');
    const delDoc = this.db.prepare('DELETE FROM documents WHERE collection_id = ? AND id = ?');
    let n = 0;
    for (const doc of docIds) {
      for (const r of chunkRows.all(id, doc) as { rowid: number }[]) delFts.run(r.rowid);
      delChunks.run(id, doc);
      n += delDoc.run(id, doc).changes;
    }
    return n;
  }

  async upsert(collection: string, docs: DocumentRecord[], opts: { maxChunks: number }): Promise<{ chunks: number }> {
    const id = this.idOf(collection);
    const fts = this.fts(id);
    const insDoc = this.db.prepare('INSERT INTO documents (collection_id, id, text, metadata) VALUES (?, ?, ?, ?)');
    const insChunk = this.db.prepare('INSERT INTO chunks (collection_id, doc_id, idx, start, "end", text, embedding) VALUES (?, ?, ?, ?, ?, ?, ?)');
    const insFts = this.db.prepare(`INSERT INTO ${fts} (rowid, terms) VALUES (?, ?)`);
    let written = 0;
    this.db.transaction(() => {
      // A later document with the same id in one request replaces the earlier one, as a second request would.
      const last = new Map(docs.map((d) => [d.id, d]));
      this.deleteDocs(id, [...last.keys()]);
      for (const d of last.values()) {
        insDoc.run(id, d.id, d.text, JSON.stringify(d.metadata));
        for (const ch of d.chunks) {
          const rowid = insChunk.run(id, d.id, ch.index, ch.start, ch.end, ch.text, toBlob(ch.vector)).lastInsertRowid;
          insFts.run(rowid, ch.terms.join(' '));
          written++;
        }
      }
      const total = (this.db.prepare('SELECT count(*) AS n FROM chunks WHERE collection_id = ?').get(id) as { n: number }).n;
      if (total > opts.maxChunks) throw new GatewayError('too_large', `collection "${collection}" would hold ${total} chunks; the limit is ${opts.maxChunks}`, { details: { limit: opts.maxChunks } });
      this.db.prepare('UPDATE collections SET version = version + 1 WHERE id = ?').run(id);
    })();
    return { chunks: written };
  }

  async getDocument(collection: string, docId: string): Promise<StoredDocument | undefined> {
    const id = this.idOf(collection);
    const r = this.db.prepare('SELECT id, text, metadata, (SELECT count(*) FROM chunks WHERE collection_id = d.collection_id AND doc_id = d.id) AS chunks FROM documents d WHERE collection_id = ? AND id = ?').get(id, docId) as Row | undefined;
    return r && { id: r.id as string, text: r.text as string, metadata: JSON.parse(r.metadata as string) as Metadata, chunks: r.chunks as number };
  }

  async deleteDocuments(collection: string, sel: { ids?: string[]; filter?: FilterNode }): Promise<number> {
    const id = this.idOf(collection);
    let n = 0;
    this.db.transaction(() => {
      let ids = sel.ids ?? [];
      if (sel.filter) {
        const params: unknown[] = [id];
        const where = filterSql(sel.filter, params);
        ids = (this.db.prepare(`SELECT d.id FROM documents d WHERE d.collection_id = ? AND ${where}`).all(...params) as { id: string }[]).map((r) => r.id);
      }
      n = this.deleteDocs(id, ids);
      if (n) this.db.prepare('UPDATE collections SET version = version + 1 WHERE id = ?').run(id);
    })();
    return n;
  }

  private hits(rows: Row[]): Hit[] {
    return rows.map((r) => ({
      documentId: r.doc_id as string,
      chunkIndex: r.idx as number,
      start: r.start as number,
      end: r.end as number,
      text: r.text as string,
      metadata: JSON.parse(r.metadata as string) as Metadata,
      score: r.score as number,
    }));
  }

  async vectorSearch(collection: string, vector: Float32Array, k: number, filter?: FilterNode): Promise<Hit[]> {
    const id = this.idOf(collection);
    const params: unknown[] = [toBlob(vector), id];
    const where = filter ? ` AND ${filterSql(filter, params)}` : '';
    params.push(k);
    const rows = this.db
      .prepare(
        `SELECT c.doc_id, c.idx, c.start, c."end", c.text, d.metadata, 1.0 - vec_distance_cosine(c.embedding, ?) AS score
         FROM chunks c JOIN documents d ON d.collection_id = c.collection_id AND d.id = c.doc_id
         WHERE c.collection_id = ?${where} ORDER BY score DESC LIMIT ?`,
      )
      .all(...params) as Row[];
    return this.hits(rows);
  }

  async keywordSearch(collection: string, terms: string[], k: number, filter?: FilterNode): Promise<Hit[]> {
    if (terms.length === 0) return [];
    const id = this.idOf(collection);
    const fts = this.fts(id);
    // Terms are runs of letters and digits (the analyzer's): quoted, they are plain FTS5 strings.
    const params: unknown[] = [terms.map((t) => `"${t}"`).join(' OR ')];
    const where = filter ? ` AND ${filterSql(filter, params)}` : '';
    params.push(k);
    const rows = this.db
      .prepare(
        `SELECT c.doc_id, c.idx, c.start, c."end", c.text, d.metadata, -bm25(${fts}) AS score
         FROM ${fts} JOIN chunks c ON c.rowid = ${fts}.rowid JOIN documents d ON d.collection_id = c.collection_id AND d.id = c.doc_id
         WHERE ${fts} MATCH ?${where} ORDER BY bm25(${fts}) LIMIT ?`,
      )
      .all(...params) as Row[];
    return this.hits(rows);
  }

  async existing(collection: string, ids: string[]): Promise<Set<string>> {
    const row = this.db.prepare('SELECT id FROM collections WHERE name = ?').get(collection) as { id: number } | undefined;
    if (!row || ids.length === 0) return new Set();
    const stmt = this.db.prepare('SELECT 1 FROM documents WHERE collection_id = ? AND id = ?');
    return new Set(ids.filter((d) => stmt.get(row.id, d) !== undefined));
  }

  async chunkTexts(collection: string): Promise<ChunkRef[]> {
    const id = this.idOf(collection);
    return (this.db.prepare('SELECT doc_id, idx, text FROM chunks WHERE collection_id = ? ORDER BY doc_id, idx').all(id) as Row[]).map((r) => ({
      documentId: r.doc_id as string,
      chunkIndex: r.idx as number,
      text: r.text as string,
    }));
  }

  async reembed(collection: string, model: { name: string; version: string; dim: number }, vectors: Map<string, Float32Array>): Promise<void> {
    const id = this.idOf(collection);
    const rows = this.db.prepare('SELECT rowid, doc_id, idx FROM chunks WHERE collection_id = ?').all(id) as Row[];
    const upd = this.db.prepare('UPDATE chunks SET embedding = ? WHERE rowid = ?');
    this.db.transaction(() => {
      for (const r of rows) {
        const v = vectors.get(chunkKey(r.doc_id as string, r.idx as number));
        if (!v) throw new GatewayError('internal_error', `no new vector for chunk ${r.idx as number} of ${r.doc_id as string}`);
        upd.run(toBlob(v), r.rowid);
      }
      this.db.prepare('UPDATE collections SET embedding_model = ?, embedding_version = ?, dim = ?, version = version + 1 WHERE id = ?').run(model.name, model.version, model.dim, id);
    })();
  }

  async sizeBytes(): Promise<number> {
    const size = (f: string) => {
      try {
        return statSync(f).size;
      } catch {
        return 0;
      }
    };
    return size(this.file) + size(`${this.file}-wal`);
  }

  /** For tests: a chunk's stored vector. */
  vectorOf(collection: string, docId: string, idx: number): Float32Array | undefined {
    const r = this.db.prepare('SELECT embedding FROM chunks WHERE collection_id = ? AND doc_id = ? AND idx = ?').get(this.idOf(collection), docId, idx) as { embedding: Buffer } | undefined;
    return r && fromBlob(r.embedding);
  }
}
