/**
 * The scale-out store: PostgreSQL with pgvector through the `pg` driver, so every replica behind Nginx serves
 * the same collections. Per collection, a chunk table with a `vector(dim)` column and an HNSW index (cosine),
 * and a term table for BM25 computed in SQL with the same analyzer and parameters as the other stores.
 * Writes to a collection take its row lock first, so concurrent writers (replicas too) queue instead of
 * interleaving: an upsert of one document id by two replicas at once leaves exactly one version. Reads are
 * MVCC snapshots and never see a write before it commits. Table names are built from integer ids only; every
 * value, metadata keys included, is a bound parameter.
 */
import pg from 'pg';
import { GatewayError } from '../../../errors.ts';
import { BM25_B, BM25_K1 } from '../../analyzer.ts';
import type { FilterNode } from '../../filter.ts';
import { chunkKey, type ChunkRef, type CollectionInfo, type CollectionRecord, type CollectionStore, type DocumentRecord, type Hit, type Metadata, type StoredDocument } from '../../types.ts';

type Row = Record<string, unknown>;
type Q = (sql: string, params?: unknown[]) => Promise<Row[]>;

/** SQL for a filter over `d.metadata` (jsonb); `next` gives the next $n placeholder for a bound value. */
export function filterSql(f: FilterNode, params: unknown[]): string {
  const bind = (v: unknown) => {
    params.push(v);
    return `$${params.length}`;
  };
  switch (f.op) {
    case 'and':
    case 'or':
      return `(${f.items.map((x) => filterSql(x, params)).join(f.op === 'and' ? ' AND ' : ' OR ')})`;
    case 'eq':
      return `((d.metadata -> ${bind(f.key)}::text) = ${bind(JSON.stringify(f.value))}::jsonb)`;
    case 'in':
      return `((d.metadata -> ${bind(f.key)}::text) = ANY(${bind(f.values.map((v) => JSON.stringify(v)))}::jsonb[]))`;
  }
}

const vec = (v: Float32Array) => `[${Array.from(v).join(',')}]`;
const parseVec = (s: string) => Float32Array.from(JSON.parse(s) as number[]);

export class PostgresStore implements CollectionStore {
  readonly kind = 'postgres' as const;
  private pool!: pg.Pool;

  constructor(private readonly opts: { url: string; poolSize: number }) {}

  async open(): Promise<void> {
    this.pool = new pg.Pool({ connectionString: this.opts.url, max: this.opts.poolSize });
    await this.tx(async (q) => {
      // One replica creates the schema; the others wait on the lock and find it there.
      await q('SELECT pg_advisory_xact_lock(727001)');
      await q('CREATE EXTENSION IF NOT EXISTS vector');
      await q(`CREATE TABLE IF NOT EXISTS gw_collections (
        id SERIAL PRIMARY KEY, name TEXT NOT NULL UNIQUE, embedding_model TEXT NOT NULL, embedding_version TEXT NOT NULL,
        dim INTEGER NOT NULL, max_tokens INTEGER NOT NULL, overlap_tokens INTEGER NOT NULL, created_at TEXT NOT NULL, version BIGINT NOT NULL DEFAULT 0)`);
      await q(`CREATE TABLE IF NOT EXISTS gw_documents (
        collection_id INTEGER NOT NULL REFERENCES gw_collections(id) ON DELETE CASCADE, id TEXT NOT NULL, text TEXT NOT NULL, metadata JSONB NOT NULL,
        PRIMARY KEY (collection_id, id))`);
    });
  }

  async close(): Promise<void> {
    await this.pool?.end();
  }

  /** Reads run in a transaction too: one snapshot across their statements (and the one protocol a test server of one session can keep apart). */
  private read<T>(fn: (q: Q) => Promise<T>): Promise<T> {
    return this.tx(fn, true);
  }

