import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, envOverrides, loadConfig, validateConfig } from '../../src/config/load.ts';

const tmpFile = (obj: unknown) => {
  const p = join(mkdtempSync(join(tmpdir(), 'cfg-')), 'c.json');
  writeFileSync(p, typeof obj === 'string' ? obj : JSON.stringify(obj));
  return p;
};

describe('config', () => {
  it('loads the committed default with every demo model and documented defaults', () => {
    const c = loadConfig({ env: {} });
    expect(c.server.port).toBe(8080);
    expect(c.models.map((m) => m.name)).toEqual(['qa-demo', 'sts-demo', 'essay-demo', 'essay-demo-bands', 'classify-demo', 'retrieve-demo', 'rerank-demo', 'qa-demo-int8', 'retrieve-demo-int8', 'rerank-demo-int8']);
    expect(c.inference.workers * c.inference.intraOpThreads).toBe(2);
    // Every model loaded at boot is required; the int8 variants are lazy (loaded by their first request).
    expect(c.models.filter((m) => m.load === 'eager').every((m) => m.required)).toBe(true);
    expect(c.models.filter((m) => m.load === 'lazy').map((m) => m.name)).toEqual(['qa-demo-int8', 'retrieve-demo-int8', 'rerank-demo-int8']);
    expect(c.collections.embeddingModel).toBe('retrieve-demo');
  });

  it('layers a file over the default, then env over the file; a file model list replaces the default one', () => {
    const file = tmpFile({ server: { port: 9000 }, models: [{ name: 'a', source: 's3://b/a.zip' }] });
    const c = loadConfig({ env: { GATEWAY_CONFIG: file, PORT: '9100', GATEWAY_STORE__S3__ENDPOINT: 'http://127.0.0.1:9999', GATEWAY_INFERENCE__MAX_BATCH_SIZE: '8' } });
    expect(c.server.port).toBe(9100);
    expect(c.store.s3.endpoint).toBe('http://127.0.0.1:9999');
    expect(c.inference.maxBatchSize).toBe(8);
    expect(c.models).toEqual([{ name: 'a', source: 's3://b/a.zip', required: true, default: false, load: 'eager' }]);
  });

  it('takes a whole model list from GATEWAY_MODELS', () => {
    const c = loadConfig({ env: { GATEWAY_MODELS: JSON.stringify([{ name: 'x', source: 'models/x.zip', required: false }]) } });
    expect(c.models).toEqual([{ name: 'x', source: 'models/x.zip', required: false, default: false, load: 'eager' }]);
  });

  it.each([
    [{ server: { port: 'eighty' } }, /server\.port/],
    [{ server: { prot: 1 } }, /server: unknown key "prot"/],
    [{ inference: { workers: 0 } }, /inference\.workers/],
    [{ models: [{ name: 'a' }] }, /models\.0.*source/],
    [{ models: [{ name: 'a', source: 'x.zip', sha256: 'abc' }] }, /models\.0\.sha256/],
    [{ models: [{ name: 'a', source: 'x.zip' }, { name: 'a', source: 'y.zip' }] }, /"a" is listed twice/],
  ])('rejects %j naming the bad key', (raw, message) => {
    expect(() => validateConfig(raw)).toThrowError(ConfigError);
    expect(() => validateConfig(raw)).toThrowError(message);
  });

  it('names an unknown environment key and an unreadable or invalid file', () => {
    expect(() => envOverrides({ GATEWAY_SERVR__PORT: '1' })).toThrowError(/GATEWAY_SERVR__PORT/);
    expect(() => loadConfig({ env: { GATEWAY_CONFIG: '/nonexistent/gw.json' } })).toThrowError(/cannot read config file \/nonexistent\/gw.json/);
    expect(() => loadConfig({ env: { GATEWAY_CONFIG: tmpFile('{ nope') } })).toThrowError(/not valid JSON/);
  });
});
