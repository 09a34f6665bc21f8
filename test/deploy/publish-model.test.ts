/**
 * scripts/publish-model against a real S3 server (s3rver): pack a Hugging Face export folder, upload,
 * read the object back, compare with the printed entry. Booting a gateway from that entry is in
 * test/e2e/publish-boot.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GetObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import yauzl from 'yauzl';
import { S3RVER_KEY, startS3, type S3Server } from '../helpers/s3.ts';
import { ROOT } from './harness.ts';
import { crossEncoderFolder, DISTILBERT_CLASSIFIER, realTokenizer } from '../helpers/real-models.ts';

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/publish-model.ts', ...args], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: os.tmpdir(), AWS_ACCESS_KEY_ID: S3RVER_KEY, AWS_SECRET_ACCESS_KEY: S3RVER_KEY, AWS_REGION: 'us-east-1', AWS_EC2_METADATA_DISABLED: 'true' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

function zipNames(buf: Buffer): Promise<string[]> {
  return new Promise((resolve, reject) => {
    yauzl.fromBuffer(buf, (err, zip) => {
      if (err || !zip) return reject(err);
      const names: string[] = [];
      zip.on('entry', (e: yauzl.Entry) => names.push(e.fileName));
      zip.on('end', () => resolve(names.sort()));
      zip.on('error', reject);
    });
  });
}

/** A Hugging Face export as users have it: our files plus weights for other runtimes. */
function hfFolder(opts: { withTokenizer?: boolean } = {}): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'hf-export-'));
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ model_type: 'bert', id2label: { 0: 'a', 1: 'b' }, max_position_embeddings: 128 }));
  if (opts.withTokenizer !== false) writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify({ version: '1.0', model: { type: 'WordPiece' } }));
  writeFileSync(path.join(dir, 'tokenizer_config.json'), '{}');
  mkdirSync(path.join(dir, 'onnx'));
  writeFileSync(path.join(dir, 'onnx', 'model.onnx'), Buffer.from('not really onnx, but bytes to carry'));
  writeFileSync(path.join(dir, 'pytorch_model.bin'), Buffer.alloc(1000, 1));
  writeFileSync(path.join(dir, 'gateway.json'), JSON.stringify({ name: 'tiny-cls', version: '1', task: 'text-classification', max_length: 128, output: 'softmax', description: 'fixture' }));
  return dir;
}

describe('scripts/publish-model', () => {
  let s3: S3Server;
  beforeAll(async () => {
    s3 = await startS3();
  });
  afterAll(async () => {
    await s3?.close();
  });

  it('packs a folder, uploads it and prints the config entry', async () => {
    const dir = hfFolder();
    const r = await run(['--dir', dir, '--endpoint', s3.endpoint, '--bucket', 'models', '--key', 'cls/tiny.zip', '--create-bucket', '--default']);
    expect(r.stderr).toContain('uploaded');
    expect(r.code).toBe(0);
    const entry = JSON.parse(r.stdout.trim()) as Record<string, unknown>;
    expect(entry).toEqual({ name: 'tiny-cls', source: 's3://models/cls/tiny.zip', sha256: expect.stringMatching(/^[0-9a-f]{64}$/), required: true, default: true });

    const obj = await s3.client.send(new GetObjectCommand({ Bucket: 'models', Key: 'cls/tiny.zip' }));
    const bytes = Buffer.from(await obj.Body!.transformToByteArray());
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(entry.sha256);
    expect(obj.Metadata?.sha256).toBe(entry.sha256);
    // Weights for other runtimes stay out; everything the gateway reads is in.
    expect(await zipNames(bytes)).toEqual(['config.json', 'gateway.json', 'onnx/model.onnx', 'tokenizer.json', 'tokenizer_config.json']);
    expect(r.stderr).toContain('pytorch_model.bin');

    // Packing is deterministic: the same folder gives the same sha256 (so a gateway can skip the download).
    const again = await run(['--dir', dir, '--bucket', 'models', '--dry-run']);
    expect(JSON.parse(again.stdout).sha256).toBe(entry.sha256);
  });

  it('uploads an existing zip as it is, named by its gateway.json', async () => {
    const dir = hfFolder();
    const zip = path.join(dir, 'packed.zip');
    expect((await run(['--dir', dir, '--out', zip, '--bucket', 'x', '--dry-run'])).code).toBe(0);
    const r = await run(['--zip', zip, '--endpoint', s3.endpoint, '--bucket', 'zips', '--create-bucket', '--optional']);
    expect(r.code).toBe(0);
    const entry = JSON.parse(r.stdout) as { sha256: string; source: string; required: boolean };
    expect(entry).toMatchObject({ name: 'tiny-cls', source: 's3://zips/tiny-cls.zip', required: false, default: false });
    const head = await s3.client.send(new HeadObjectCommand({ Bucket: 'zips', Key: 'tiny-cls.zip' }));
    expect(head.Metadata?.sha256).toBe(entry.sha256);
  });

  it('packs every folder the gateway boots: a raw Optimum export without gateway.json, one without config.json', async () => {
    const optimum = path.join(mkdtempSync(path.join(os.tmpdir(), 'raw-')), 'distilbert-sst2');
    mkdirSync(optimum);
    for (const f of ['model.onnx', 'config.json']) copyFileSync(path.join(DISTILBERT_CLASSIFIER, f), path.join(optimum, f));
    copyFileSync(realTokenizer('bert-base-uncased'), path.join(optimum, 'tokenizer.json'));
    const out = path.join(optimum, '..', 'packed.zip');
    const r = await run(['--dir', optimum, '--out', out, '--dry-run']);
    expect(r.stderr).toContain('distilbert-sst2 is a text-classification model, max_length 512');
    expect(r.code).toBe(0);
    // Without --bucket the entry names the zip it made: a source the gateway can boot from as it is.
    expect(JSON.parse(r.stdout)).toEqual({ name: 'distilbert-sst2', source: out, sha256: expect.stringMatching(/^[0-9a-f]{64}$/), required: true, default: false });
    expect(await zipNames(readFileSync(out))).toEqual(['config.json', 'model.onnx', 'tokenizer.json']);

    const ce = await crossEncoderFolder();
    const r2 = await run(['--dir', ce, '--name', 'xlmr-ce', '--bucket', 'models', '--dry-run']);
    expect(r2.code).toBe(0);
    expect(r2.stderr).toContain('xlmr-ce is a text-ranking model, max_length 62');
    expect(JSON.parse(r2.stdout)).toMatchObject({ name: 'xlmr-ce', source: 's3://models/xlmr-ce.zip' });

    const nowhere = await run(['--dir', optimum, '--dry-run']);
    expect(nowhere.code).toBe(1);
    expect(nowhere.stderr).toContain('--dry-run without --bucket needs --out FILE');
  });

  it('refuses a folder that is not a gateway model, naming what is missing', async () => {
    const r = await run(['--dir', hfFolder({ withTokenizer: false }), '--endpoint', s3.endpoint, '--bucket', 'models']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('tokenizer.json is missing');
    expect(r.stdout).toBe('');
    const bad = await run(['--zip', '/nonexistent.zip', '--dir', '/tmp', '--bucket', 'b']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('exactly one of');
  });
});
