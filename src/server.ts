import Fastify from 'fastify';
import pretty from 'pino-pretty';
import closeWithGrace from 'close-with-grace';
import { loadConfig, ConfigError } from './config/load.ts';
import app, { serverOptions } from './app.ts';
import { BootError } from './errors.ts';

/**
 * The process: config, logger, listen, boot the models, graceful close. Listening comes first so that
 * /health/live and /health/ready (503 with per-model states) answer while models download and warm up.
 */
async function main() {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }

  const { logFormat } = config.server;
  const readable = logFormat === 'pretty' || (logFormat === 'auto' && process.stdout.isTTY === true);
  const server = Fastify({
    ...serverOptions(config),
    logger: {
      level: config.server.logLevel,
      // Request bodies are never logged; headers that carry secrets are redacted if anything logs them.
      redact: ['req.headers.authorization', 'req.headers["x-api-key"]', 'req.headers.cookie'],
      // On a terminal, one readable line per event (each boot step of each model); JSON lines otherwise.
      ...(readable ? { stream: pretty({ colorize: process.stdout.isTTY === true, singleLine: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' }) } : {}),
    },
  });
  await server.register(app, { config });

  closeWithGrace({ delay: config.server.shutdownGraceMs, logger: server.log }, async ({ signal, err }) => {
    if (err) server.log.error({ err }, 'closing after an error');
    server.log.info({ signal }, 'draining: readiness is 503, new requests get 503, in-flight requests finish');
    server.startDraining();
    if (config.server.drainDelayMs > 0 && !err) await new Promise((r) => setTimeout(r, config.server.drainDelayMs));
    await server.close();
    server.log.info('closed');
  });

  await server.listen({ port: config.server.port, host: config.server.host });
  const t0 = performance.now();
  try {
    await server.models.boot();
    server.log.info({ ms: Math.round(performance.now() - t0), models: server.models.list().map((m) => `${m.name}:${m.state}`) }, 'ready');
  } catch (err) {
    const msg = err instanceof BootError ? err.message : (err as Error).message;
    server.log.fatal({ err: msg }, 'boot failed');
    process.stderr.write(`boot failed: ${msg}\n`);
    await server.close().catch(() => undefined);
    process.exit(1);
  }
}

void main();
