/**
 * Chunking on the embedding model's tokens: windows of at most `budget` content tokens sharing `overlap`
 * tokens with the one before, cut at a paragraph or sentence boundary where one falls in the second half of the
 * window, each keeping its [start, end) character range in the original document. Pure: it gets the tokens'
 * character offsets, so the same code serves every tokenizer.
 */
export interface ChunkSpan {
  start: number;
  end: number;
  /** Content tokens in the chunk. */
  tokens: number;
}

let segmenter: Intl.Segmenter | undefined;

/** Character positions where a sentence or a paragraph starts (Unicode sentence segmentation, plus blank lines). */
export function boundaries(text: string): Set<number> {
  segmenter ??= new Intl.Segmenter('en', { granularity: 'sentence' });
  const out = new Set<number>();
  for (const s of segmenter.segment(text)) out.add(s.index);
  for (const m of text.matchAll(/\n[ \t\r]*\n\s*/g)) out.add(m.index + m[0].length);
  return out;
}

/**
 * @param offsets flat [start0, end0, start1, end1, ...] of the document's content tokens, in order
 * @param budget content tokens per chunk (the model window minus its special tokens)
 * @param overlap tokens shared by consecutive chunks (fewer when a boundary lets the next chunk start cleanly)
 */
export function chunkSpans(text: string, offsets: ArrayLike<number>, budget: number, overlap: number): ChunkSpan[] {
  const n = offsets.length / 2;
  if (n === 0) return [];
  if (!Number.isInteger(budget) || budget < 1) throw new Error(`chunk budget must be a positive integer, got ${budget}`);
  const step = Math.max(0, Math.min(overlap, budget - 1));
  const starts = boundaries(text);
  // Token i starts a sentence or paragraph when a boundary lies between the end of token i-1 and its start.
  const sentenceStart = new Uint8Array(n);
  const sorted = [...starts].sort((a, b) => a - b);
  let b = 0;
  for (let i = 0; i < n; i++) {
    const from = i === 0 ? -1 : offsets[2 * (i - 1) + 1];
    const to = offsets[2 * i];
    while (b < sorted.length && sorted[b] <= from) b++;
    if (b < sorted.length && sorted[b] <= to && sorted[b] > from) sentenceStart[i] = 1;
    if (i === 0) sentenceStart[i] = 1;
  }
  const spans: ChunkSpan[] = [];
  let start = 0;
  for (;;) {
    let end = Math.min(start + budget, n);
    if (end < n) {
      // The latest sentence start in the second half of the window ends the chunk before it.
      for (let j = end; j >= Math.max(start + 1, start + Math.floor(budget / 2)); j--) {
        if (sentenceStart[j]) {
          end = j;
          break;
        }
      }
    }
    spans.push({ start: offsets[2 * start], end: offsets[2 * (end - 1) + 1], tokens: end - start });
    if (end >= n) return spans;
    let next = end - step;
    // Start the next chunk at the earliest sentence start within the overlap (or right at the cut, when the chunk
    // ended at one), so chunks begin cleanly; without one, the overlap is cut mid-sentence.
    for (let j = next; j <= end && j < n; j++) {
      if (sentenceStart[j]) {
        next = j;
        break;
      }
    }
    start = Math.max(next, start + 1);
  }
}
