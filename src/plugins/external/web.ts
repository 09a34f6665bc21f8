import fp from 'fastify-plugin';
import staticFiles from '@fastify/static';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';

const WEB_DIR = fileURLToPath(new URL('../../../web/', import.meta.url));

/** The web form at / (the embedded default; behind Nginx, Nginx serves the same folder). */
async function webPlugin(app: FastifyInstance) {
  if (!app.config.server.serveWebForm || !existsSync(WEB_DIR)) return;
  await app.register(staticFiles, { root: WEB_DIR, prefix: '/', index: ['index.html'], wildcard: false, schemaHide: true });
}

export default fp(webPlugin, { name: 'web', dependencies: ['config'] });
