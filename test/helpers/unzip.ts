import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import yauzl from 'yauzl';

/** The files of a (trusted, test-owned) zip, by name. */
export async function readZip(path: string): Promise<Record<string, Buffer>> {
  const zip = await yauzl.openPromise(path, { lazyEntries: true });
  const files: Record<string, Buffer> = {};
  const entries = zip.eachEntry();
  for (let next = await entries.next(); !next.done; next = await entries.next()) {
    const entry = next.value;
    if (entry.fileName.endsWith('/')) continue;
    const chunks: Buffer[] = [];
    for await (const c of await zip.openReadStreamPromise(entry)) chunks.push(c as Buffer);
    files[entry.fileName] = Buffer.concat(chunks);
  }
  zip.close();
  return files;
}

/** Unpacks a test-owned zip into dir, optionally renaming entries (e.g. model.onnx → onnx/model.onnx). */
export async function unzipTo(path: string, dir: string, rename: Record<string, string> = {}): Promise<void> {
  for (const [name, data] of Object.entries(await readZip(path))) {
    const target = join(dir, rename[name] ?? name);
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, data);
  }
}
