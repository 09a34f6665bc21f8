/**
 * Replaces (or adds) a model on every replica, one replica at a time: PUT /v1/models/{name} on the first,
 * wait until its new version serves (or the attempt failed: then stop, leaving the others on the old version),
 * then the next. Behind Nginx the other replicas keep serving meanwhile, and on each replica the old version
 * answers until the new one is ready, so no request fails.
 *
 *   npm run rollout-model -- --name classify-demo --source s3://models/classify-demo-2.zip [--sha256 HEX] \
 *     --replicas http://10.0.0.11:8080,http://10.0.0.12:8080 [--timeout 600]
 *
 * The admin key (if the replicas have keys) comes from GATEWAY_ADMIN_KEY, never from the command line.
 * Changes at run time are not persisted (docs/models-at-run-time.md): update the config the replicas boot
 * from as well, so a restarted replica comes back with the new version.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';

interface Status {
  state: string;
  version?: string;
  error?: string;
  update?: { state: string; version?: string; error?: string; failed_step?: string };
}

export interface RolloutOptions {
  name: string;
  entry: { source: string; sha256?: string; required?: boolean; default?: boolean; load?: 'eager' | 'lazy' };
  replicas: string[];
  key?: string;
  timeoutMs?: number;
  pollMs?: number;
  log?: (line: string) => void;
}

export class RolloutError extends Error {
  override name = 'RolloutError';
}

async function call(url: string, init: RequestInit, key?: string): Promise<{ status: number; body: Status & { error?: { message?: string } | string } }> {
  const res = await fetch(url, { ...init, headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}), ...(init.headers ?? {}) } });
  return { status: res.status, body: (await res.json().catch(() => ({}))) as never };
}

/** Rolls the entry out replica by replica; resolves with each replica's new version. */
export async function rollout(o: RolloutOptions): Promise<{ replica: string; version: string }[]> {
  const log = o.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const done: { replica: string; version: string }[] = [];
  for (const replica of o.replicas) {
    const base = replica.replace(/\/$/, '');
    const before = await call(`${base}/v1/models/${o.name}`, { method: 'GET' }, o.key);
    const oldVersion = before.status === 200 ? before.body.version : undefined;
    const put = await call(`${base}/v1/models/${o.name}`, { method: 'PUT', body: JSON.stringify(o.entry) }, o.key);
    if (put.status !== 202) throw new RolloutError(`${replica}: PUT answered ${put.status}: ${JSON.stringify(put.body)}`);
    log(`${replica}: loading ${o.name} from ${o.entry.source}${oldVersion ? ` (serving ${oldVersion} meanwhile)` : ''}`);
    const deadline = Date.now() + (o.timeoutMs ?? 600_000);
    for (;;) {
      await new Promise((r) => setTimeout(r, o.pollMs ?? 500));
      const s = (await call(`${base}/v1/models/${o.name}`, { method: 'GET' }, o.key)).body;
      if (s.update?.state === 'failed' || (s.state === 'failed' && !s.update)) {
        const u = s.update ?? s;
        throw new RolloutError(`${replica}: the new version failed${s.update?.failed_step ? ` at ${s.update.failed_step}` : ''}: ${typeof u.error === 'string' ? u.error : 'unknown'}; this and the remaining replicas keep ${oldVersion ?? 'their state'}`);
      }
      if (s.state === 'ready' && !s.update && (s.version !== oldVersion || oldVersion === undefined)) {
        log(`${replica}: ${o.name} now serves ${s.version}`);
        done.push({ replica, version: s.version! });
        break;
      }
      if (Date.now() > deadline) throw new RolloutError(`${replica}: ${o.name} not ready after ${o.timeoutMs ?? 600_000} ms (state ${s.update?.state ?? s.state})`);
    }
  }
  return done;
}

const USAGE = 'usage: rollout-model --name NAME --source SRC [--sha256 HEX] [--lazy] [--default] --replicas URL[,URL...] [--timeout SECONDS]';

async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { name: { type: 'string' }, source: { type: 'string' }, sha256: { type: 'string' }, lazy: { type: 'boolean' }, default: { type: 'boolean' }, replicas: { type: 'string' }, timeout: { type: 'string' } },
      strict: true,
    }));
  } catch (err) {
    process.stderr.write(`rollout-model: ${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (!values.name || !values.source || !values.replicas) {
    process.stderr.write(`${USAGE}\n`);
    return 2;
  }
  try {
    const result = await rollout({
      name: values.name,
      entry: { source: values.source, ...(values.sha256 ? { sha256: values.sha256 } : {}), ...(values.lazy ? { load: 'lazy' as const } : {}), ...(values.default ? { default: true } : {}) },
      replicas: values.replicas.split(',').map((r) => r.trim()).filter(Boolean),
      key: process.env.GATEWAY_ADMIN_KEY,
      timeoutMs: values.timeout ? Number(values.timeout) * 1000 : undefined,
    });
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`rollout-model: ${(err as Error).message}\n`);
    return 1;
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then((code) => (process.exitCode = code));
}
