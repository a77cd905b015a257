/**
 * The layout the failover section (bench/failoverReport.ts) and the peer section
 * (bench/peerReport.ts) share, so the two read side by side: a table with one row per measure
 * under each scenario (p50, p90, p99 and max over its trials), the crash trials' kill phases in
 * one cell, and one CDF series per scenario of a measure's trial times.
 *
 * Units: ms. Nothing here blocks.
 */
import { ms, type PlotSeries } from './section.js';
import type { Summary } from './stats.js';

/** The columns such a table starts with; a table may add its own after `max`. */
export const MEASURE_HEADER = ['scenario', 'trials', 'measure', 'p50', 'p90', 'p99', 'max'];

/** A measure's name and its summary over a scenario's trials (undefined: none measured it). */
export type Measure = readonly [name: string, summary: Summary | undefined];

/** `10`, or `10 (2 missed)` when some trials measured nothing. */
export function trialsCell(scenario: { trials: number; missed: number }): string {
  return `${scenario.trials}${scenario.missed > 0 ? ` (${scenario.missed} missed)` : ''}`;
}

/**
 * One row per measure of a scenario: `lead` (its name and trials) before the measure and
 * `tail` (a table's own columns) after the max, on the first row only.
 */
export function measureRows(
  lead: string[],
  measures: readonly Measure[],
  tail: string[] = [],
): string[][] {
  const blank = (cells: string[]) => cells.map(() => '');
  return measures.map(([measure, summary], i) => [
    ...(i === 0 ? lead : blank(lead)),
    measure,
    ms(summary?.p50),
    ms(summary?.p90),
    ms(summary?.p99),
    ms(summary?.max),
    ...(i === 0 ? tail : blank(tail)),
  ]);
}

/** The header of the kill phase column (`phaseCell`). */
export const PHASE_HEADER = 'killed after a renewal';

/**
 * The kill phases of a scenario's trials (ms from the leader's last lease renewal to the
 * SIGKILL, bench/crashPhase.ts): `21–646 ms, mean 333 ms`, or `333 ms` for a single phase;
 * empty when its trials had none.
 */
export function phaseCell(results: readonly { phaseMs: number | undefined }[]): string {
  const phases = results.flatMap((r) => (r.phaseMs === undefined ? [] : [r.phaseMs]));
  if (phases.length === 0) return '';
  const [low, high] = [Math.min(...phases).toFixed(0), Math.max(...phases).toFixed(0)];
  if (low === high) return `${low} ms`;
  const mean = phases.reduce((sum, phase) => sum + phase, 0) / phases.length;
  return `${low}–${high} ms, mean ${mean.toFixed(0)} ms`;
}

/** One series per scenario: its trials' values of one measure, a trial without one left out. */
export function cdfSeries<Trial>(
  scenarios: readonly { name: string; results: readonly Trial[] }[],
  value: (trial: Trial) => number | undefined,
): PlotSeries[] {
  return scenarios.map((scenario) => ({
    name: scenario.name,
    points: scenario.results.flatMap((trial): [number, number][] => {
      const y = value(trial);
      return y === undefined ? [] : [[0, y]];
    }),
  }));
}
