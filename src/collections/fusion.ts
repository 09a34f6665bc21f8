/**
 * Reciprocal rank fusion (Cormack et al. 2009): each list gives weight / (k + rank); k 60 as in the paper and
 * Haystack, every weight 1 unless given (Haystack's weighted RRF: a list trusted more counts more).
 */
export const RRF_K = 60;

export function reciprocalRankFusion<T>(lists: T[][], keyOf: (t: T) => string, k = RRF_K, weights?: number[]): { item: T; score: number }[] {
  const fused = new Map<string, { item: T; score: number; first: number }>();
  let order = 0;
  lists.forEach((list, l) => {
    const w = weights?.[l] ?? 1;
    list.forEach((item, rank) => {
      const key = keyOf(item);
      const prev = fused.get(key);
      if (prev) prev.score += w / (k + rank + 1);
      else fused.set(key, { item, score: w / (k + rank + 1), first: order++ });
    });
  });
  return [...fused.values()].sort((a, b) => b.score - a.score || a.first - b.first).map(({ item, score }) => ({ item, score }));
}
