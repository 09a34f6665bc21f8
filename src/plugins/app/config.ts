import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import type { GatewayConfig } from '../../config/schema.ts';

declare module 'fastify' {
  interface FastifyInstance {
    config: GatewayConfig;
  }
}

/** The validated config, decorated once so plugins and routes read it from the app, never from process.env. */
export default fp(
  async (app: FastifyInstance, opts: { config: GatewayConfig }) => {
    app.decorate('config', opts.config);
  },
  { name: 'config' },
);
