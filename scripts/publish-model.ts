/**
 * Publishes a model to S3 for the gateway and prints the config entry to paste into the `models` list.
 *
 *   npm run publish-model -- --dir ./my-hf-export --bucket models [--key my-model.zip] [--endpoint http://minio:9000]
 *   npm run publish-model -- --zip models/qa-demo.zip --bucket models --endpoint http://127.0.0.1:9000 --create-bucket
 *
 * --dir packs a Hugging Face / Optimum / sentence-transformers export folder (every file the gateway reads:
 * config.json, tokenizer files, modules.json and the module configs, the ONNX graph) plus gateway.json where
 * there is one (or --gateway-json FILE; most exports need none) into a zip; --zip takes an existing one. The
 * zip is unpacked and read by the gateway's own manifest reader (so it accepts exactly the folders the gateway
 * boots), hashed (sha256), uploaded path-style, read back (size and sha256 metadata), and the entry
 * `{ name, source, sha256, required, default }` goes to stdout; progress goes to stderr. The name is --name,
 * else gateway.json's, else the folder's or zip's own. With --dry-run and no --bucket the source is the --out zip.
 * Packing is deterministic (sorted entries, fixed timestamps), so the same folder gives the same sha256
 * and a gateway that already holds it skips the download.
 * Credentials come only from the standard AWS chain (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, profiles...).
 * --triton-repo DIR also lays the graph out as a Triton model (scripts/triton-repository.ts: DIR/<name>/config.pbtxt and
 * DIR/<name>/1/model.onnx); the entry printed then names the Triton server (--triton-url) as the model's backend, and
 * no --bucket is needed (the source is the zip itself).
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, lstatSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import yazl from 'yazl';
import { CreateBucketCommand, HeadBucketCommand, HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { BootError } from '../src/errors.ts';
import type { ModelManifest } from '../src/store/manifest.ts';
import { PACKED_FILES } from '../src/store/model-files.ts';
import { readManifest } from '../src/store/read-manifest.ts';
import { unpackZip } from '../src/store/unpack.ts';
import { layoutTritonModel } from './triton-repository.ts';

/** Fixed entry time: the same files give the same zip bytes and so the same sha256. */
const FIXED_MTIME = new Date('2000-01-01T00:00:00Z');
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export class PublishError extends Error {
  override name = 'PublishError';
}

/** What the gateway will read from the model: its manifest, checked by the gateway's own code. */
export interface Checked {
  manifest: ModelManifest;
  /** gateway.json "name", when it has one. */
  declaredName?: string;
}

