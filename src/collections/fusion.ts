/** Reciprocal rank fusion (Cormack et al. 2009): each list gives 1 / (k + rank); k 60 as in the paper and Haystack. */
export const RRF_K = 60;

export function reciprocalRankFusion<T>(lists: T[][], keyOf: (t: T) => string, k = RRF_K): { item: T; score: number }[] {
  const fused = new Map<string, { item: T; score: number; first: number }>();
  let order = 0;
  for (const list of lists) {
    list.forEach((item, rank) => {
      const key = keyOf(item);
      const prev = fused.get(key);
      if (prev) prev.score += 1 / (k + rank + 1);
      else fused.set(key, { item, score: 1 / (k + rank + 1), first: order++ });
    });
  }
  return [...fused.values()].sort((a, b) => b.score - a.score || a.first - b.first).map(({ item, score }) => ({ item, score }));
}
