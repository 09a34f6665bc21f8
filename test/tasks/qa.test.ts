import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { answerSpans, windowsCoverContext, type QaOptions, type QaWindow } from '../../src/tasks/qa.ts';
import { TextTokenizer, type EncodedWindow } from '../../src/inference/tokenizer.ts';
import { GatewayError } from '../../src/errors.ts';
import { makeTokenizerFixture } from '../fixtures/make-tokenizer.ts';
import { unicodeText } from '../fixtures/arbitraries.ts';

const OPTS: QaOptions = { topK: 1, maxAnswerLength: 15, handleImpossibleAnswer: false };

/**
 * A hand-made window over `context` split on single spaces: [CLS] q [SEP] words... [SEP].
 * `logits` give (start, end) per context word; other positions get `other`.
 */
function window(context: string, words: { start: number; end: number }[], startLogits: number[], endLogits: number[], other = 0): QaWindow {
  const offsets: [number, number][] = [[0, 0], [0, 1], [0, 0]];
  const sequenceIds: (number | null)[] = [null, 0, null];
  for (const w of words) {
    offsets.push([w.start, w.end]);
    sequenceIds.push(1);
  }
  offsets.push([0, 0]);
  sequenceIds.push(null);
  const pad = (xs: number[]) => [other, other, other, ...xs, other];
  return { offsets, sequenceIds, startLogits: pad(startLogits), endLogits: pad(endLogits) };
}

function wordsOf(context: string): { start: number; end: number; text: string }[] {
  return [...context.matchAll(/\S+/g)].map((m) => ({ start: m.index, end: m.index + m[0].length, text: m[0] }));
}

/** The Hugging Face pipeline's arithmetic, written the obvious way: mask with -10000, softmax, all pairs. */
function reference(windows: QaWindow[], context: string, opts: QaOptions): { answer: string; score: number }[] {
  const all: { answer: string; score: number; key: string }[] = [];
  let minNull = Infinity;
  for (const w of windows) {
    const n = w.offsets.length;
    const masked = (l: ArrayLike<number>) => Array.from({ length: n }, (_, i) => (i === 0 || w.sequenceIds[i] === 1 ? l[i] : -10000));
    const softmax = (xs: number[]) => {
      const m = Math.max(...xs);
      const e = xs.map((x) => Math.exp(x - m));
      const s = e.reduce((a, b) => a + b, 0);
      return e.map((x) => x / s);
    };
    const ps = softmax(masked(w.startLogits));
    const pe = softmax(masked(w.endLogits));
    minNull = Math.min(minNull, ps[0] * pe[0]);
    for (let s = 0; s < n; s++) {
      for (let e = s; e < n && e - s <= opts.maxAnswerLength - 1; e++) {
        if (w.sequenceIds[s] !== 1 || w.sequenceIds[e] !== 1) continue;
        const [a, b] = [w.offsets[s][0], w.offsets[e][1]];
        all.push({ answer: context.slice(a, b), score: ps[s] * pe[e], key: `${a}:${b}` });
      }
    }
  }
  if (opts.handleImpossibleAnswer) all.push({ answer: '', score: minNull, key: 'null' });
  const best = new Map<string, { answer: string; score: number }>();
  for (const a of all) if (!best.has(a.key) || best.get(a.key)!.score < a.score) best.set(a.key, a);
  return [...best.values()].sort((x, y) => y.score - x.score).slice(0, opts.topK);
}

