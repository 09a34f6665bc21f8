/**
 * scripts/publish-model round trip, all the way: unpack a bundled demo model into a Hugging Face style
 * folder, publish it to s3rver with the script, boot a gateway from nothing but the printed entry, and
 * serve a request with it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import yauzl from 'yauzl';
import { S3RVER_KEY, startS3, type S3Server } from '../helpers/s3.ts';
import { startGateway, type GatewayProcess } from '../helpers/gateway-process.ts';
import { ROOT, postJson } from '../deploy/harness.ts';

const AWS_ENV = { AWS_ACCESS_KEY_ID: S3RVER_KEY, AWS_SECRET_ACCESS_KEY: S3RVER_KEY, AWS_REGION: 'us-east-1', AWS_EC2_METADATA_DISABLED: 'true' };

/** Unzips `zip` into `dir` (trusted input: the repository's own demo model). */
function unzip(zip: string, dir: string): Promise<void> {
  return new Promise((resolve, reject) => {
    yauzl.open(zip, { lazyEntries: true }, (err, z) => {
      if (err || !z) return reject(err);
      z.on('error', reject);
      z.on('end', () => resolve());
      z.on('entry', (e: yauzl.Entry) => {
        const out = path.join(dir, e.fileName);
        if (e.fileName.endsWith('/')) {
          mkdirSync(out, { recursive: true });
          return z.readEntry();
        }
        mkdirSync(path.dirname(out), { recursive: true });
        z.openReadStream(e, (e2, stream) => {
          if (e2 || !stream) return reject(e2);
          pipeline(stream, createWriteStream(out)).then(() => z.readEntry(), reject);
        });
      });
      z.readEntry();
    });
  });
}

function publish(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/publish-model.ts', ...args], { cwd: ROOT, env: { PATH: process.env.PATH ?? '', HOME: os.tmpdir(), ...AWS_ENV } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('publish-model → S3 → gateway boot → request', () => {
  let s3: S3Server;
  let gateway: GatewayProcess | undefined;
  beforeAll(async () => {
    s3 = await startS3();
  });
  afterAll(async () => {
    await gateway?.stop();
    await s3?.close();
  });

  it('a gateway booted from the printed entry serves similarity', async () => {
    const folder = mkdtempSync(path.join(os.tmpdir(), 'hf-sts-'));
    await unzip(path.join(ROOT, 'models/sts-demo.zip'), folder);
    const r = await publish(['--dir', folder, '--endpoint', s3.endpoint, '--bucket', 'published', '--key', 'team/sts.zip', '--create-bucket', '--default']);
    expect(r.code, r.stderr).toBe(0);
    const entry = JSON.parse(r.stdout) as { name: string; source: string; sha256: string };
    expect(entry.source).toBe('s3://published/team/sts.zip');

    const configFile = path.join(mkdtempSync(path.join(os.tmpdir(), 'gw-config-')), 'config.json');
    writeFileSync(configFile, JSON.stringify({ models: [entry] }));
    gateway = await startGateway({ ...AWS_ENV, GATEWAY_CONFIG: configFile, GATEWAY_STORE__S3__ENDPOINT: s3.endpoint });
    await gateway.waitReady(120_000);

    const models = (await (await fetch(`${gateway.url}/v1/models`)).json()) as unknown;
    expect(JSON.stringify(models)).toContain(entry.sha256);
    const answer = await postJson(`${gateway.url}/v1/similarity`, { sentence_1: 'A man plays a guitar.', sentence_2: 'A man is playing the guitar.' });
    expect(answer.status, answer.text).toBe(200);
    const body = answer.json<{ model: string; score: number; similar: boolean }>();
    expect(body.model).toBe(entry.name);
    expect(body.score).toBeGreaterThan(-1.0001);
    expect(body.score).toBeLessThan(1.0001);
  }, 200_000);
});