export interface ConfigEntry {
  name: string;
  source: string;
  sha256: string;
  required: boolean;
  default: boolean;
  backend?: { kind: 'kserve-v2'; url: string };
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

/**
 * Checks an unpacked model folder exactly as the gateway's boot reads it (src/store/read-manifest.ts): a folder
 * passes here if and only if the gateway can read its manifest. Errors name the file and the field.
 */
export async function checkFolder(dir: string, where: string): Promise<Checked> {
  let manifest: ModelManifest;
  try {
    manifest = await readManifest(dir, 'model');
  } catch (err) {
    const msg = err instanceof BootError ? err.message.replace(/^model "model" failed at loading: /, '') : (err as Error).message;
    throw new PublishError(`${where}: ${msg}`);
  }
  let declaredName: string | undefined;
  try {
    const g = JSON.parse(readFileSync(path.join(dir, 'gateway.json'), 'utf8')) as { name?: unknown };
    if (typeof g.name === 'string') declaredName = g.name;
  } catch {
    /* no gateway.json: nothing declared */
  }
  return { manifest, declaredName };
}

/** Unpacks a zip (one made here, or the user's) into a temporary folder and checks it as the gateway would. */
export async function inspectZip(file: string): Promise<Checked> {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'publish-check-'));
  try {
    await unpackZip(file, tmp, { maxEntries: 10_000, maxUncompressedBytes: 64 * 1024 ** 3, maxEntryBytes: 64 * 1024 ** 3 }).catch((err: unknown) => {
      throw new PublishError(`${file} is not a model zip the gateway can unpack: ${(err as Error).message}`);
    });
    return await checkFolder(tmp, file);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * Packs a Hugging Face / Optimum / sentence-transformers export folder into `outFile`: every file the gateway
 * reads (src/store/model-files.ts), gateway.json from --gateway-json FILE or the folder when there is one
 * (most exports need none). Returns the files packed and what the gateway will read from the zip.
 */
export async function packFolder(dir: string, outFile: string, gatewayJsonFile?: string): Promise<{ files: string[]; checked: Checked }> {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new PublishError(`--dir ${dir} is not a folder`);
  const all = listFiles(dir);
  const files = all.filter((f) => f !== 'gateway.json' && PACKED_FILES.some((re) => re.test(f))).sort();
  const gatewayPath = gatewayJsonFile ?? (all.includes('gateway.json') ? path.join(dir, 'gateway.json') : undefined);
  if (gatewayJsonFile && !existsSync(gatewayJsonFile)) throw new PublishError(`--gateway-json ${gatewayJsonFile} not found`);
  const skipped = all.filter((f) => f !== 'gateway.json' && !files.includes(f));
  if (skipped.length > 0) process.stderr.write(`publish-model: not packed (not read by the gateway): ${skipped.join(', ')}\n`);

  const zip = new yazl.ZipFile();
  if (gatewayPath) zip.addBuffer(readFileSync(gatewayPath), 'gateway.json', { mtime: FIXED_MTIME, mode: 0o100644 });
  for (const f of files) zip.addFile(path.join(dir, f), f, { mtime: FIXED_MTIME, mode: 0o100644 });
  zip.end();
  await pipeline(zip.outputStream, createWriteStream(outFile));
  const checked = await inspectZip(outFile).catch((err: unknown) => {
    throw err instanceof PublishError ? new PublishError(err.message.replace(outFile, dir)) : err;
  });
  return { files: [...(gatewayPath ? ['gateway.json'] : []), ...files], checked };
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
  /** Also lay the model out in this Triton model repository; the entry then gets a kserve-v2 backend. */
  tritonRepo?: string;
  /** The Triton server the gateway will call (with tritonRepo); http://triton:8000 by default. */
  tritonUrl?: string;
}

export async function publish(opts: PublishOptions): Promise<ConfigEntry> {
  if (Boolean(opts.dir) === Boolean(opts.zip)) throw new PublishError('give exactly one of --dir FOLDER or --zip FILE');
  const local = opts.dryRun || (opts.tritonRepo !== undefined && !opts.bucket);
  if (!opts.bucket && !local) throw new PublishError('--bucket is required');
  if (!opts.bucket && !opts.out && !opts.zip) throw new PublishError(`${opts.dryRun ? '--dry-run' : '--triton-repo'} without --bucket needs --out FILE (the entry then names that zip)`);
  let zipFile: string;
  let checked: Checked;
  let tmp: string | undefined;
  if (opts.dir) {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'publish-model-'));
    zipFile = opts.out ?? path.join(tmp, 'model.zip');
    const packed = await packFolder(opts.dir, zipFile, opts.gatewayJson);
    checked = packed.checked;
    process.stderr.write(`publish-model: packed ${packed.files.length} files into ${zipFile}\n`);
  } else {
    zipFile = opts.zip as string;
    if (!existsSync(zipFile)) throw new PublishError(`--zip ${zipFile} not found`);
    checked = await inspectZip(zipFile);
  }
  try {
    const sha256 = await sha256File(zipFile);
    const size = statSync(zipFile).size;
    const fromPath = path.basename(opts.dir ? path.resolve(opts.dir) : zipFile).replace(/\.zip$/i, '');
    const name = opts.name ?? checked.declaredName ?? fromPath;
    if (!NAME_RE.test(name)) throw new PublishError(`model name ${JSON.stringify(name)} must match ${NAME_RE}; pass --name`);
    const key = opts.key ?? `${name}.zip`;
    const source = opts.bucket ? `s3://${opts.bucket}/${key}` : path.resolve(opts.out ?? zipFile);
    const entry: ConfigEntry = { name, source, sha256, required: opts.required ?? true, default: opts.default ?? false };
    process.stderr.write(`publish-model: ${name} is a ${checked.manifest.task} model, max_length ${checked.manifest.maxLength}${checked.manifest.pooling ? `, ${checked.manifest.pooling} pooling` : ''}\n`);
    if (opts.tritonRepo !== undefined) {
      const laid = await layoutTritonModel(zipFile, opts.tritonRepo, { name });
      entry.backend = { kind: 'kserve-v2', url: opts.tritonUrl ?? 'http://triton:8000' };
      process.stderr.write(`publish-model: laid out ${laid.config} and ${laid.onnx}\n`);
    }
    if (local) return entry;

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
          Metadata: { sha256, task: checked.manifest.task, model: name },
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
         [--optional] [--default] [--dry-run] [--triton-repo DIR [--triton-url URL]]
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
        'triton-repo': { type: 'string' },
        'triton-url': { type: 'string' },
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
      tritonRepo: values['triton-repo'],
      tritonUrl: values['triton-url'],
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
