/**
 * A cumulative histogram as Prometheus exposes one (`_bucket{le}`, `_sum`, `_count`), as plain data so it can sit in
 * a snapshot or cross a thread. `counts[i]` is the number of observations ≤ `bounds[i]`; `count` covers `+Inf`.
 */
export interface Histogram {
  readonly bounds: readonly number[];
  readonly counts: number[];
  sum: number;
  count: number;
}

export function newHistogram(bounds: readonly number[]): Histogram {
  return { bounds, counts: bounds.map(() => 0), sum: 0, count: 0 };
}

export function observe(h: Histogram, value: number): void {
  h.count++;
  h.sum += value;
  for (let i = 0; i < h.bounds.length; i++) if (value <= (h.bounds[i] ?? Infinity)) h.counts[i] = (h.counts[i] ?? 0) + 1;
}

/** An independent copy (a snapshot must not change when the histogram it was taken from does). */
export function copyHistogram(h: Histogram): Histogram {
  return { bounds: h.bounds, counts: [...h.counts], sum: h.sum, count: h.count };
}