describe('answerSpans on hand-made windows', () => {
  const context = 'Alice   founded\tthe Acme company in Paris in 1999 .';
  const words = wordsOf(context);
  const logits = (peaks: Record<string, number>) => words.map((w) => peaks[w.text] ?? 0);

  it.each([
    ['a one-word answer', { Paris: 8 }, { Paris: 8 }, 'Paris'],
    ['a multi-word answer across a tab', { founded: 8 }, { Acme: 8 }, 'founded\tthe Acme'],
    ['a span with repeated spaces kept verbatim', { Alice: 8 }, { founded: 8 }, 'Alice   founded'],
    // The best end lies before the best start: the best valid pair wins instead.
    ['end before start is never chosen', { in: 5, Paris: 9 }, { Acme: 9, 1999: 5 }, 'Paris in 1999'],
  ])('%s', (_name, start, end, expected) => {
    const [a] = answerSpans([window(context, words, logits(start), logits(end))], context, OPTS);
    expect(a.answer).toBe(expected);
    expect(context.slice(a.start, a.end)).toBe(a.answer);
  });

  it('scores are p_start·p_end over context tokens and [CLS], like the pipeline', () => {
    const w = window(context, words, logits({ Paris: 3, Acme: 1 }), logits({ Paris: 2, 1999: 1 }), 0.5);
    const ours = answerSpans([w], context, { ...OPTS, topK: 5 });
    const ref = reference([w], context, { ...OPTS, topK: 5 });
    expect(ours.map((a) => a.answer)).toEqual(ref.map((a) => a.answer));
    ours.forEach((a, i) => expect(a.score).toBeCloseTo(ref[i].score, 12));
  });

  it('never answers from the question or special tokens, however large their logits', () => {
    const w = window(context, words, logits({ Paris: 1 }), logits({ Paris: 1 }));
    (w.startLogits as number[])[1] = 100;
    (w.endLogits as number[])[1] = 100;
    (w.startLogits as number[]).push(200); // a padded position past the window is ignored
    const answers = answerSpans([w], context, { ...OPTS, topK: 100 });
    expect(answers.length).toBeGreaterThan(10);
    for (const a of answers) expect(a.answer).not.toBe('');
    expect(answers[0].answer).toBe('Paris');
  });

  it('respects max_answer_length in tokens', () => {
    const w = window(context, words, logits({ Alice: 9 }), logits({ 1999: 9 }));
    const long = answerSpans([w], context, { ...OPTS, maxAnswerLength: 20 });
    expect(long[0].answer).toBe('Alice   founded\tthe Acme company in Paris in 1999');
    const short = answerSpans([w], context, { ...OPTS, maxAnswerLength: 3, topK: 50 });
    for (const a of short) expect(wordsOf(a.answer).length).toBeLessThanOrEqual(3);
    expect(short[0].answer).not.toContain('1999 Alice');
  });

  it('returns top_k distinct answers sorted by score, or all there are', () => {
    const w = window(context, words, logits({ Paris: 4, Acme: 3 }), logits({ Paris: 4, company: 3 }));
    const answers = answerSpans([w], context, { ...OPTS, topK: 3 });
    // exp(4+4), exp(3+4), exp(3+3): Acme…Paris outranks Acme company.
    expect(answers.map((a) => a.answer)).toEqual(['Paris', 'Acme company in Paris', 'Acme company']);
    expect(answers[0].score).toBeGreaterThan(answers[1].score);
    const n = words.length;
    expect(answerSpans([w], context, { ...OPTS, topK: 10_000 })).toHaveLength((n * (n + 1)) / 2);
  });

  it('deduplicates a span seen in two overlapping windows, keeping its best score', () => {
    const first = words.slice(0, 7);
    const second = words.slice(4);
    const w1 = window(context, first, first.map((w) => (w.text === 'company' ? 5 : 0)), first.map((w) => (w.text === 'company' ? 5 : 0)));
    const w2 = window(context, second, second.map((w) => (w.text === 'company' ? 7 : 0)), second.map((w) => (w.text === 'company' ? 7 : 0)));
    const answers = answerSpans([w1, w2], context, { ...OPTS, topK: 5 });
    expect(answers.filter((a) => a.answer === 'company')).toHaveLength(1);
    const alone = answerSpans([w2], context, OPTS)[0];
    expect(answers[0]).toEqual(alone);
    expect(new Set(answers.map((a) => `${a.start}:${a.end}`)).size).toBe(answers.length);
  });

  it('ranks the SQuAD 2.0 null answer by the lowest [CLS] score over windows', () => {
    const mk = (cls: number) => {
      const w = window(context, words, logits({ Paris: 2 }), logits({ Paris: 2 }));
      (w.startLogits as number[])[0] = cls;
      (w.endLogits as number[])[0] = cls;
      return w;
    };
    const windows = [mk(9), mk(6)];
    const answers = answerSpans(windows, context, { ...OPTS, topK: 3, handleImpossibleAnswer: true });
    expect(answers[0]).toMatchObject({ answer: '', start: 0, end: 0 });
    expect(answers[0].score).toBeCloseTo(reference(windows, context, { ...OPTS, handleImpossibleAnswer: true })[0].score, 12);
    // The null score is the minimum: the window with the weaker [CLS] decides.
    const p = (w: QaWindow) => {
      const xs = [0, ...w.offsets.map((_, i) => i).filter((i) => w.sequenceIds[i] === 1)].map((i) => Math.exp(w.startLogits[i]));
      return (xs[0] / xs.reduce((a, b) => a + b, 0)) ** 2;
    };
    expect(answers[0].score).toBeCloseTo(Math.min(p(windows[0]), p(windows[1])), 12);
    expect(answers[1].answer).toBe('Paris');
    // Without the flag the null answer never appears, even when it would win.
    expect(answerSpans(windows, context, { ...OPTS, topK: 50 }).every((a) => a.answer !== '')).toBe(true);
  });

  it('widens answers to whole words when windows carry word ids', () => {
    const ctx = 'unbelievable results';
    // "un" "##believ" "##able" "results": a span on "##believ" alone would be a fragment.
    const w: QaWindow = {
      offsets: [[0, 0], [0, 1], [0, 0], [0, 2], [2, 8], [8, 12], [13, 20], [0, 0]],
      sequenceIds: [null, 0, null, 1, 1, 1, 1, null],
      wordIds: [null, 0, null, 0, 0, 0, 1, null],
      startLogits: [0, 0, 0, 0, 9, 0, 0, 0],
      endLogits: [0, 0, 0, 0, 9, 0, 0, 0],
    };
    expect(answerSpans([w], ctx, OPTS)[0].answer).toBe('unbelievable');
    expect(answerSpans([w], ctx, { ...OPTS, alignToWords: false })[0].answer).toBe('believ');
  });

  it('keeps combining accents that the normalizer dropped from the last token', () => {
    const ctx = 'cafe\u0301 ole';
    const w: QaWindow = {
      offsets: [[0, 0], [0, 4], [6, 9], [0, 0]],
      sequenceIds: [null, 1, 1, null],
      startLogits: [0, 9, 0, 0],
      endLogits: [0, 9, 0, 0],
    };
    const [a] = answerSpans([w], ctx, OPTS);
    expect(a.answer).toBe('cafe\u0301');
    expect(ctx.slice(a.start, a.end)).toBe(a.answer);
  });

  it.each([
    [{ topK: 0 }, /top_k/],
    [{ topK: 1.5 }, /top_k/],
    [{ maxAnswerLength: 0 }, /max_answer_length/],
  ])('rejects %j with invalid_request', (bad, message) => {
    const w = window(context, words, logits({}), logits({}));
    const call = () => answerSpans([w], context, { ...OPTS, ...bad });
    expect(call).toThrow(GatewayError);
    expect(call).toThrow(message);
  });

  it('returns nothing for no windows, and only the null answer for a context without tokens', () => {
    expect(answerSpans([], context, { ...OPTS, handleImpossibleAnswer: true })).toEqual([]);
    const empty = window('', [], [], []);
    expect(answerSpans([empty], '', { ...OPTS, handleImpossibleAnswer: true })).toEqual([{ answer: '', start: 0, end: 0, score: 1 }]);
    expect(answerSpans([empty], '', OPTS)).toEqual([]);
  });

  it('property: agrees with the reference arithmetic on random logits (no word alignment)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.float({ min: -20, max: 20, noNaN: true }), { minLength: words.length * 2, maxLength: words.length * 2 }),
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 8 }),
        fc.boolean(),
        (xs, topK, maxAnswerLength, handleImpossibleAnswer) => {
          const w = window(context, words, xs.slice(0, words.length), xs.slice(words.length), 1);
          const opts = { topK, maxAnswerLength, handleImpossibleAnswer };
          const ours = answerSpans([w], context, opts);
          const ref = reference([w], context, opts);
          expect(ours.map((a) => a.score)).toEqual(ref.map((a) => expect.closeTo(a.score, 12)));
          expect(ours[0].answer).toBe(ref[0].answer);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('answerSpans with real tokenizer windows', () => {
  let tokenizerPath: string;
  let licenceWords: string[];
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'qa-tok-'));
    ({ tokenizerPath } = await makeTokenizerFixture(dir));
    const licences = '/usr/share/common-licenses';
    const texts = await readdir(licences).then((names) => Promise.all(names.map((n) => readFile(`${licences}/${n}`, 'utf8').catch(() => ''))));
    licenceWords = texts.join(' ').split(/\s+/).filter(Boolean);
    while (licenceWords.length < 3000) licenceWords.push(...licenceWords.slice(0, 3000), 'filler');
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  /** Logits that point at context characters [a, b) in whichever windows hold them. */
  function logitsFor(windows: EncodedWindow[], a: number, b: number): QaWindow[] {
    return windows.map((w) => {
      const start = w.offsets.map((o, i) => (w.sequenceIds[i] === 1 && o[0] === a ? 10 : 0));
      const end = w.offsets.map((o, i) => (w.sequenceIds[i] === 1 && o[1] === b ? 10 : 0));
      return { ...w, startLogits: Float32Array.from(start), endLogits: Float32Array.from(end) };
    });
  }

  it('finds an answer placed after the first 2,000 words of the context', async () => {
    const answer = 'Zanzibar harbour';
    const before = licenceWords.slice(0, 2100).join(' ');
    const context = `${before} The office is in ${answer} since 1999. ${licenceWords.slice(2100, 2400).join(' ')}`;
    const start = context.indexOf(answer);
    const tok = await TextTokenizer.fromFile(tokenizerPath, { maxLength: 128 });
    const windows = await tok.encodePairWindows('Where is the office?', context, { stride: 32 });
    expect(windows.length).toBeGreaterThan(20);
    const holding = windows.findIndex((w) => w.offsets.some((o, i) => w.sequenceIds[i] === 1 && o[0] === start));
    expect(holding).toBeGreaterThan(windows.length / 2);
    const [best] = answerSpans(logitsFor(windows, start, start + answer.length), context, { ...OPTS, handleImpossibleAnswer: true });
    expect(best).toMatchObject({ answer, start, end: start + answer.length });
  });

  it('finds a late answer from logits alone when only the last window holds it', () => {
    const words = licenceWords.slice(0, 2500);
    words.push('Zanzibar');
    const context = words.join(' ');
    const spans = wordsOf(context);
    const windows: QaWindow[] = [];
    for (let from = 0; from < spans.length; from += 200) {
      const part = spans.slice(from, from + 250);
      const hot = part.map((w) => (w.text === 'Zanzibar' ? 12 : 0));
      windows.push(window(context, part, hot, hot));
    }
    const [best] = answerSpans(windows, context, OPTS);
    expect(best.answer).toBe('Zanzibar');
    expect(best.start).toBe(context.length - 'Zanzibar'.length);
  });

  it('property: answers are exact substrings at their offsets, windows cover the context', async () => {
    const full = await TextTokenizer.fromFile(tokenizerPath, { maxLength: 1 << 20 });
    const tok = await TextTokenizer.fromFile(tokenizerPath, { maxLength: 40 });
    await fc.assert(
      fc.asyncProperty(
        unicodeText({ maxLength: 6 }),
        unicodeText({ maxLength: 200, loneSurrogates: true }),
        fc.integer({ min: 0, max: 1 << 30 }),
        fc.integer({ min: 0, max: 16 }),
        fc.record({ topK: fc.integer({ min: 1, max: 8 }), maxAnswerLength: fc.integer({ min: 1, max: 20 }), handleImpossibleAnswer: fc.boolean(), alignToWords: fc.boolean() }),
        async (question, context, seed, stride, opts) => {
          if ((await full.countTokens(question)) + 1 >= 40) return;
          const windows = await tok.encodePairWindows(question, context, { stride });
          const [whole] = await full.encodePairWindows(question, context, { stride });
          expect(windowsCoverContext(windows, whole.offsets.filter((_, i) => whole.sequenceIds[i] === 1))).toBe(true);
          let x = seed;
          const rand = () => ((x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 16 - 8;
          const qa = windows.map((w) => ({ ...w, startLogits: w.ids.map(rand), endLogits: w.ids.map(rand) }));
          const answers = answerSpans(qa, context, opts);
          expect(answers.length).toBeLessThanOrEqual(opts.topK);
          for (const a of answers) {
            expect(context.slice(a.start, a.end)).toBe(a.answer);
            expect(a.start).toBeGreaterThanOrEqual(0);
            expect(a.end).toBeLessThanOrEqual(context.length);
            expect(a.score).toBeGreaterThan(0);
            expect(a.score).toBeLessThanOrEqual(1);
            if (a.answer === '') expect([a.start, a.end]).toEqual([0, 0]);
            // Never a broken surrogate pair at either edge.
            expect(/^[\udc00-\udfff]/.test(a.answer) || /[\ud800-\udbff]$/.test(a.answer)).toBe(false);
          }
          for (let i = 1; i < answers.length; i++) expect(answers[i - 1].score).toBeGreaterThanOrEqual(answers[i].score);
        },
      ),
      { numRuns: 150 },
    );
  });
});
