import { Piscina } from 'piscina';
import { GatewayError } from '../errors.ts';
import type { EncodedWindow, TextTokenizer, TokenIds } from './tokenizer.ts';
import type { TokenizeResult, TokenizeTask } from './tokenize-worker.ts';

const ENTRY = new URL('./tokenize-worker-entry.mjs', import.meta.url).href;

/**
 * Where tokenization runs. Short inputs stay on the event loop (a worker round trip would cost more than
 * the ~60 µs they take); inputs over `inlineMaxChars` go to a small piscina pool so a long QA context or
 * essay never stalls other requests.
 */
export class TokenizePool {
  private readonly pool: Piscina;

  constructor(readonly opts: { threads: number; inlineMaxChars: number }) {
    this.pool = new Piscina({ filename: ENTRY, minThreads: opts.threads, maxThreads: opts.threads, idleTimeout: 60_000 });
  }

  async run(task: TokenizeTask): Promise<EncodedWindow | EncodedWindow[] | TokenIds | Int32Array> {
    const res = (await this.pool.run(task)) as TokenizeResult;
    if ('error' in res) throw new GatewayError(res.error.code, res.error.message, { details: res.error.details });
    return res.ok;
  }

  async close(): Promise<void> {
    await this.pool.destroy();
  }
}

/** A model's tokenizer, with the calls of TextTokenizer that the services use, that sends long inputs to the pool. */
export class ModelTokenizer {
  constructor(
    private readonly local: TextTokenizer,
    private readonly path: string,
    private readonly pool: TokenizePool,
  ) {}

  get maxLength(): number {
    return this.local.maxLength;
  }

  private inline(chars: number): boolean {
    return chars <= this.pool.opts.inlineMaxChars;
  }

  async encodeIds(text: string): Promise<TokenIds> {
    if (this.inline(text.length)) return this.local.encodeIds(text);
    return (await this.pool.run({ op: 'ids', path: this.path, maxLength: this.maxLength, text })) as TokenIds;
  }

  /** The first window only: for callers that asked to cut long texts. */
  async encodeTruncated(text: string): Promise<EncodedWindow> {
    if (this.inline(text.length)) return this.local.encodeTruncated(text);
    return (await this.pool.run({ op: 'truncated', path: this.path, maxLength: this.maxLength, text })) as EncodedWindow;
  }

  async encodeWindows(text: string, opts: { stride: number }): Promise<EncodedWindow[]> {
    if (this.inline(text.length)) return this.local.encodeWindows(text, opts);
    return (await this.pool.run({ op: 'windows', path: this.path, maxLength: this.maxLength, text, stride: opts.stride })) as EncodedWindow[];
  }

  /** Content-token offsets of a whole text (documents to chunk: long, so mostly off the event loop). */
  async tokenOffsets(text: string): Promise<Int32Array> {
    if (this.inline(text.length)) return this.local.tokenOffsets(text);
    return (await this.pool.run({ op: 'offsets', path: this.path, maxLength: this.maxLength, text })) as Int32Array;
  }

  async encodePairIds(first: string, second: string, opts: { truncate?: boolean; names: [string, string] }): Promise<TokenIds> {
    if (this.inline(first.length + second.length)) return this.local.encodePairIds(first, second, opts);
    return (await this.pool.run({ op: 'pairIds', path: this.path, maxLength: this.maxLength, first, second, truncate: opts.truncate ?? false, names: opts.names })) as TokenIds;
  }

  async encodePairWindows(question: string, context: string, opts: { stride: number }): Promise<EncodedWindow[]> {
    if (this.inline(question.length + context.length)) return this.local.encodePairWindows(question, context, opts);
    return (await this.pool.run({ op: 'pairWindows', path: this.path, maxLength: this.maxLength, question, context, stride: opts.stride })) as EncodedWindow[];
  }
}
