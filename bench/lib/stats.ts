/** Summaries of samples: min / median / p95 / max (nearest-rank percentiles, median the mean of the middle two). */

export interface Summary {
  n: number;
  min: number;
  median: number;
  p95: number;
  p99: number;
  max: number;
}

/** Nearest rank: the smallest value with at least q of the samples at or below it. */
export function percentile(xs: readonly number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] ?? NaN;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] ?? NaN) : ((s[mid - 1] ?? NaN) + (s[mid] ?? NaN)) / 2;
}

export function summarize(xs: readonly number[]): Summary {
  const finite = xs.filter((x) => Number.isFinite(x));
  if (finite.length === 0) return { n: 0, min: NaN, median: NaN, p95: NaN, p99: NaN, max: NaN };
  return {
    n: finite.length,
    min: Math.min(...finite),
    median: median(finite),
    p95: percentile(finite, 0.95),
    p99: percentile(finite, 0.99),
    max: Math.max(...finite),
  };
}

/** `a / b`, NaN when either is missing or b is 0. */
export function ratio(a: number | undefined, b: number | undefined): number {
  if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0) return NaN;
  return a / b;
}
