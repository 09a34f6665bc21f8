/**
 * The one place that tokenizes: a thin wrapper over `@anush008/tokenizers` (Hugging Face's Rust
 * tokenizers) that returns plain arrays with offsets in JavaScript string indices, and splits long
 * inputs into overlapping windows that fit the model.
 *
 * Two facts about the binding shape this file:
 * - Offsets come from `encode_char_offsets`: they count Unicode scalar values (code points) of the
 *   original string, not bytes and not UTF-16 code units. JavaScript strings index UTF-16 code
 *   units, so every offset is mapped through a per-string table; without it an emoji or any astral
 *   character before an answer shifts the answer by one.
 * - Truncation and padding are mutable state on the shared native tokenizer, read by every encode
 *   in flight. This wrapper never sets them: it encodes the whole input once and cuts the windows
 *   itself, exactly as the Rust `Encoding::truncate` would (same window starts, same stride), so
 *   concurrent calls with different strides cannot see each other's settings, and a stride that the
 *   native code would reject with a panic is caught here with a clear error instead.
 */
import { readFile } from 'node:fs/promises';
import { Tokenizer, type Encoding } from '@anush008/tokenizers';
import { GatewayError } from '../errors.ts';

export interface EncodedWindow {
  ids: number[];
  typeIds: number[];
  attentionMask: number[];
  /**
   * [start, end) in UTF-16 code units of the ORIGINAL string of that token's sequence (JS string
   * indices, so `text.slice(start, end)` works with emoji, CJK, accents). [0, 0] for special tokens.
   */
  offsets: [number, number][];
  /** 0 = first sequence, 1 = second, null = special token. */
  sequenceIds: (number | null)[];
  /**
   * Index of the pre-tokenizer word each token belongs to, within its own sequence (null for
   * special tokens). Lets QA widen an answer to whole words, as the Hugging Face pipeline does.
   */
  wordIds: (number | null)[];
}

/** A whole text's ids and token types, without offsets. */
export interface TokenIds {
  ids: number[];
  typeIds: number[];
}

/**
 * Maps code-point indices (what the binding reports) to UTF-16 indices (what JS strings use).
 * Entry i is the UTF-16 index of the i-th code point; the last entry is `text.length`.
 * A lone surrogate counts as one code point on both sides (the binding receives it as U+FFFD).
 */
export function codePointToUtf16Table(text: string): Uint32Array {
  const table = new Uint32Array(text.length + 1);
  let cp = 0;
  for (let i = 0; i < text.length; cp++) {
    table[cp] = i;
    const c = text.charCodeAt(i);
    const isPair = c >= 0xd800 && c <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00;
    i += isPair ? 2 : 1;
  }
  table[cp] = text.length;
  return table.subarray(0, cp + 1);
}

function validateStride(stride: number): void {
  if (!Number.isInteger(stride) || stride < 0) {
    throw new GatewayError('invalid_request', `stride must be a non-negative integer, got ${stride}`);
  }
}

/**
 * Window [start, stop) ranges over `n` tokens, as Rust `Encoding::truncate` lays them out:
 * starts every `budget - stride` tokens, the last window ends at `n`.
 */
export function windowRanges(n: number, budget: number, stride: number): [number, number][] {
  if (n <= budget) return [[0, n]];
  const step = budget - stride;
  const ranges: [number, number][] = [];
  for (let start = 0; ; start += step) {
    const stop = Math.min(start + budget, n);
    ranges.push([start, stop]);
    if (stop === n) return ranges;
  }
}

export class TextTokenizer {
  private constructor(
    private readonly native: Tokenizer,
    readonly maxLength: number,
  ) {}

  static async fromFile(path: string, opts: { maxLength: number }): Promise<TextTokenizer> {
    if (!Number.isInteger(opts.maxLength) || opts.maxLength < 2) {
      throw new Error(`tokenizer ${path}: maxLength must be an integer ≥ 2, got ${opts.maxLength}`);
    }
    // Read asynchronously: the binding's own fromFile is a synchronous read on the event loop.
    const json = await readFile(path, 'utf8');
    let native: Tokenizer;
    try {
      native = Tokenizer.fromString(json);
    } catch (err) {
      throw new Error(`tokenizer ${path} cannot be loaded: ${(err as Error).message}`, { cause: err });
    }
    // A tokenizer.json may carry its own truncation/padding (e.g. 512 from the hub): that would
    // silently cut inputs, which is exactly what the windows exist to avoid.
    native.disableTruncation();
    native.disablePadding();
    return new TextTokenizer(native, opts.maxLength);
  }

  /** Whole text, no truncation; callers decide (e.g. count tokens, refuse with 413). */
  async encode(text: string): Promise<EncodedWindow> {
    const enc = readEncoding(await this.native.encode(text));
    return toWindow(enc, [codePointToUtf16Table(text)], 0, enc.ids.length, 0, 0);
  }

