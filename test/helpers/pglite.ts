/**
 * A PostgreSQL server for tests: PGlite (PostgreSQL in WASM) with pgvector, served over the real PostgreSQL wire
 * protocol by @electric-sql/pglite-socket, so the store is tested through the production `pg` driver, SQL,
 * transactions and pool. PGlite has one session: the socket server runs one client's transaction at a time
 * (other clients' queries wait), so concurrent transactions are serialized, as strict as SERIALIZABLE.
 */
import { PGlite } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite-pgvector';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { freePort } from './gateway-process.ts';

export interface TestPostgres {
  url: string;
  stop(): Promise<void>;
}

export async function startPostgres(opts: { dataDir?: string } = {}): Promise<TestPostgres> {
  const db = await PGlite.create({ dataDir: opts.dataDir, extensions: { vector } });
  const port = await freePort();
  const server = new PGLiteSocketServer({ db, port, host: '127.0.0.1', maxConnections: 64 });
  await server.start();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    stop: async () => {
      await server.stop();
      await db.close();
    },
  };
}