  /** Runs fn in one transaction, retried on a deadlock or serialization failure. */
  private async tx<T>(fn: (q: Q) => Promise<T>, readOnly = false): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const client = await this.pool.connect();
      try {
        await client.query(readOnly ? 'BEGIN READ ONLY' : 'BEGIN');
        const out = await fn(async (sql, params) => (await client.query(sql, params)).rows as Row[]);
        await client.query('COMMIT');
        return out;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        const code = (err as { code?: string }).code;
        if ((code === '40P01' || code === '40001') && attempt < 5) continue;
        throw err;
      } finally {
        client.release();
      }
    }
  }

  private t(id: number, what: 'chunks' | 'terms'): string {
    if (!Number.isInteger(id)) throw new Error('bad collection id');
    return `gw_${what}_${id}`;
  }

  private async idOf(name: string, q: Q, lock = false): Promise<number> {
    const rows = await q(`SELECT id FROM gw_collections WHERE name = $1${lock ? ' FOR UPDATE' : ''}`, [name]);
    if (rows.length === 0) throw new GatewayError('not_found', `no collection "${name}"`);
    return rows[0].id as number;
  }

  private info(r: Row, counts: { documents: number; chunks: number }): CollectionInfo {
    return {
      name: r.name as string,
      embeddingModel: r.embedding_model as string,
      embeddingVersion: r.embedding_version as string,
      dim: r.dim as number,
      chunking: { maxTokens: r.max_tokens as number, overlapTokens: r.overlap_tokens as number },
      createdAt: r.created_at as string,
      version: Number(r.version),
      ...counts,
    };
  }

  private async counts(q: Q, id: number): Promise<{ documents: number; chunks: number }> {
    const [d] = await q('SELECT count(*)::int AS n FROM gw_documents WHERE collection_id = $1', [id]);
    const [c] = await q(`SELECT count(*)::int AS n FROM ${this.t(id, 'chunks')}`);
    return { documents: d.n as number, chunks: c.n as number };
  }

  async createCollection(c: CollectionRecord): Promise<void> {
    if (!Number.isInteger(c.dim) || c.dim < 1 || c.dim > 16000) throw new GatewayError('unprocessable_input', `embedding dimension ${c.dim} is not one pgvector can index`);
    await this.tx(async (q) => {
      const rows = await q(
        `INSERT INTO gw_collections (name, embedding_model, embedding_version, dim, max_tokens, overlap_tokens, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (name) DO NOTHING RETURNING id`,
        [c.name, c.embeddingModel, c.embeddingVersion, c.dim, c.chunking.maxTokens, c.chunking.overlapTokens, c.createdAt],
      );
      if (rows.length === 0) throw new GatewayError('conflict', `collection "${c.name}" exists`);
      const id = rows[0].id as number;
      const chunks = this.t(id, 'chunks');
      const terms = this.t(id, 'terms');
      await q(`CREATE TABLE ${chunks} (
        collection_id INTEGER NOT NULL DEFAULT ${id}, doc_id TEXT NOT NULL, idx INTEGER NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL,
        text TEXT NOT NULL, nterms INTEGER NOT NULL, embedding vector(${c.dim}) NOT NULL, PRIMARY KEY (doc_id, idx),
        FOREIGN KEY (collection_id, doc_id) REFERENCES gw_documents(collection_id, id) ON DELETE CASCADE)`);
      await q(`CREATE INDEX ${chunks}_hnsw ON ${chunks} USING hnsw (embedding vector_cosine_ops)`);
      await q(`CREATE TABLE ${terms} (term TEXT NOT NULL, doc_id TEXT NOT NULL, idx INTEGER NOT NULL, tf INTEGER NOT NULL, PRIMARY KEY (term, doc_id, idx),
        FOREIGN KEY (doc_id, idx) REFERENCES ${chunks}(doc_id, idx) ON DELETE CASCADE)`);
      await q(`CREATE INDEX ${terms}_by_chunk ON ${terms} (doc_id, idx)`);
    });
  }

  async getCollection(name: string): Promise<CollectionInfo | undefined> {
    return this.read(async (q) => {
      const rows = await q('SELECT * FROM gw_collections WHERE name = $1', [name]);
      return rows[0] && this.info(rows[0], await this.counts(q, rows[0].id as number));
    });
  }

  async listCollections(): Promise<CollectionInfo[]> {
    return this.read(async (q) => {
      const out: CollectionInfo[] = [];
      for (const r of await q('SELECT * FROM gw_collections ORDER BY name')) out.push(this.info(r, await this.counts(q, r.id as number)));
      return out;
    });
  }

  async deleteCollection(name: string): Promise<boolean> {
    return this.tx(async (q) => {
      const rows = await q('SELECT id FROM gw_collections WHERE name = $1 FOR UPDATE', [name]);
      if (rows.length === 0) return false;
      const id = rows[0].id as number;
      await q(`DROP TABLE IF EXISTS ${this.t(id, 'terms')}`);
      await q(`DROP TABLE IF EXISTS ${this.t(id, 'chunks')}`);
      await q('DELETE FROM gw_collections WHERE id = $1', [id]);
      return true;
    });
  }

  /** Inserts rows of `cols` in statements of at most `per` rows (PostgreSQL takes 65,535 parameters a statement). */
  private async insertMany(q: Q, table: string, cols: string[], rows: unknown[][], cast: string[] = []): Promise<void> {
    const per = Math.floor(60_000 / cols.length);
    for (let i = 0; i < rows.length; i += per) {
      const part = rows.slice(i, i + per);
      const params: unknown[] = [];
      const values = part.map((r) => `(${r.map((v, j) => { params.push(v); return `$${params.length}${cast[j] ?? ''}`; }).join(', ')})`);
      await q(`INSERT INTO ${table} (${cols.join(', ')}) VALUES ${values.join(', ')}`, params);
    }
  }

  async upsert(collection: string, docs: DocumentRecord[], opts: { maxChunks: number }): Promise<{ chunks: number }> {
    return this.tx(async (q) => {
      const id = await this.idOf(collection, q, true);
      const chunks = this.t(id, 'chunks');
      const terms = this.t(id, 'terms');
      const last = new Map(docs.map((d) => [d.id, d]));
      const ids = [...last.keys()];
      await q('DELETE FROM gw_documents WHERE collection_id = $1 AND id = ANY($2::text[])', [id, ids]);
      await this.insertMany(q, 'gw_documents', ['collection_id', 'id', 'text', 'metadata'], [...last.values()].map((d) => [id, d.id, d.text, JSON.stringify(d.metadata)]), ['', '', '', '::jsonb']);
      const chunkRows: unknown[][] = [];
      const termRows: unknown[][] = [];
      for (const d of last.values()) {
        for (const ch of d.chunks) {
          chunkRows.push([d.id, ch.index, ch.start, ch.end, ch.text, ch.terms.length, vec(ch.vector)]);
          const tf = new Map<string, number>();
          for (const t of ch.terms) tf.set(t, (tf.get(t) ?? 0) + 1);
          for (const [t, n] of tf) termRows.push([t, d.id, ch.index, n]);
        }
      }
      await this.insertMany(q, chunks, ['doc_id', 'idx', 'start', '"end"', 'text', 'nterms', 'embedding'], chunkRows, ['', '', '', '', '', '', '::vector']);
      await this.insertMany(q, terms, ['term', 'doc_id', 'idx', 'tf'], termRows);
      const [{ n }] = await q(`SELECT count(*)::int AS n FROM ${chunks}`);
      if ((n as number) > opts.maxChunks) throw new GatewayError('too_large', `collection "${collection}" would hold ${n as number} chunks; the limit is ${opts.maxChunks}`, { details: { limit: opts.maxChunks } });
      await q('UPDATE gw_collections SET version = version + 1 WHERE id = $1', [id]);
      return { chunks: chunkRows.length };
    });
  }

  async getDocument(collection: string, docId: string): Promise<StoredDocument | undefined> {
    return this.read(async (q) => {
      const id = await this.idOf(collection, q);
      const rows = await q(
        `SELECT d.id, d.text, d.metadata, (SELECT count(*)::int FROM ${this.t(id, 'chunks')} c WHERE c.doc_id = d.id) AS chunks FROM gw_documents d WHERE d.collection_id = $1 AND d.id = $2`,
        [id, docId],
      );
      const r = rows[0];
      return r && { id: r.id as string, text: r.text as string, metadata: r.metadata as Metadata, chunks: r.chunks as number };
    });
  }

  async deleteDocuments(collection: string, sel: { ids?: string[]; filter?: FilterNode }): Promise<number> {
    return this.tx(async (q) => {
      const id = await this.idOf(collection, q, true);
      const params: unknown[] = [id];
      const conds: string[] = [];
      if (sel.ids) {
        params.push(sel.ids);
        conds.push(`d.id = ANY($${params.length}::text[])`);
      }
      if (sel.filter) conds.push(filterSql(sel.filter, params));
      if (conds.length === 0) return 0;
      const rows = await q(`DELETE FROM gw_documents d WHERE d.collection_id = $1 AND (${conds.join(' OR ')}) RETURNING d.id`, params);
      if (rows.length) await q('UPDATE gw_collections SET version = version + 1 WHERE id = $1', [id]);
      return rows.length;
    });
  }

  private hits(rows: Row[]): Hit[] {
    return rows.map((r) => ({
      documentId: r.doc_id as string,
      chunkIndex: r.idx as number,
      start: r.start as number,
      end: r.end as number,
      text: r.text as string,
      metadata: r.metadata as Metadata,
      score: Number(r.score),
    }));
  }

  async vectorSearch(collection: string, vector: Float32Array, k: number, filter?: FilterNode): Promise<Hit[]> {
    return this.read(async (q) => {
      const id = await this.idOf(collection, q);
      const params: unknown[] = [vec(vector), id];
      const where = filter ? ` AND ${filterSql(filter, params)}` : '';
      params.push(k);
      // HNSW with a filter: keep scanning until k rows pass it (pgvector 0.8 iterative scans), then order exactly.
      await q(`SET LOCAL hnsw.ef_search = ${Math.min(1000, Math.max(40, 2 * Math.floor(k)))}`);
      if (filter) await q(`SET LOCAL hnsw.iterative_scan = relaxed_order`);
      const rows = await q(
        `SELECT * FROM (
           SELECT c.doc_id, c.idx, c.start, c."end", c.text, d.metadata, c.embedding <=> $1::vector AS distance
           FROM ${this.t(id, 'chunks')} c JOIN gw_documents d ON d.collection_id = $2 AND d.id = c.doc_id
           WHERE true${where} ORDER BY c.embedding <=> $1::vector LIMIT $${params.length}
         ) hits ORDER BY distance`,
        params,
      );
      return this.hits(rows.map((r) => ({ ...r, score: 1 - Number(r.distance) })));
    });
  }

  async keywordSearch(collection: string, terms: string[], k: number, filter?: FilterNode): Promise<Hit[]> {
    if (terms.length === 0) return [];
    return this.read(async (q) => {
      const id = await this.idOf(collection, q);
      const chunks = this.t(id, 'chunks');
      const tt = this.t(id, 'terms');
      const params: unknown[] = [terms, id];
      const where = filter ? ` AND ${filterSql(filter, params)}` : '';
      params.push(k);
      const rows = await q(
        `WITH stats AS (SELECT count(*)::float8 AS n, coalesce(avg(nterms), 1)::float8 AS avglen FROM ${chunks}),
              df AS (SELECT term, count(*)::float8 AS df FROM ${tt} WHERE term = ANY($1::text[]) GROUP BY term)
         SELECT c.doc_id, c.idx, c.start, c."end", c.text, d.metadata,
                SUM(GREATEST(ln((s.n - df.df + 0.5) / (df.df + 0.5)), 1e-6) * t.tf * ${BM25_K1 + 1} / (t.tf + ${BM25_K1} * (1 - ${BM25_B} + ${BM25_B} * c.nterms / s.avglen))) AS score
         FROM ${tt} t JOIN df ON df.term = t.term JOIN ${chunks} c ON c.doc_id = t.doc_id AND c.idx = t.idx
              JOIN gw_documents d ON d.collection_id = $2 AND d.id = c.doc_id CROSS JOIN stats s
         WHERE true${where}
         GROUP BY c.doc_id, c.idx, c.start, c."end", c.text, d.metadata ORDER BY score DESC, c.doc_id, c.idx LIMIT $${params.length}`,
        params,
      );
      return this.hits(rows);
    });
  }

  async existing(collection: string, ids: string[]): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    const rows = await this.read((q) => q('SELECT d.id FROM gw_documents d JOIN gw_collections c ON c.id = d.collection_id WHERE c.name = $1 AND d.id = ANY($2::text[])', [collection, ids]));
    return new Set(rows.map((r) => r.id as string));
  }

  async chunkTexts(collection: string): Promise<ChunkRef[]> {
    const rows = await this.read(async (q) => q(`SELECT doc_id, idx, text FROM ${this.t(await this.idOf(collection, q), 'chunks')} ORDER BY doc_id, idx`));
    return rows.map((r) => ({ documentId: r.doc_id as string, chunkIndex: r.idx as number, text: r.text as string }));
  }

  async reembed(collection: string, model: { name: string; version: string; dim: number }, vectors: Map<string, Float32Array>): Promise<void> {
    await this.tx(async (q) => {
      const id = await this.idOf(collection, q, true);
      const chunks = this.t(id, 'chunks');
      const [{ dim }] = await q('SELECT dim FROM gw_collections WHERE id = $1', [id]);
      if (dim !== model.dim) {
        await q(`DROP INDEX IF EXISTS ${chunks}_hnsw`);
        await q(`ALTER TABLE ${chunks} ALTER COLUMN embedding DROP NOT NULL`);
        await q(`ALTER TABLE ${chunks} ALTER COLUMN embedding TYPE vector(${model.dim}) USING NULL`);
      }
      const rows = await q(`SELECT doc_id, idx FROM ${chunks}`);
      const updates = rows.map((r) => {
        const v = vectors.get(chunkKey(r.doc_id as string, r.idx as number));
        if (!v) throw new GatewayError('internal_error', `no new vector for chunk ${r.idx as number} of ${r.doc_id as string}`);
        return [r.doc_id, r.idx, vec(v)];
      });
      for (let i = 0; i < updates.length; i += 1000) {
        const params: unknown[] = [];
        const values = updates.slice(i, i + 1000).map((u) => `(${u.map((x) => { params.push(x); return `$${params.length}`; }).join(', ')})`);
        await q(`UPDATE ${chunks} c SET embedding = v.e::vector FROM (VALUES ${values.join(', ')}) AS v(doc_id, idx, e) WHERE c.doc_id = v.doc_id AND c.idx = v.idx::int`, params);
      }
      if (dim !== model.dim) await q(`ALTER TABLE ${chunks} ALTER COLUMN embedding SET NOT NULL`);
      if (dim !== model.dim) await q(`CREATE INDEX ${chunks}_hnsw ON ${chunks} USING hnsw (embedding vector_cosine_ops)`);
      await q('UPDATE gw_collections SET embedding_model = $1, embedding_version = $2, dim = $3, version = version + 1 WHERE id = $4', [model.name, model.version, model.dim, id]);
    });
  }

  async sizeBytes(): Promise<number> {
    const [r] = await this.read((q) => q('SELECT pg_database_size(current_database())::float8 AS n'));
    return Number(r.n);
  }

  /** For tests: a chunk's stored vector. */
  async vectorOf(collection: string, docId: string, idx: number): Promise<Float32Array | undefined> {
    const rows = await this.read(async (q) => q(`SELECT embedding::text AS e FROM ${this.t(await this.idOf(collection, q), 'chunks')} WHERE doc_id = $1 AND idx = $2`, [docId, idx]));
    return rows[0] && parseVec(rows[0].e as string);
  }
}
