/**
 * Publishes a model to S3 for the gateway and prints the config entry to paste into the `models` list.
 *
 *   npm run publish-model -- --dir ./my-hf-export --bucket models [--key my-model.zip] [--endpoint http://minio:9000]
 *   npm run publish-model -- --zip models/qa-demo.zip --bucket models --endpoint http://127.0.0.1:9000 --create-bucket
 *
 * --dir packs a Hugging Face / Optimum export folder (config.json, tokenizer.json, the ONNX graph) plus
 * its gateway.json (or --gateway-json FILE) into a zip; --zip takes an existing one. The zip is checked
 * (layout and gateway.json), hashed (sha256), uploaded path-style, read back (size and sha256 metadata),
 * and the entry `{ name, source, sha256, required, default }` goes to stdout; progress goes to stderr.
 * Packing is deterministic (sorted entries, fixed timestamps), so the same folder gives the same sha256
 * and a gateway that already holds it skips the download.
 * Credentials come only from the standard AWS chain (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, profiles...).
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, lstatSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import yauzl from 'yauzl';
import yazl from 'yazl';
import { CreateBucketCommand, HeadBucketCommand, HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';

export const TASKS = ['question-answering', 'sentence-similarity', 'essay-scoring', 'text-classification'] as const;
export const ONNX_CANDIDATES = ['model.onnx', 'onnx/model.onnx', 'onnx/model_quantized.onnx'];
/** Files of an HF export that the gateway reads or that document the model; weights for other runtimes stay out. */
const KEEP = [/^gateway\.json$/, /^config\.json$/, /^tokenizer\.json$/, /^tokenizer_config\.json$/, /^special_tokens_map\.json$/, /^vocab\.txt$/, /^(onnx\/)?[^/]+\.onnx(_data)?$/, /^(onnx\/)?[^/]+\.onnx\.data$/, /^(MODEL_CARD|README)\.md$/i, /^LICEN[CS]E(\.[a-z]+)?$/i];
/** Fixed entry time: the same files give the same zip bytes and so the same sha256. */
const FIXED_MTIME = new Date('2000-01-01T00:00:00Z');

export class PublishError extends Error {
  override name = 'PublishError';
}

export interface GatewayJson {
  name: string;
  task: (typeof TASKS)[number];
  [k: string]: unknown;
}

export interface ConfigEntry {
  name: string;
  source: string;
  sha256: string;
  required: boolean;
  default: boolean;
}

