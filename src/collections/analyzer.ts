/**
 * Keyword search terms, the same for every store: Unicode-normalised (NFKD, marks dropped), lower-cased runs
 * of letters and digits. BM25 (k1 1.2, b 0.75, the Lucene/FTS5 parameters) over them.
 */
export const BM25_K1 = 1.2;
export const BM25_B = 0.75;

export function terms(text: string): string[] {
  return text.normalize('NFKD').replace(/\p{M}+/gu, '').toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
}

/** Distinct query terms, in order, at most 32 (a longer query is still a question about these). */
export function queryTerms(text: string): string[] {
  return [...new Set(terms(text))].slice(0, 32);
}

/** Inverse document frequency as FTS5 computes it: never below a small positive floor. */
export function idf(totalDocs: number, docsWithTerm: number): number {
  const v = Math.log((totalDocs - docsWithTerm + 0.5) / (docsWithTerm + 0.5));
  return v > 1e-6 ? v : 1e-6;
}

/** One term's contribution to a chunk's BM25 score. */
export function bm25Term(tf: number, length: number, avgLength: number, idfValue: number): number {
  return (idfValue * tf * (BM25_K1 + 1)) / (tf + BM25_K1 * (1 - BM25_B + (BM25_B * length) / Math.max(avgLength, 1e-9)));
}
