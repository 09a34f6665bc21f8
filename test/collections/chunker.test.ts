import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { boundaries, chunkSpans } from '../../src/collections/chunker.ts';
import { reciprocalRankFusion } from '../../src/collections/fusion.ts';
import { idf, queryTerms, terms } from '../../src/collections/analyzer.ts';
import { checkMetadata, matches, parseFilter } from '../../src/collections/filter.ts';

/** Whitespace "tokens" of a text, as flat [start, end) offsets. */
function wordOffsets(text: string): number[] {
  return [...text.matchAll(/\S+/g)].flatMap((m) => [m.index, m.index + m[0].length]);
}

describe('chunkSpans', () => {
  const text = 'One two three four. Five six seven eight nine. Ten eleven twelve.\n\nThirteen fourteen fifteen sixteen seventeen. Eighteen nineteen twenty.';
  const offsets = wordOffsets(text);

  it('keeps each chunk within the budget, covers every token, overlaps, and cuts at sentence starts where it can', () => {
    const spans = chunkSpans(text, offsets, 8, 2);
    expect(spans.every((s) => s.tokens <= 8)).toBe(true);
    expect(spans[0].start).toBe(0);
    expect(spans.at(-1)!.end).toBe(text.length);
    // Consecutive chunks overlap or are apart by whitespace only: no token is left out.
    for (let i = 1; i < spans.length; i++) if (spans[i].start > spans[i - 1].end) expect(text.slice(spans[i - 1].end, spans[i].start).trim()).toBe('');
    // The first chunk ends at a sentence end, not in the middle of "Five six seven eight nine."
    expect(text.slice(spans[0].start, spans[0].end)).toBe('One two three four.');
    // The next starts at a sentence start within its overlap.
    for (const s of spans.slice(1)) expect(/^[A-Z]/.test(text.slice(s.start, s.end))).toBe(true);
  });

  it('cuts a sentence longer than the window on token boundaries, with the overlap', () => {
    const long = Array.from({ length: 50 }, (_, i) => `w${i}`).join(' ');
    const spans = chunkSpans(long, wordOffsets(long), 10, 3);
    expect(spans.map((s) => s.tokens)).toEqual([10, 10, 10, 10, 10, 10, 8]);
    expect(long.slice(spans[1].start, spans[1].end).startsWith('w7 ')).toBe(true);
  });

  it('is one chunk for a short text and none for an empty one', () => {
    expect(chunkSpans('Just this.', wordOffsets('Just this.'), 10, 2)).toEqual([{ start: 0, end: 10, tokens: 2 }]);
    expect(chunkSpans('', [], 10, 2)).toEqual([]);
  });

  it('under random texts and windows: every chunk slices inside the text, within budget, covering all tokens in order', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom('word', 'Word.', 'x', 'é', '😀', '\n\n', 'end!', 'Mr.', '3.14'), { minLength: 1, maxLength: 200 }), fc.integer({ min: 2, max: 40 }), fc.integer({ min: 0, max: 20 }), (parts, budget, overlap) => {
        const t = parts.join(' ');
        const off = wordOffsets(t);
        const spans = chunkSpans(t, off, budget, overlap);
        if (off.length === 0) return spans.length === 0;
        let covered = 0;
        for (const s of spans) {
          expect(s.tokens).toBeLessThanOrEqual(budget);
          expect(s.start).toBeGreaterThanOrEqual(0);
          expect(s.end).toBeLessThanOrEqual(t.length);
          const first = off.findIndex((x, i) => i % 2 === 0 && x === s.start) / 2;
          expect(first).toBeLessThanOrEqual(covered);
          covered = Math.max(covered, first + s.tokens);
        }
        return covered === off.length / 2;
      }),
      { numRuns: 200, seed: 7 },
    );
  });

  it('finds sentence and paragraph starts', () => {
    const b = boundaries('A b. C d.\n\nE f');
    for (const at of [0, 5, 11]) expect(b.has(at)).toBe(true);
    expect(b.has(2)).toBe(false);
  });
});

describe('keyword analyzer, fusion, filters', () => {
  it('analyzes as FTS5 unicode61 without diacritics would: lower case, marks dropped, runs of letters and digits', () => {
    expect(terms('Déjà-vu, naïve CAFÉ 3.14 über_cool')).toEqual(['deja', 'vu', 'naive', 'cafe', '3', '14', 'uber', 'cool']);
    expect(queryTerms('the the cat')).toEqual(['the', 'cat']);
    expect(idf(10, 10)).toBe(1e-6);
    expect(idf(10, 1)).toBeCloseTo(Math.log(9.5 / 1.5), 10);
  });

  it('fuses ranked lists by reciprocal rank: items both lists find come first', () => {
    const fused = reciprocalRankFusion([['a', 'b', 'c'], ['c', 'd', 'a']], (x) => x);
    expect(fused.map((f) => f.item)).toEqual(['a', 'c', 'b', 'd']);
    expect(fused[0].score).toBeCloseTo(1 / 61 + 1 / 63, 10);
  });

  it('weighs each list: a list weighted 0 only appends what the other lacks, weights 1 and 1 are plain RRF', () => {
    const lists = [['a', 'b', 'c'], ['c', 'd', 'a']];
    expect(reciprocalRankFusion(lists, (x) => x, 60, [1, 1])).toEqual(reciprocalRankFusion(lists, (x) => x));
    expect(reciprocalRankFusion(lists, (x) => x, 60, [0, 2]).map((f) => f.item)).toEqual(['c', 'd', 'a', 'b']);
    // Weighted 0.6 / 1.4: the item both lists found stays first; the second list's own first item passes the first list's.
    const w = reciprocalRankFusion([['a', 'b'], ['c', 'a']], (x) => x, 60, [0.6, 1.4]);
    expect(w.map((f) => f.item)).toEqual(['a', 'c', 'b']);
    expect(w[0].score).toBeCloseTo(0.6 / 61 + 1.4 / 62, 10);
    // Only a second list weighted over 62 times the first puts its own first item before one both lists found.
    expect(reciprocalRankFusion([['a', 'b'], ['c', 'a']], (x) => x, 60, [0.02, 1.98]).map((f) => f.item)).toEqual(['c', 'a', 'b']);
  });

  it('parses and evaluates filters; refuses malformed ones with the place named', () => {
    const f = parseFilter({ lang: 'en', year: { $in: [2020, 2021] }, $or: [{ a: true }, { b: null }] });
    expect(matches({ lang: 'en', year: 2021, a: true }, f)).toBe(true);
    expect(matches({ lang: 'en', year: 2021, b: null }, f)).toBe(true);
    expect(matches({ lang: 'en', year: 2021 }, f)).toBe(false);
    expect(matches({ lang: 'en', year: '2021', a: true }, f)).toBe(false);
    for (const [bad, msg] of [
      [{}, /filter is empty/],
      [[], /must be an object/],
      [{ a: { $gt: 1 } }, /filter\.a must be a string/],
      [{ $nor: [] }, /unknown operator "\$nor"/],
      [{ $or: [] }, /\$or must be a non-empty list/],
      [{ a: { $in: [] } }, /\$in must be a list of 1 to 256/],
      [{ a: [1, 2] }, /filter\.a must be/],
    ] as const) {
      expect(() => parseFilter(bad), JSON.stringify(bad)).toThrow(msg);
    }
    expect(() => checkMetadata({ a: { nested: 1 } }, 'documents[0].metadata')).toThrow(/documents\[0\]\.metadata\.a must be a string, number, boolean or null/);
  });
});
