import { readFile, writeFile, mkdtemp as mkdtempRaw, readdir, mkdir, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Tokenizer, bertNormalizer, type Encoding, type TruncationStrategy } from '@anush008/tokenizers';
import { AutoTokenizer, BertTokenizer, env, type PreTrainedTokenizer } from '@huggingface/transformers';
import yauzl from 'yauzl';
import { TextTokenizer, codePointToUtf16Table, effectiveStride, windowRanges, type EncodedWindow } from '../../src/inference/tokenizer.ts';
import { windowsCoverContext } from '../../src/tasks/qa.ts';
import { GatewayError } from '../../src/errors.ts';
import { makeTokenizerFixture, TOKENIZER_CONFIG } from '../fixtures/make-tokenizer.ts';
import { unicodeText } from '../fixtures/arbitraries.ts';

env.allowRemoteModels = false;

let tokenizerPath: string;
let vocab: Tokenizer;

/** Temp dirs made by this file, removed at the end. */
const tempDirs: string[] = [];
async function mkdtemp(prefix: string): Promise<string> {
  const dir = await mkdtempRaw(prefix);
  tempDirs.push(dir);
  return dir;
}
afterAll(() => Promise.all(tempDirs.map((d) => rm(d, { recursive: true, force: true }))));
const normalizer = bertNormalizer({});

beforeAll(async () => {
  ({ tokenizerPath } = await makeTokenizerFixture(await mkdtemp(join(tmpdir(), 'tok-fixture-'))));
  vocab = Tokenizer.fromFile(tokenizerPath);
});

const load = (maxLength: number) => TextTokenizer.fromFile(tokenizerPath, { maxLength });

/** What the normalizer makes of `text`, without the spaces it pads around CJK characters. */
const norm = (text: string) => normalizer.normalizeString(text).replace(/\s+/g, '');

