/**
 * Ingests a folder (or files) into a collection of a running gateway, with a progress bar and a summary.
 *
 *   npm run ingest -- --collection docs --dir ./my-docs [--url http://localhost:8080] [--create] [--embedding-model NAME]
 *   npm run ingest -- --collection docs notes.md faq.jsonl
 *
 * .txt and .md files are one document each (id: the path under --dir, metadata { path }); .json files hold
 * [documents] or { documents: [...] }; .jsonl files one document a line. Documents go in NDJSON requests of
 * --batch documents (each request is atomic: all of its documents or none). The key, where the gateway has
 * keys, comes from GATEWAY_API_KEY (a write key), never from the command line.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import cliProgress from 'cli-progress';

export interface IngestOptions {
  url: string;
  collection: string;
  files: { file: string; id: string }[];
  batch: number;
  key?: string;
  create?: boolean;
  embeddingModel?: string;
  /** Progress as documents are sent; a bar on a terminal, lines otherwise. */
  onProgress?: (done: number, total: number, chunks: number) => void;
}

export interface IngestSummary {
  documents: number;
  chunks: number;
  requests: number;
  seconds: number;
  failed: { batch: number; error: string }[];
}

const EXTENSIONS = ['.txt', '.md', '.json', '.jsonl'];

/** Files under `dir` with a supported extension, ids relative to it. */
export function listFiles(dir: string): { file: string; id: string }[] {
  const out: { file: string; id: string }[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const full = path.join(d, name);
      if (statSync(full).isDirectory()) walk(full);
      else if (EXTENSIONS.some((e) => name.toLowerCase().endsWith(e))) out.push({ file: full, id: path.relative(dir, full).split(path.sep).join('/') });
    }
  };
  walk(dir);
  return out;
}

/** The documents of one file, as the gateway's file upload reads them. */
export function documentsOf(f: { file: string; id: string }): Record<string, unknown>[] {
  const text = readFileSync(f.file, 'utf8');
  const lower = f.file.toLowerCase();
  if (lower.endsWith('.jsonl')) return text.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as Record<string, unknown>);
  if (lower.endsWith('.json')) {
    const parsed = JSON.parse(text) as unknown;
    const docs = Array.isArray(parsed) ? parsed : (parsed as { documents?: unknown }).documents;
    if (!Array.isArray(docs)) throw new Error(`${f.file} must hold [documents] or { "documents": [...] }`);
    return docs as Record<string, unknown>[];
  }
  return [{ id: f.id, text, metadata: { path: f.id } }];
}

export async function ingest(o: IngestOptions): Promise<IngestSummary> {
  const headers: Record<string, string> = o.key ? { authorization: `Bearer ${o.key}` } : {};
  const base = o.url.replace(/\/$/, '');
  const exists = await fetch(`${base}/v1/collections/${encodeURIComponent(o.collection)}`, { headers });
  if (exists.status === 404) {
    if (!o.create) throw new Error(`no collection "${o.collection}" at ${o.url}; pass --create to create it`);
    const made = await fetch(`${base}/v1/collections`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify({ name: o.collection, ...(o.embeddingModel ? { embedding_model: o.embeddingModel } : {}) }) });
    if (made.status !== 201) throw new Error(`cannot create "${o.collection}": ${made.status} ${await made.text()}`);
  } else if (exists.status !== 200) throw new Error(`${o.url}: ${exists.status} ${await exists.text()}`);
  const docs = o.files.flatMap(documentsOf);
  const t0 = performance.now();
  const summary: IngestSummary = { documents: 0, chunks: 0, requests: 0, seconds: 0, failed: [] };
  for (let i = 0; i < docs.length; i += o.batch) {
    const part = docs.slice(i, i + o.batch);
    const res = await fetch(`${base}/v1/collections/${encodeURIComponent(o.collection)}/documents`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/x-ndjson' },
      body: `${part.map((d) => JSON.stringify(d)).join('\n')}\n`,
    });
    summary.requests++;
    const body = (await res.json().catch(() => ({}))) as { ingested?: number; chunks?: number; error?: { message?: string } };
    if (res.status === 200) {
      summary.documents += body.ingested ?? 0;
      summary.chunks += body.chunks ?? 0;
    } else summary.failed.push({ batch: i / o.batch, error: `${res.status} ${body.error?.message ?? ''}` });
    o.onProgress?.(Math.min(i + o.batch, docs.length), docs.length, summary.chunks);
  }
  summary.seconds = (performance.now() - t0) / 1000;
  return summary;
}

const USAGE = 'usage: ingest --collection NAME (--dir DIR | FILE...) [--url URL] [--create] [--embedding-model NAME] [--batch N]';

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { collection: { type: 'string' }, dir: { type: 'string' }, url: { type: 'string' }, create: { type: 'boolean' }, 'embedding-model': { type: 'string' }, batch: { type: 'string' } },
    });
  } catch (err) {
    process.stderr.write(`ingest: ${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (!values.collection || (!values.dir && positionals.length === 0)) {
    process.stderr.write(`${USAGE}\n`);
    return 2;
  }
  const files = values.dir ? listFiles(values.dir) : positionals.map((f) => ({ file: f, id: path.basename(f) }));
  const tty = process.stderr.isTTY === true;
  const bar = tty ? new cliProgress.SingleBar({ format: 'ingesting [{bar}] {value}/{total} documents | {chunks} chunks | {eta_formatted} left', stream: process.stderr }, cliProgress.Presets.shades_classic) : undefined;
  let started = false;
  try {
    const s = await ingest({
      url: values.url ?? 'http://localhost:8080',
      collection: values.collection,
      files,
      batch: Number(values.batch ?? 100),
      key: process.env.GATEWAY_API_KEY,
      create: values.create,
      embeddingModel: values['embedding-model'],
      onProgress: (done, total, chunks) => {
        if (bar) {
          if (!started) bar.start(total, 0, { chunks: 0 });
          started = true;
          bar.update(done, { chunks });
        } else process.stderr.write(`ingest: ${done}/${total} documents, ${chunks} chunks\n`);
      },
    });
    bar?.stop();
    process.stdout.write(`${JSON.stringify({ collection: values.collection, files: files.length, ...s, chunks_per_second: Math.round(s.chunks / Math.max(s.seconds, 1e-3)) })}\n`);
    for (const f of s.failed) process.stderr.write(`ingest: request ${f.batch + 1} failed: ${f.error}\n`);
    return s.failed.length ? 1 : 0;
  } catch (err) {
    bar?.stop();
    process.stderr.write(`ingest: ${(err as Error).message}\n`);
    return 1;
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then((code) => (process.exitCode = code));
}
