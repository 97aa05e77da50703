/** Small figures over samples (mean and nearest-rank percentiles) and the clock they are taken with. */

export function mean(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  let sum = 0;
  for (const v of values) sum += v;
  return sum / values.length;
}

/** Nearest-rank percentile (p in 0..100) of unsorted values; null when there are none. */
export function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1] ?? null;
}

export function median(values: readonly number[]): number | null {
  return percentile(values, 50);
}

export function round(n: number | null, digits = 1): number | null {
  if (n === null || !Number.isFinite(n)) return null;
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

/** A monotonic clock, nanoseconds. */
export const nowNs = (): bigint => process.hrtime.bigint();

/** Nanoseconds as seconds. */
export const seconds = (ns: bigint): number => Number(ns) / 1e9;
