/**
 * Feedback in an append-only JSON-lines journal: each record is one write of one line followed by fdatasync,
 * and the append resolves only after both, so a 201 means the record is on disk. Appends are serialized. A line
 * torn by a crash mid-write (the only place one can be) is skipped when read back, and the next append starts on
 * a fresh line.
 */
import { mkdir, open, readFile, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { FeedbackRecord, FeedbackStore } from '../types.ts';

export class JournalStore implements FeedbackStore {
  readonly kind = 'journal' as const;
  readonly file: string;
  private fh?: FileHandle;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(dir: string) {
    this.file = path.resolve(dir, 'feedback.jsonl');
  }

  async open(): Promise<void> {
    await mkdir(path.dirname(this.file), { recursive: true });
    this.fh = await open(this.file, 'a+');
    const { size } = await this.fh.stat();
    if (size > 0) {
      // After a crash mid-line, start the next record on a line of its own.
      const last = Buffer.alloc(1);
      await this.fh.read(last, 0, 1, size - 1);
      if (last[0] !== 0x0a) await this.fh.write('\n');
    }
  }

  async close(): Promise<void> {
    await this.queue.catch(() => undefined);
    await this.fh?.close();
  }

  append(r: FeedbackRecord): Promise<void> {
    const line = `${JSON.stringify(r)}\n`;
    const run = this.queue.then(async () => {
      await this.fh!.write(line);
      await this.fh!.datasync();
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  async all(): Promise<FeedbackRecord[]> {
    await this.queue.catch(() => undefined);
    const text = await readFile(this.file, 'utf8').catch(() => '');
    const out: FeedbackRecord[] = [];
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      try {
        out.push(JSON.parse(line) as FeedbackRecord);
      } catch {
        // a line torn by a crash: it was never acknowledged
      }
    }
    return out;
  }
}