/** Every non-special, non-[UNK] token must be the normalized text at its offsets. */
function expectOffsetsMatchTokens(w: EncodedWindow, texts: string[]): void {
  w.ids.forEach((id, i) => {
    const seq = w.sequenceIds[i];
    if (seq === null) {
      expect(w.offsets[i]).toEqual([0, 0]);
      return;
    }
    const [a, b] = w.offsets[i];
    expect(a).toBeGreaterThanOrEqual(0);
    expect(b).toBeLessThanOrEqual(texts[seq].length);
    expect(a).toBeLessThan(b);
    const token = vocab.idToToken(id)!;
    if (token === '[UNK]') return;
    expect(norm(texts[seq].slice(a, b))).toBe(token.replace(/^##/, ''));
  });
}

/** The binding's own windows: OnlySecond (pairs) or LongestFirst (single) truncation with a stride. */
async function nativeWindows(maxLength: number, stride: number, a: string, b?: string): Promise<Encoding[]> {
  const native = Tokenizer.fromFile(tokenizerPath);
  native.setTruncation(maxLength, { strategy: (b === undefined ? 'LongestFirst' : 'OnlySecond') as TruncationStrategy, stride });
  const enc = await native.encode(a, b ?? null);
  return [enc, ...enc.getOverflowing()];
}

describe('codePointToUtf16Table', () => {
  it.each([
    ['', [0]],
    ['abc', [0, 1, 2, 3]],
    ['a😀b', [0, 1, 3, 4]],
    ['😀😀', [0, 2, 4]],
    ['é', [0, 1]],
    ['e\u0301', [0, 1, 2]],
    // A lone surrogate reaches Rust as one U+FFFD: one code point, one code unit.
    ['a\ud800b', [0, 1, 2, 3]],
    ['\udc00\ud800', [0, 1, 2]],
  ])('%j', (text, expected) => {
    expect([...codePointToUtf16Table(text)]).toEqual(expected);
  });
});

describe('windowRanges / effectiveStride', () => {
  it.each([
    [5, 10, 2, [[0, 5]]],
    [10, 10, 2, [[0, 10]]],
    [11, 10, 2, [[0, 10], [8, 11]]],
    [20, 10, 0, [[0, 10], [10, 20]]],
    [21, 10, 3, [[0, 10], [7, 17], [14, 21]]],
    [0, 4, 1, [[0, 0]]],
  ])('n=%i budget=%i stride=%i', (n, budget, stride, expected) => {
    expect(windowRanges(n, budget, stride)).toEqual(expected);
  });

  it('keeps a stride smaller than the window, halves the window otherwise', () => {
    expect(effectiveStride(3, 10)).toBe(3);
    expect(effectiveStride(9, 10)).toBe(9);
    expect(effectiveStride(10, 10)).toBe(5);
    expect(effectiveStride(128, 1)).toBe(0);
  });
});

describe('TextTokenizer.encode', () => {
  it.each([
    ['plain', 'The licensing of software'],
    ['accents', 'Héllo wörld, naïve café'],
    ['decomposed accents', 'e\u0301cole and cafe\u0301 software'],
    ['emoji before words', '😀 software 👍🏽 license'],
    ['CJK', '日本語 software 中文'],
    ['tabs and repeated spaces', 'the\t\tlicense   of\n\nsoftware'],
    ['NBSP and control characters', 'the\u00a0license\u0007of\u0000software\u200b.'],
    ['only specials', ''],
    ['only whitespace', '  \t\n '],
  ])('offsets index the original string: %s', async (_name, text) => {
    const tok = await load(512);
    const w = await tok.encode(text);
    expectOffsetsMatchTokens(w, [text]);
    expect(w.ids.length).toBe(w.typeIds.length);
    expect(w.attentionMask.every((m) => m === 1)).toBe(true);
    expect(w.sequenceIds[0]).toBeNull();
    expect(w.sequenceIds.at(-1)).toBeNull();
  });

  it('maps emoji offsets to UTF-16 (the binding counts code points)', async () => {
    const tok = await load(512);
    const text = '😀😀 software';
    const w = await tok.encode(text);
    const i = w.ids.indexOf(vocab.tokenToId('software')!);
    expect(w.offsets[i]).toEqual([5, 13]);
    expect(text.slice(...w.offsets[i])).toBe('software');
  });

  it('never truncates, even past maxLength, and counts specials', async () => {
    const tok = await load(8);
    const text = 'the license of this software is free software '.repeat(10);
    const w = await tok.encode(text);
    expect(w.ids.length).toBeGreaterThan(60);
    expect(await tok.countTokens(text)).toBe(w.ids.length);
    expect(await tok.countTokens('')).toBe(2);
  });

  it('ignores truncation and padding saved in tokenizer.json', async () => {
    const json = JSON.parse(await readFile(tokenizerPath, 'utf8'));
    json.truncation = { direction: 'Right', max_length: 4, strategy: 'LongestFirst', stride: 0 };
    json.padding = { strategy: { Fixed: 64 }, direction: 'Right', pad_to_multiple_of: null, pad_id: 0, pad_type_id: 0, pad_token: '[PAD]' };
    const dir = await mkdtemp(join(tmpdir(), 'tok-trunc-'));
    await writeFile(join(dir, 'tokenizer.json'), JSON.stringify(json));
    const tok = await TextTokenizer.fromFile(join(dir, 'tokenizer.json'), { maxLength: 512 });
    const w = await tok.encode('the license of this software');
    expect(w.ids.length).toBe(7);
  });

  it('fails to load with the path in the message', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tok-bad-'));
    await writeFile(join(dir, 'tokenizer.json'), '{"not": "a tokenizer"}');
    await expect(TextTokenizer.fromFile(join(dir, 'tokenizer.json'), { maxLength: 16 })).rejects.toThrow(/tok-bad-.*tokenizer\.json/);
    await expect(TextTokenizer.fromFile(join(dir, 'missing.json'), { maxLength: 16 })).rejects.toThrow(/missing\.json/);
    await expect(TextTokenizer.fromFile(tokenizerPath, { maxLength: 1 })).rejects.toThrow(/maxLength/);
  });
});

describe('token ids equal transformers.js', () => {
  const inputs = [
    'The licensing of software',
    'Héllo WÖRLD, naïve café; résumé!',
    'e\u0301cole',
    'the\t\tlicense   of\n\nsoftware',
    '日本語 software 中文 한국어',
    '😀 emoji 👍🏽 and ZWJ 👩‍👩‍👧',
    'NBSP\u00a0and\u2003em space, zero\u200bwidth',
    'control\u0007chars\u0000here\ufffd',
    'numbers 3.14159 and 1,000,000 and dates 2026-11-22',
    "punctuation: (a) [b] {c} <d> \"e\" 'f' --- ... ?!",
    'antidisestablishmentarianism pneumonoultramicroscopic',
    'GNU GENERAL PUBLIC LICENSE Version 3, 29 June 2007',
    '',
    '   ',
  ];
  let hf: BertTokenizer;
  beforeAll(async () => {
    hf = new BertTokenizer(JSON.parse(await readFile(tokenizerPath, 'utf8')), TOKENIZER_CONFIG);
  });

  it.each(inputs)('single %j', async (text) => {
    const tok = await load(4096);
    const full = await tok.encode(text);
    expect(full.ids).toEqual(hf.encode(text));
    // The ids-only path (embeddings, classification) feeds the model exactly what the full encoding holds.
    expect(await tok.encodeIds(text)).toEqual({ ids: full.ids, typeIds: full.typeIds });
  });

  it.each(inputs.slice(0, 8))('pair (question, %j)', async (text) => {
    const tok = await load(4096);
    const [w] = await tok.encodePairWindows('What is the licence?', text, { stride: 16 });
    const ref = hf('What is the licence?', { text_pair: text, return_tensor: false }) as unknown as {
      input_ids: number[];
      token_type_ids: number[];
    };
    expect(w.ids).toEqual(ref.input_ids);
    expect(w.typeIds).toEqual(ref.token_type_ids);
  });

  it('property: random text over accents, emoji, CJK, whitespace and control characters', async () => {
    const tok = await load(1 << 20);
    await fc.assert(
      fc.asyncProperty(unicodeText({ randomGraphemes: false }), async (text) => {
        expect((await tok.encode(text)).ids).toEqual(hf.encode(text));
      }),
      { numRuns: 300 },
    );
  });

  // Known divergences, all in rare scripts; the binding follows the BERT reference on the first.
  it('differs from transformers.js on astral CJK compatibility ideographs (transformers.js does not split them)', async () => {
    const tok = await load(64);
    const text = '\u{2F800}the';
    // BERT's _is_chinese_char includes U+2F800-U+2FA1F: the ideograph is its own word.
    expect((await tok.encode(text)).ids).toEqual([2, vocab.tokenToId('[UNK]'), vocab.tokenToId('the'), 3]);
    expect(hf.encode(text)).toEqual([2, vocab.tokenToId('[UNK]'), 3]);
  });

  it('differs from transformers.js on punctuation added in recent Unicode versions', async () => {
    const tok = await load(64);
    // U+2E4A (Unicode 11): punctuation to transformers.js's JS regex tables, a letter to the binding's.
    const text = '\u2E4Athe';
    expect((await tok.encode(text)).ids).toEqual([2, vocab.tokenToId('[UNK]'), 3]);
    expect(hf.encode(text)).toEqual([2, vocab.tokenToId('[UNK]'), vocab.tokenToId('the'), 3]);
  });
});

describe('TextTokenizer.encodePairWindows', () => {
  const question = 'What does 😀 the licence say?';
  const context = 'Permission is hereby granted, 😀 free of charge, to any person obtaining a copy of this software and associated documentation files (the "Software"), to deal in the Software without restriction, including without limitation the rights to use, copy, modify, merge, publish, distribute, sublicense, and/or sell copies of the Software.';

  it('gives the same windows as the binding\'s OnlySecond truncation', async () => {
    for (const [maxLength, stride] of [[32, 8], [24, 0], [20, 5], [64, 16], [512, 128]]) {
      const tok = await load(maxLength);
      const ours = await tok.encodePairWindows(question, context, { stride });
      const native = await nativeWindows(maxLength, stride, question, context);
      expect(ours.map((w) => w.ids)).toEqual(native.map((e) => e.getIds()));
      expect(ours.map((w) => w.typeIds)).toEqual(native.map((e) => e.getTypeIds()));
      expect(ours.map((w) => w.sequenceIds)).toEqual(native.map((e) => e.getSequenceIds().map((s) => s ?? null)));
    }
  });

  it('keeps the question whole in every window and stays within maxLength', async () => {
    const tok = await load(24);
    const windows = await tok.encodePairWindows(question, context, { stride: 4 });
    expect(windows.length).toBeGreaterThan(5);
    const q = (w: EncodedWindow) => w.ids.filter((_, i) => w.sequenceIds[i] === 0);
    for (const w of windows) {
      expect(w.ids.length).toBeLessThanOrEqual(24);
      expect(q(w)).toEqual(q(windows[0]));
      expectOffsetsMatchTokens(w, [question, context]);
    }
    const full = await (await load(4096)).encodePairWindows(question, context, { stride: 4 });
    expect(full).toHaveLength(1);
    const all = full[0].offsets.filter((_, i) => full[0].sequenceIds[i] === 1);
    expect(windowsCoverContext(windows, all)).toBe(true);
    // Consecutive windows overlap by exactly the stride.
    const ctx = (w: EncodedWindow) => w.offsets.filter((_, i) => w.sequenceIds[i] === 1);
    for (let k = 1; k < windows.length; k++) {
      const prev = ctx(windows[k - 1]);
      expect(ctx(windows[k]).slice(0, 4)).toEqual(prev.slice(-4));
    }
  });

  it('refuses a question that leaves no room for the context, with too_large', async () => {
    const tok = await load(16);
    const long = 'what is the license of this software and why '.repeat(3);
    const err = await tok.encodePairWindows(long, context, { stride: 2 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GatewayError);
    expect((err as GatewayError).code).toBe('too_large');
    expect((err as GatewayError).message).toMatch(/question.*16/);
  });

  it('survives a stride at or above the room left by a long question (the binding would panic)', async () => {
    const tok = await load(16);
    // Question of 10 tokens + 3 specials leaves 3 context tokens per window; stride 8 cannot apply.
    const windows = await tok.encodePairWindows('the license of this software is free of charge', context, { stride: 8 });
    expect(windows.length).toBeGreaterThan(10);
    for (const w of windows) expect(w.ids.length).toBeLessThanOrEqual(16);
  });

  it('rejects a negative or fractional stride', async () => {
    const tok = await load(32);
    await expect(tok.encodePairWindows('q', 'c', { stride: -1 })).rejects.toThrow(GatewayError);
    await expect(tok.encodePairWindows('q', 'c', { stride: 1.5 })).rejects.toThrow(/stride/);
  });

  it('handles an empty or whitespace context as one window without context tokens', async () => {
    const tok = await load(32);
    for (const c of ['', ' \t ']) {
      const windows = await tok.encodePairWindows('what?', c, { stride: 4 });
      expect(windows).toHaveLength(1);
      expect(windows[0].sequenceIds.filter((s) => s === 1)).toHaveLength(0);
    }
  });

  it('gives each call its own windows when calls with different strides run concurrently', async () => {
    const tok = await load(24);
    const strides = [0, 2, 4, 6, 8, 10, 3, 5, 7, 1];
    const sequential: EncodedWindow[][] = [];
    for (const stride of strides) sequential.push(await tok.encodePairWindows(question, context, { stride }));
    const concurrent = await Promise.all(strides.map((stride) => tok.encodePairWindows(question, context, { stride })));
    expect(concurrent).toEqual(sequential);
    expect(new Set(sequential.map((w) => w.length)).size).toBeGreaterThan(1);
  });

  it('property: windows fit, cover every context token, offsets in bounds and exact', async () => {
    const full = await load(1 << 20);
    await fc.assert(
      fc.asyncProperty(
        unicodeText({ maxLength: 12 }),
        unicodeText({ maxLength: 400, loneSurrogates: true }),
        fc.integer({ min: 12, max: 64 }),
        fc.integer({ min: 0, max: 40 }),
        async (q, c, maxLength, stride) => {
          const tok = await load(maxLength);
          const qTokens = (await full.encode(q)).ids.length - 2;
          if (qTokens + 3 >= maxLength) {
            await expect(tok.encodePairWindows(q, c, { stride })).rejects.toThrow(GatewayError);
            return;
          }
          const windows = await tok.encodePairWindows(q, c, { stride });
          const [whole] = await full.encodePairWindows(q, c, { stride });
          const all = whole.offsets.filter((_, i) => whole.sequenceIds[i] === 1);
          expect(windowsCoverContext(windows, all)).toBe(true);
          for (const w of windows) {
            expect(w.ids.length).toBeLessThanOrEqual(maxLength);
            expectOffsetsMatchTokens(w, [q, c]);
          }
          // Same windows as the binding's own truncation whenever it accepts the stride.
          if (stride < maxLength - qTokens - 3) {
            const native = await nativeWindows(maxLength, stride, q, c);
            expect(windows.map((w) => w.ids)).toEqual(native.map((e) => e.getIds()));
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('TextTokenizer.encodeWindows', () => {
  const essay = 'Permission is hereby granted, free of charge, to any person obtaining a copy of this software. '.repeat(20);

  it('gives the same windows as the binding\'s truncation with a stride', async () => {
    for (const [maxLength, stride] of [[32, 8], [16, 0], [128, 32]]) {
      const tok = await load(maxLength);
      const ours = await tok.encodeWindows(essay, { stride });
      const native = await nativeWindows(maxLength, stride, essay);
      expect(ours.map((w) => w.ids)).toEqual(native.map((e) => e.getIds()));
    }
  });

  it('covers every token within maxLength; a short text is one window', async () => {
    const tok = await load(32);
    const windows = await tok.encodeWindows(essay, { stride: 8 });
    const whole = await tok.encode(essay);
    expect(windows.length).toBeGreaterThan(10);
    for (const w of windows) {
      expect(w.ids.length).toBeLessThanOrEqual(32);
      expect(w.ids[0]).toBe(whole.ids[0]);
      expect(w.ids.at(-1)).toBe(whole.ids.at(-1));
    }
    // Re-seat windows with sequence id 1 so the pair coverage check applies to a single text.
    const asContext = (w: EncodedWindow) => ({ offsets: w.offsets, sequenceIds: w.sequenceIds.map((s) => (s === 0 ? 1 : s)) });
    const all = whole.offsets.filter((_, i) => whole.sequenceIds[i] === 0);
    expect(windowsCoverContext(windows.map(asContext), all)).toBe(true);
    expect(await tok.encodeWindows('short essay', { stride: 8 })).toEqual([await tok.encode('short essay')]);
  });

  it('encodeTruncated is the first window, with the closing special token kept', async () => {
    const tok = await load(32);
    const [first] = await tok.encodeWindows(essay, { stride: 8 });
    const cut = await tok.encodeTruncated(essay);
    expect(cut).toEqual(first);
    expect(cut.ids).toHaveLength(32);
    expect(cut.ids.at(-1)).toBe(vocab.tokenToId('[SEP]'));
    expect(await tok.encodeTruncated('short essay')).toEqual(await tok.encode('short essay'));
  });
});

/** The tokenizer files of one model zip, read with yauzl (the store's own unpacking is tested elsewhere). */
async function tokenizerFilesOf(zipPath: string): Promise<Map<string, string>> {
  const zip = await yauzl.openPromise(zipPath, { lazyEntries: true });
  const wanted = /(^|\/)(tokenizer\.json|tokenizer_config\.json|gateway\.json)$/;
  const files = new Map<string, string>();
  await new Promise<void>((resolve, reject) => {
    zip.on('entry', (entry: yauzl.Entry) => {
      if (!wanted.test(entry.fileName)) return zip.readEntry();
      zip.openReadStream(entry, (err, stream) => {
        if (err) return reject(err);
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          files.set(entry.fileName.split('/').pop()!, Buffer.concat(chunks).toString('utf8'));
          zip.readEntry();
        });
        stream.on('error', reject);
      });
    });
    zip.on('end', () => resolve());
    zip.on('error', reject);
    zip.readEntry();
  });
  zip.close();
  return files;
}

const MODELS_DIR = join(import.meta.dirname, '../../models');
const modelZips = existsSync(MODELS_DIR) ? (await readdir(MODELS_DIR)).filter((f) => f.endsWith('.zip')) : [];

// The demo models' own tokenizers, whenever their zips are in models/ (the fixture above runs regardless).
describe.skipIf(modelZips.length === 0).each(modelZips)('demo model tokenizer %s', (zipName) => {
  let dir: string;
  let maxLength: number;
  let hfTok: PreTrainedTokenizer;
  beforeAll(async () => {
    const files = await tokenizerFilesOf(join(MODELS_DIR, zipName));
    const root = await mkdtemp(join(tmpdir(), 'tok-model-'));
    dir = join(root, 'model');
    await mkdir(dir);
    await writeFile(join(dir, 'tokenizer.json'), files.get('tokenizer.json')!);
    await writeFile(join(dir, 'tokenizer_config.json'), files.get('tokenizer_config.json') ?? JSON.stringify(TOKENIZER_CONFIG));
    maxLength = Number(JSON.parse(files.get('gateway.json') ?? '{}').max_length ?? 128);
    env.localModelPath = root;
    hfTok = await AutoTokenizer.from_pretrained('model');
  });

  it('gives the same ids as transformers.js', async () => {
    const tok = await TextTokenizer.fromFile(join(dir, 'tokenizer.json'), { maxLength });
    await fc.assert(
      fc.asyncProperty(unicodeText({ randomGraphemes: false }), async (text) => {
        expect((await tok.encode(text)).ids).toEqual(hfTok.encode(text));
      }),
      { numRuns: 200 },
    );
  });

  it('windows fit, cover the context, and offsets are exact', async () => {
    const tok = await TextTokenizer.fromFile(join(dir, 'tokenizer.json'), { maxLength });
    const full = await TextTokenizer.fromFile(join(dir, 'tokenizer.json'), { maxLength: 1 << 20 });
    await fc.assert(
      fc.asyncProperty(unicodeText({ maxLength: 8 }), unicodeText({ maxLength: 600, loneSurrogates: true }), fc.integer({ min: 0, max: 64 }), async (q, c, stride) => {
        if ((await full.countTokens(q)) + 1 >= maxLength) return;
        const windows = await tok.encodePairWindows(q, c, { stride });
        const [whole] = await full.encodePairWindows(q, c, { stride });
        expect(windowsCoverContext(windows, whole.offsets.filter((_, i) => whole.sequenceIds[i] === 1))).toBe(true);
        for (const w of windows) {
          expect(w.ids.length).toBeLessThanOrEqual(maxLength);
          for (let i = 0; i < w.ids.length; i++) {
            if (w.sequenceIds[i] !== 1) continue;
            const [a, b] = w.offsets[i];
            expect(0 <= a && a < b && b <= c.length).toBe(true);
          }
        }
      }),
      { numRuns: 100 },
    );
  });
});