  /**
   * Ids and token types only, whole text, no truncation: what a model that reads one window per text is
   * fed. Reads two of the encoding's six arrays across N-API and builds no offset table (embeddings,
   * classification: ~2x cheaper than `encode` on a short sentence).
   */
  async encodeIds(text: string): Promise<TokenIds> {
    const enc = await this.native.encode(text);
    return { ids: enc.getIds(), typeIds: enc.getTypeIds() };
  }

  /**
   * A text pair in the tokenizer's pair template (cross-encoders, pair classifiers), ids and token types only.
   * Over the window it is cut longest-first, exactly as the Rust tokenizer's LongestFirst truncation cuts it
   * for sentence-transformers' CrossEncoder, but only with `truncate`; otherwise `too_large` names both
   * lengths (`names` are the two fields, for the message).
   */
  async encodePairIds(first: string, second: string, opts: { truncate?: boolean; names: [string, string] }): Promise<TokenIds> {
    const enc = await this.native.encode(first, second);
    const ids = enc.getIds();
    if (ids.length <= this.maxLength) return { ids, typeIds: enc.getTypeIds() };
    const typeIds = enc.getTypeIds();
    const seqIds = enc.getSequenceIds();
    let n1 = 0;
    let n2 = 0;
    for (const s of seqIds) {
      if (s === 0) n1++;
      else if (s === 1) n2++;
    }
    const fixed = ids.length - n1 - n2;
    const budget = this.maxLength - fixed;
    if (!opts.truncate) {
      const [a, b] = opts.names;
      throw new GatewayError(
        'too_large',
        `${a} (${n1} tokens) and ${b} (${n2} tokens) make ${ids.length} tokens with the special tokens; the model takes at most ${this.maxLength}. Shorten them or pass "truncate": true to cut the longer one first.`,
        { details: { fields: [a, b], tokens: [n1, n2], special_tokens: fixed, total: ids.length, max_tokens: this.maxLength } },
      );
    }
    if (budget < 2) throw new GatewayError('unprocessable_input', `the tokenizer's special tokens leave no room for a pair in the model's ${this.maxLength}-token window`);
    const [k1, k2] = longestFirst(n1, n2, budget);
    const out: TokenIds = { ids: [], typeIds: [] };
    let c1 = 0;
    let c2 = 0;
    for (let i = 0; i < ids.length; i++) {
      const s = seqIds[i];
      if (s === 0 && c1++ >= k1) continue;
      if (s === 1 && c2++ >= k2) continue;
      out.ids.push(ids[i]);
      out.typeIds.push(typeIds[i]);
    }
    return out;
  }

  /**
   * [start, end) of every content token of `text` (no special tokens), flat, in UTF-16 indices: what chunking
   * cuts documents on.
   */
  async tokenOffsets(text: string): Promise<Int32Array> {
    const enc = await this.native.encode(text);
    const offsets = enc.getOffsets();
    const seq = enc.getSequenceIds();
    const table = codePointToUtf16Table(text);
    const last = table.length - 1;
    const out = new Int32Array(offsets.length * 2);
    let n = 0;
    for (let i = 0; i < offsets.length; i++) {
      if (seq[i] !== 0) continue;
      const [a, b] = offsets[i];
      if (b <= a) continue;
      out[n++] = table[Math.min(a, last)];
      out[n++] = table[Math.min(b, last)];
    }
    return out.slice(0, n);
  }

  /** Tokens the model would be fed for `text` in one piece, special tokens included. */
  async countTokens(text: string): Promise<number> {
    return (await this.native.encode(text)).getLength();
  }

  /**
   * A long single text in overlapping windows, each ≤ maxLength tokens including specials,
   * together covering every token; consecutive windows share `stride` tokens (fewer when the
   * window is too small for that stride, see `effectiveStride`).
   */
  async encodeWindows(text: string, opts: { stride: number }): Promise<EncodedWindow[]> {
    validateStride(opts.stride);
    const enc = readEncoding(await this.native.encode(text));
    return this.split(enc, [codePointToUtf16Table(text)], 0, opts.stride, () => {
      throw new GatewayError('unprocessable_input', `the tokenizer's special tokens alone exceed the model's ${this.maxLength}-token window`);
    });
  }

  /**
   * The first window of `encodeWindows` only: the text cut to maxLength tokens with the template's
   * special tokens kept in place (for callers that were explicitly asked to truncate).
   */
  async encodeTruncated(text: string): Promise<EncodedWindow> {
    const enc = readEncoding(await this.native.encode(text));
    return this.split(enc, [codePointToUtf16Table(text)], 0, 0, () => {
      throw new GatewayError('unprocessable_input', `the tokenizer's special tokens alone exceed the model's ${this.maxLength}-token window`);
    }, 1)[0];
  }

