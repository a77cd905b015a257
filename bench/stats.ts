/**
 * Summaries over repeated trials. Percentiles use the nearest-rank method, so every figure
 * is a time some trial actually took; the median interpolates between the two middle trials.
 */
export interface Summary {
  /** Trials that produced a value (a trial that timed out produces none). */
  n: number;
  median: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/** Nearest-rank percentile `p` (0 < p ≤ 100) of values sorted ascending. */
function percentile(sorted: number[], p: number): number {
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

/**
 * Undefined when there are no values: a table shows that as "—", not as 0. An undefined
 * value (a trial that timed out) is left out.
 */
export function summarize(values: readonly (number | undefined)[]): Summary | undefined {
  const sorted = values.filter((v): v is number => v !== undefined).sort((a, b) => a - b);
  if (sorted.length === 0) return undefined;
  const middle = sorted.length / 2;
  const median = Number.isInteger(middle)
    ? (sorted[middle - 1]! + sorted[middle]!) / 2
    : sorted[Math.floor(middle)]!;
  return {
    n: sorted.length,
    median,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    max: sorted[sorted.length - 1]!,
  };
}
