import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Value } from 'typebox/value';
import { ConfigSchema, normalizeEntry, type GatewayConfig } from './schema.ts';

export const DEFAULT_CONFIG_PATH = fileURLToPath(new URL('../../config/default.json', import.meta.url));
const ENV_PREFIX = 'GATEWAY_';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Objects merge key by key; arrays and scalars replace (a file's model list replaces the default one). */
export function deepMerge(base: Json, over: Json): Json {
  const out: Json = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = isObject(v) && isObject(out[k]) ? deepMerge(out[k] as Json, v) : v;
  return out;
}

function readJson(path: string): Json {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${path}: ${(err as Error).message}`);
  }
  try {
    const parsed: unknown = JSON.parse(text);
    if (!isObject(parsed)) throw new Error('top level must be an object');
    return parsed;
  } catch (err) {
    throw new ConfigError(`config file ${path} is not valid JSON: ${(err as Error).message}`);
  }
}

/** Map a camelCase schema key from its upper-snake env spelling (S3 → s3, FORCE_PATH_STYLE → forcePathStyle). */
function keyFor(schemaNode: unknown, envKey: string): string | undefined {
  const props = isObject(schemaNode) && isObject(schemaNode.properties) ? schemaNode.properties : {};
  const wanted = envKey.replace(/_/g, '').toLowerCase();
  return Object.keys(props).find((k) => k.toLowerCase() === wanted);
}

/**
 * `GATEWAY_<SECTION>__<KEY>=value` overrides one key (values are JSON when they parse, strings otherwise);
 * `GATEWAY_MODELS` takes the whole model list as JSON; `PORT` and `HOST` are the usual shorthands.
 */
export function envOverrides(env: NodeJS.ProcessEnv): Json {
  const out: Json = {};
  const set = (path: string[], raw: string) => {
    let node: Json = out;
    let schema: unknown = ConfigSchema;
    path.forEach((part, i) => {
      const key = keyFor(schema, part);
      if (!key) throw new ConfigError(`unknown config key in environment variable ${ENV_PREFIX}${path.join('__')} (at "${part}")`);
      schema = (schema as { properties: Json }).properties[key];
      if (i === path.length - 1) {
        let value: unknown = raw;
        try {
          value = JSON.parse(raw);
        } catch {
          /* a plain string */
        }
        node[key] = value;
      } else node = (node[key] = isObject(node[key]) ? node[key] : {}) as Json;
    });
  };
  for (const [name, raw] of Object.entries(env)) {
    if (raw === undefined || !name.startsWith(ENV_PREFIX) || name === 'GATEWAY_CONFIG' || name === 'GATEWAY_API_KEYS') continue;
    set(name.slice(ENV_PREFIX.length).split('__'), raw);
  }
  if (env.GATEWAY_API_KEYS !== undefined) {
    delete (out.security as Json | undefined)?.apiKeys;
    const keys = env.GATEWAY_API_KEYS.split(',').map((k) => k.trim()).filter(Boolean);
    out.security = { ...((out.security as Json) ?? {}), apiKeys: keys };
  }
  if (env.PORT) set(['SERVER', 'PORT'], env.PORT);
  if (env.HOST) set(['SERVER', 'HOST'], env.HOST);
  return out;
}

/** Validates a raw config object against the schema, with defaults and coercion; names the bad key. */
export function validateConfig(raw: unknown): GatewayConfig {
  let value = Value.Default(ConfigSchema, Value.Clone(raw));
  value = Value.Convert(ConfigSchema, value);
  if (!Value.Check(ConfigSchema, value)) {
    const errors = [...Value.Errors(ConfigSchema, value)]
      .filter((e) => e.keyword !== 'boolean')
      .slice(0, 5)
      .map((e) => {
        const extra = (e.params as { additionalProperties?: string[] }).additionalProperties;
        const where = e.instancePath.replace(/^\//, '').replace(/\//g, '.') || '(top level)';
        // Never echo a secret back: API key errors name the key's position only.
        if (where.startsWith('security.apiKeys')) return `${where}: API keys must be at least 16 characters`;
        return extra ? `${where}: unknown key ${extra.map((k) => `"${k}"`).join(', ')}` : `${where}: ${e.message}`;
      });
    throw new ConfigError(`invalid config: ${errors.join('; ')}`);
  }
  const config = value as GatewayConfig;
  config.models = config.models.map(normalizeEntry);
  config.security.apiKeys.forEach((entry, i) => {
    // The key itself, after any scope prefix, must be long; never echo it.
    if (entry.replace(/^(infer|write|admin):/, '').length < 16) throw new ConfigError(`invalid config: security.apiKeys.${i}: API keys must be at least 16 characters`);
  });
  const names = new Set<string>();
  for (const m of config.models) {
    if (names.has(m.name)) throw new ConfigError(`invalid config: models: model name "${m.name}" is listed twice`);
    names.add(m.name);
  }
  return config;
}

/** The committed default, then the file named by GATEWAY_CONFIG (or `file`), then environment variables. */
export function loadConfig(opts: { env?: NodeJS.ProcessEnv; file?: string; overrides?: Json } = {}): GatewayConfig {
  const env = opts.env ?? process.env;
  let raw = readJson(DEFAULT_CONFIG_PATH);
  const file = opts.file ?? env.GATEWAY_CONFIG;
  if (file) raw = deepMerge(raw, readJson(file));
  raw = deepMerge(raw, envOverrides(env));
  if (opts.overrides) raw = deepMerge(raw, opts.overrides);
  return validateConfig(raw);
}
