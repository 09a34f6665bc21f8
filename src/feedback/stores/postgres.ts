/** Feedback in PostgreSQL (with collections.store postgres): every replica writes to one table; a commit is durable. */
import pg from 'pg';
import type { FeedbackRecord, FeedbackStore } from '../types.ts';

export class PostgresFeedbackStore implements FeedbackStore {
  readonly kind = 'postgres' as const;
  private pool!: pg.Pool;

  constructor(private readonly opts: { url: string; poolSize: number }) {}

  /** One transaction a call, as the collections store does (and what a one-session test server keeps apart). */
  private async tx<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const c = await this.pool.connect();
    try {
      await c.query('BEGIN');
      const out = await fn(c);
      await c.query('COMMIT');
      return out;
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      c.release();
    }
  }

  async open(): Promise<void> {
    this.pool = new pg.Pool({ connectionString: this.opts.url, max: Math.min(4, this.opts.poolSize) });
    await this.tx((c) => c.query('CREATE TABLE IF NOT EXISTS gw_feedback (id TEXT PRIMARY KEY, created_at TEXT NOT NULL, record JSONB NOT NULL)'));
  }

  async close(): Promise<void> {
    await this.pool?.end();
  }

  async append(r: FeedbackRecord): Promise<void> {
    await this.tx((c) => c.query('INSERT INTO gw_feedback (id, created_at, record) VALUES ($1, $2, $3::jsonb)', [r.id, r.created_at, JSON.stringify(r)]));
  }

  async all(): Promise<FeedbackRecord[]> {
    return (await this.tx((c) => c.query('SELECT record FROM gw_feedback ORDER BY created_at, id'))).rows.map((row: { record: FeedbackRecord }) => row.record);
  }
}