  /**
   * (question, context) pairs: the question kept whole, the context split into overlapping windows
   * (what OnlySecond truncation with a stride produces), each ≤ maxLength tokens. Throws
   * GatewayError `too_large` when the question leaves no room for any context token.
   */
  async encodePairWindows(question: string, context: string, opts: { stride: number }): Promise<EncodedWindow[]> {
    validateStride(opts.stride);
    const enc = readEncoding(await this.native.encode(question, context));
    const tables = [codePointToUtf16Table(question), codePointToUtf16Table(context)];
    return this.split(enc, tables, 1, opts.stride, (fixed) => {
      throw new GatewayError(
        'too_large',
        `question too long: with special tokens it takes ${fixed} of the model's ${this.maxLength} tokens and leaves no room for the context`,
        { details: { limit: this.maxLength, tokens: fixed } },
      );
    });
  }

  /**
   * Cuts `enc` into windows over the tokens of sequence `seq`; everything else (the question,
   * the special tokens) is repeated in every window, as the post-processor would lay it out.
   */
  private split(
    enc: RawEncoding,
    tables: Uint32Array[],
    seq: number,
    stride: number,
    noRoom: (fixedTokens: number) => never,
    maxWindows = Infinity,
  ): EncodedWindow[] {
    const { sequenceIds } = enc;
    let first = -1;
    let last = -1;
    for (let i = 0; i < sequenceIds.length; i++) {
      if (sequenceIds[i] === seq) {
        if (first < 0) first = i;
        last = i;
      }
    }
    const length = enc.ids.length;
    const n = first < 0 ? 0 : last - first + 1;
    const fixed = length - n;
    const budget = this.maxLength - fixed;
    if (budget < 1) noRoom(fixed);
    if (n <= budget) return [toWindow(enc, tables, 0, length, 0, 0)];
    const ranges = windowRanges(n, budget, effectiveStride(stride, budget)).slice(0, maxWindows);
    return ranges.map(([a, b]) => toWindow(enc, tables, first + a, first + b, first, length - last - 1));
  }
}

/**
 * The stride actually used for a window of `budget` free tokens. A stride must be smaller than the
 * window or the windows would never advance (the native tokenizer panics there); when a long
 * question squeezes the window that far, half the window overlaps instead.
 */
export function effectiveStride(stride: number, budget: number): number {
  return stride < budget ? stride : Math.floor(budget / 2);
}

/**
 * How many tokens of each sequence LongestFirst truncation keeps within `budget` (the Rust tokenizer's rule:
 * the shorter one whole when it fits in half, else both cut to halves).
 */
export function longestFirst(n1: number, n2: number, budget: number): [number, number] {
  if (n1 + n2 <= budget) return [n1, n2];
  const swap = n1 > n2;
  let short = swap ? n2 : n1;
  let long = swap ? n1 : n2;
  long = short > budget ? short : Math.max(short, budget - short);
  if (short + long > budget) {
    short = Math.floor(budget / 2);
    long = short + (budget % 2);
  }
  // never keep more than a sequence has
  const keep1 = Math.min(swap ? long : short, n1);
  const keep2 = Math.min(swap ? short : long, n2);
  return [keep1, keep2];
}

/**
 * The encoding's arrays, read once: every getter copies the whole encoding across N-API (~20 µs for 300 tokens,
 * offsets ~90). The attention mask is not read: padding is off, so it is 1 for every token.
 */
interface RawEncoding {
  ids: number[];
  typeIds: number[];
  offsets: number[][];
  sequenceIds: (number | null | undefined)[];
  wordIds: (number | null | undefined)[];
}

function readEncoding(enc: Encoding): RawEncoding {
  return {
    ids: enc.getIds(),
    typeIds: enc.getTypeIds(),
    offsets: enc.getOffsets(),
    sequenceIds: enc.getSequenceIds(),
    wordIds: enc.getWordIds(),
  };
}

/**
 * One window: the `prefix` tokens before the cut sequence, tokens [from, to), and the `suffix`
 * tokens after it. With prefix = suffix = 0 and [0, length) it is the whole encoding.
 */
function toWindow(enc: RawEncoding, tables: Uint32Array[], from: number, to: number, prefix: number, suffix: number): EncodedWindow {
  const { ids, typeIds, offsets, sequenceIds, wordIds } = enc;
  const length = ids.length;
  const picks: number[] = [];
  for (let i = 0; i < prefix; i++) picks.push(i);
  for (let i = from; i < to; i++) picks.push(i);
  for (let i = length - suffix; i < length; i++) picks.push(i);

  const out: EncodedWindow = { ids: [], typeIds: [], attentionMask: [], offsets: [], sequenceIds: [], wordIds: [] };
  for (const i of picks) {
    const s = sequenceIds[i] ?? null;
    out.ids.push(ids[i]);
    out.typeIds.push(typeIds[i]);
    out.attentionMask.push(1);
    out.sequenceIds.push(s);
    out.wordIds.push(s === null ? null : (wordIds[i] ?? null));
    if (s === null) {
      out.offsets.push([0, 0]);
    } else {
      const table = tables[s];
      const [a, b] = offsets[i];
      // Clamp defensively: a table shorter than an offset would mean the binding counted differently.
      const last = table.length - 1;
      out.offsets.push([table[Math.min(a, last)], table[Math.min(b, last)]]);
    }
  }
  return out;
}