function checkGatewayJson(raw: string, where: string): GatewayJson {
  let g: unknown;
  try {
    g = JSON.parse(raw);
  } catch (err) {
    throw new PublishError(`${where} is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof g !== 'object' || g === null || Array.isArray(g)) throw new PublishError(`${where} must be a JSON object`);
  const o = g as Record<string, unknown>;
  if (typeof o.name !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(o.name)) throw new PublishError(`${where}: "name" must be a model name (letters, digits, . _ -)`);
  if (!TASKS.includes(o.task as GatewayJson['task'])) throw new PublishError(`${where}: "task" must be one of ${TASKS.join(', ')}`);
  return o as GatewayJson;
}

/** Relative file paths under `dir` (forward slashes), refusing symlinks: the gateway refuses them too. */
function listFiles(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const name of readdirSync(path.join(dir, rel))) {
    const r = rel ? `${rel}/${name}` : name;
    const st = lstatSync(path.join(dir, r));
    if (st.isSymbolicLink()) throw new PublishError(`${path.join(dir, r)} is a symlink; copy the file in instead`);
    if (st.isDirectory()) out.push(...listFiles(dir, r));
    else if (st.isFile()) out.push(r);
  }
  return out;
}

/** Checks the names inside a model zip against the artifact layout of ../shared/API.md and returns its gateway.json. */
export function checkLayout(names: string[], readGatewayJson: () => string, where: string): GatewayJson {
  const have = new Set(names);
  for (const f of ['config.json', 'tokenizer.json', 'gateway.json']) if (!have.has(f)) throw new PublishError(`${where}: ${f} is missing`);
  const gateway = checkGatewayJson(readGatewayJson(), `${where}: gateway.json`);
  const named = typeof gateway.onnx === 'string' ? [gateway.onnx] : ONNX_CANDIDATES;
  if (!named.some((f) => have.has(f))) throw new PublishError(`${where}: no ONNX graph (looked for ${named.join(', ')})`);
  return gateway;
}

/** Packs a Hugging Face export folder (+ gateway.json) into `outFile`; returns the files packed and gateway.json. */
export async function packFolder(dir: string, outFile: string, gatewayJsonFile?: string): Promise<{ files: string[]; gateway: GatewayJson }> {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new PublishError(`--dir ${dir} is not a folder`);
  const all = listFiles(dir);
  const files = all.filter((f) => f !== 'gateway.json' && KEEP.some((re) => re.test(f))).sort();
  const gatewayPath = gatewayJsonFile ?? path.join(dir, 'gateway.json');
  if (!existsSync(gatewayPath)) throw new PublishError(`gateway.json not found: put it in ${dir} or pass --gateway-json FILE`);
  const gatewayText = readFileSync(gatewayPath, 'utf8');
  const gateway = checkLayout([...files, 'gateway.json'], () => gatewayText, dir);
  const skipped = all.filter((f) => f !== 'gateway.json' && !files.includes(f));
  if (skipped.length > 0) process.stderr.write(`publish-model: not packed (not read by the gateway): ${skipped.join(', ')}\n`);

  const zip = new yazl.ZipFile();
  zip.addBuffer(Buffer.from(gatewayText), 'gateway.json', { mtime: FIXED_MTIME, mode: 0o100644 });
  for (const f of files) zip.addFile(path.join(dir, f), f, { mtime: FIXED_MTIME, mode: 0o100644 });
  zip.end();
  await pipeline(zip.outputStream, createWriteStream(outFile));
  return { files: ['gateway.json', ...files], gateway };
}

/** Reads a zip's entry names and its gateway.json, and checks the layout. */
export function inspectZip(file: string): Promise<GatewayJson> {
  return new Promise((resolve, reject) => {
    yauzl.open(file, { lazyEntries: true, autoClose: true }, (err, zip) => {
      if (err || !zip) return reject(new PublishError(`${file} is not a readable zip: ${err?.message ?? 'unknown error'}`));
      const names: string[] = [];
      let gatewayText: string | undefined;
      zip.on('error', (e: Error) => reject(new PublishError(`${file}: ${e.message}`)));
      zip.on('entry', (entry: yauzl.Entry) => {
        names.push(entry.fileName);
        if (entry.fileName !== 'gateway.json') return zip.readEntry();
        zip.openReadStream(entry, (e, stream) => {
          if (e || !stream) return reject(new PublishError(`${file}: cannot read gateway.json: ${e?.message ?? ''}`));
          const chunks: Buffer[] = [];
          stream.on('data', (c: Buffer) => chunks.push(c));
          stream.on('end', () => {
            gatewayText = Buffer.concat(chunks).toString('utf8');
            zip.readEntry();
          });
        });
      });
      zip.on('end', () => {
        try {
          resolve(checkLayout(names, () => gatewayText ?? '', file));
        } catch (e) {
          reject(e);
        }
      });
      zip.readEntry();
    });
  });
}

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash);
  return hash.digest('hex');
}

export interface PublishOptions {
  dir?: string;
  zip?: string;
  gatewayJson?: string;
  bucket: string;
  key?: string;
  name?: string;
  endpoint?: string;
  region?: string;
  createBucket?: boolean;
  required?: boolean;
  default?: boolean;
  /** Keep the packed zip here (with --dir). */
  out?: string;
  /** Pack and hash only; no upload. */
  dryRun?: boolean;
}

export async function publish(opts: PublishOptions): Promise<ConfigEntry> {
  if (Boolean(opts.dir) === Boolean(opts.zip)) throw new PublishError('give exactly one of --dir FOLDER or --zip FILE');
  if (!opts.bucket && !opts.dryRun) throw new PublishError('--bucket is required');
  let zipFile: string;
  let gateway: GatewayJson;
  let tmp: string | undefined;
  if (opts.dir) {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'publish-model-'));
    zipFile = opts.out ?? path.join(tmp, 'model.zip');
    const packed = await packFolder(opts.dir, zipFile, opts.gatewayJson);
    gateway = packed.gateway;
    process.stderr.write(`publish-model: packed ${packed.files.length} files into ${zipFile}\n`);
  } else {
    zipFile = opts.zip as string;
    if (!existsSync(zipFile)) throw new PublishError(`--zip ${zipFile} not found`);
    gateway = await inspectZip(zipFile);
  }
  try {
    const sha256 = await sha256File(zipFile);
    const size = statSync(zipFile).size;
    const name = opts.name ?? gateway.name;
    const key = opts.key ?? `${name}.zip`;
    const entry: ConfigEntry = { name, source: `s3://${opts.bucket}/${key}`, sha256, required: opts.required ?? true, default: opts.default ?? false };
    if (opts.dryRun) return entry;

    const s3 = new S3Client({
      endpoint: opts.endpoint,
      region: opts.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1',
      forcePathStyle: true,
      // MinIO and s3rver do not all take the SDK's default CRC checksums.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    try {
      if (opts.createBucket) {
        try {
          await s3.send(new HeadBucketCommand({ Bucket: opts.bucket }));
        } catch {
          await s3.send(new CreateBucketCommand({ Bucket: opts.bucket })).catch((err: Error) => {
            if (!/BucketAlready(OwnedByYou|Exists)/.test(err.name)) throw err;
          });
          process.stderr.write(`publish-model: created bucket ${opts.bucket}\n`);
        }
      }
      await s3.send(
        new PutObjectCommand({
          Bucket: opts.bucket,
          Key: key,
          Body: createReadStream(zipFile),
          ContentLength: size,
          ContentType: 'application/zip',
          Metadata: { sha256, task: gateway.task, model: name },
        }),
      );
      const head = await s3.send(new HeadObjectCommand({ Bucket: opts.bucket, Key: key }));
      if (head.ContentLength !== size) throw new PublishError(`uploaded ${size} bytes but s3://${opts.bucket}/${key} holds ${head.ContentLength}`);
      if (head.Metadata?.sha256 !== undefined && head.Metadata.sha256 !== sha256) throw new PublishError(`s3://${opts.bucket}/${key} reports sha256 ${head.Metadata.sha256}, expected ${sha256}`);
      process.stderr.write(`publish-model: uploaded ${size} bytes to ${entry.source}${opts.endpoint ? ` at ${opts.endpoint}` : ''}\n`);
    } finally {
      s3.destroy();
    }
    return entry;
  } finally {
    if (tmp && !opts.out) rmSync(tmp, { recursive: true, force: true });
  }
}

const USAGE = `usage: publish-model (--dir FOLDER [--gateway-json FILE] [--out FILE] | --zip FILE) --bucket BUCKET
         [--key KEY] [--name NAME] [--endpoint URL] [--region REGION] [--create-bucket]
         [--optional] [--default] [--dry-run]
Prints the models entry to paste into the gateway config, e.g.
  {"name":"qa-demo","source":"s3://models/qa-demo.zip","sha256":"…","required":true,"default":false}`;

export async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        dir: { type: 'string' },
        zip: { type: 'string' },
        'gateway-json': { type: 'string' },
        out: { type: 'string' },
        bucket: { type: 'string' },
        key: { type: 'string' },
        name: { type: 'string' },
        endpoint: { type: 'string' },
        region: { type: 'string' },
        'create-bucket': { type: 'boolean' },
        optional: { type: 'boolean' },
        default: { type: 'boolean' },
        'dry-run': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (err) {
    process.stderr.write(`publish-model: ${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  try {
    const entry = await publish({
      dir: values.dir,
      zip: values.zip,
      gatewayJson: values['gateway-json'],
      out: values.out,
      bucket: values.bucket ?? '',
      key: values.key,
      name: values.name,
      endpoint: values.endpoint,
      region: values.region,
      createBucket: values['create-bucket'],
      required: !values.optional,
      default: values.default ?? false,
      dryRun: values['dry-run'],
    });
    process.stdout.write(`${JSON.stringify(entry)}\n`);
    return 0;
  } catch (err) {
    const e = err as Error;
    process.stderr.write(`publish-model: ${e instanceof PublishError ? e.message : `${e.name}: ${e.message}`}\n`);
    return 1;
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then((code) => (process.exitCode = code));
}
