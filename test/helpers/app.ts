import Fastify, { type FastifyInstance } from 'fastify';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import app, { serverOptions } from '../../src/app.ts';
import { loadConfig } from '../../src/config/load.ts';
import type { GatewayConfig } from '../../src/config/schema.ts';

type Overrides = Record<string, unknown>;

/** The bundled demo models loaded at boot (the default config also lists their int8 variants, loaded lazily). TEST_MODELS_DIR points the tests at another folder of zips with the same names. */
export const MODELS_DIR = resolve(process.env.TEST_MODELS_DIR ?? 'models');
export const DEMO_MODELS = ['qa-demo', 'sts-demo', 'essay-demo', 'essay-demo-bands', 'classify-demo', 'retrieve-demo', 'rerank-demo'] as const;
export const LAZY_DEMO_MODELS = ['qa-demo-int8', 'retrieve-demo-int8', 'rerank-demo-int8'] as const;
export const demoZip = (name: string) => join(MODELS_DIR, `${name}.zip`);

/** The committed default config's model entries, pointed at MODELS_DIR. */
export function demoEntries(): GatewayConfig['models'] {
  return loadConfig({ env: {} }).models.map((m) => ({ ...m, source: demoZip(m.name) }));
}

/** The committed default config with a private model cache folder, plus overrides. */
export function testConfig(overrides: Overrides = {}): GatewayConfig {
  const dir = mkdtempSync(join(tmpdir(), 'gw-models-'));
  const collections = { dir: mkdtempSync(join(tmpdir(), 'gw-collections-')) };
  const feedback = { dir: mkdtempSync(join(tmpdir(), 'gw-feedback-')) };
  return loadConfig({ env: {}, overrides: { store: { dir }, collections, feedback, server: { logLevel: 'silent' }, models: demoEntries(), ...overrides } });
}

/** Builds the app as server.ts does (without listening) and boots its models. */
export async function buildApp(config: GatewayConfig = testConfig(), opts: { boot?: boolean; routes?: (app: FastifyInstance) => void } = {}): Promise<FastifyInstance> {
  const fastify = Fastify({ ...serverOptions(config), logger: false });
  await fastify.register(app, { config });
  opts.routes?.(fastify);
  await fastify.ready();
  if (opts.boot !== false) await fastify.models.boot();
  return fastify;
}
