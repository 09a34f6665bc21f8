import Fastify, { type FastifyInstance } from 'fastify';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import app, { serverOptions } from '../../src/app.ts';
import { loadConfig } from '../../src/config/load.ts';
import type { GatewayConfig } from '../../src/config/schema.ts';

type Overrides = Record<string, unknown>;

/** The committed default config with a private model cache folder, plus overrides. */
export function testConfig(overrides: Overrides = {}): GatewayConfig {
  const dir = mkdtempSync(join(tmpdir(), 'gw-models-'));
  return loadConfig({ env: {}, overrides: { store: { dir }, server: { logLevel: 'silent' }, ...overrides } });
}

/** Builds the app as server.ts does (without listening) and boots its models. */
export async function buildApp(config: GatewayConfig = testConfig(), opts: { boot?: boolean } = {}): Promise<FastifyInstance> {
  const fastify = Fastify({ ...serverOptions(config), logger: false });
  await fastify.register(app, { config });
  await fastify.ready();
  if (opts.boot !== false) await fastify.models.boot();
  return fastify;
}
