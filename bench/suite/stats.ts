import type { LatencySummary } from './types.js';

/** Nearest-rank percentile of an ascending-sorted array; p in [0, 100]. */
export function percentileSorted(sorted: ArrayLike<number>, p: number): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  const rank = Math.ceil((p / 100) * n);
  const idx = Math.min(n - 1, Math.max(0, rank - 1));
  return sorted[idx] as number;
}

export function median(values: readonly number[]): number {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  const n = v.length;
  if (n === 0) return NaN;
  const mid = n >> 1;
  return n % 2 === 1 ? (v[mid] as number) : ((v[mid - 1] as number) + (v[mid] as number)) / 2;
}

export function summarizeNs(samplesNs: ArrayLike<number>): LatencySummary {
  const sorted = Float64Array.from(samplesNs as ArrayLike<number>).sort();
  let sum = 0;
  for (let i = 0; i < sorted.length; i++) sum += sorted[i] as number;
  return {
    count: sorted.length,
    minNs: sorted.length ? (sorted[0] as number) : NaN,
    p50Ns: percentileSorted(sorted, 50),
    p90Ns: percentileSorted(sorted, 90),
    p99Ns: percentileSorted(sorted, 99),
    p999Ns: percentileSorted(sorted, 99.9),
    maxNs: sorted.length ? (sorted[sorted.length - 1] as number) : NaN,
    meanNs: sorted.length ? sum / sorted.length : NaN,
  };
}

/** (max - min) / median of the finite values, or NaN. */
export function spread(values: readonly number[]): number {
  const v = values.filter((x) => Number.isFinite(x));
  if (v.length < 2) return NaN;
  const m = median(v);
  return (Math.max(...v) - Math.min(...v)) / m;
}
