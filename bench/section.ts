/**
 * What every benchmark of `make bench` returns, so bench/run.ts can print it, store it in
 * bench/results/<date>.json and render it into docs/benchmarks.md (tables and SVG plots).
 *
 * A benchmark is `(context) => Promise<Section | Section[]>`: it runs its trials on the shared
 * etcd cluster (each under its own key prefix), prints a progress line per step through
 * `context.log`, and returns its tables (already formatted cells), plots (raw points) and raw
 * data.
 */
import type { LocalEtcd } from '../src/demo/localEtcd.js';

export interface BenchContext {
  /** A 3-member etcd cluster with fast raft timing, shared by every benchmark of the run. */
  etcd: LocalEtcd;
  /** `make bench-smoke`: the fewest trials and shortest durations that still exercise the code. */
  smoke: boolean;
  /** A progress line, prefixed with the benchmark's name. */
  log: (line: string) => void;
  /**
   * `--rounds <n>`: at most this many interleaved rounds (failover: trials per scenario, each
   * system once per trial; throughput: rounds of every target), for a short real run.
   */
  rounds?: number;
}

export interface Table {
  caption: string;
  header: string[];
  /** Formatted cells, one array per row, as long as `header`. */
  rows: string[][];
}

export interface PlotSeries {
  name: string;
  /** [x, y] points; a bar plot uses x as the index of its category. */
  points: [number, number][];
}

export interface Plot {
  /** File name under docs/images/bench/, e.g. `failover-graceful.svg`. */
  file: string;
  title: string;
  xLabel: string;
  yLabel: string;
  /** `line`: series of points; `bars`: one bar per category and series; `cdf`: y values only. */
  kind: 'line' | 'bars' | 'cdf';
  /** Category names for `bars`, in x order. */
  categories?: string[];
  series: PlotSeries[];
  /** Draw x on a log scale (scale plots over 10..1000 members). */
  logX?: boolean;
}

/** A target from the issue and whether this run met it, stated with the measured figure. */
export interface TargetCheck {
  target: string;
  measured: string;
  met: boolean;
}

export interface Section {
  id: string;
  title: string;
  /** What was measured and how, in a sentence or two, for the docs. */
  method: string;
  tables: Table[];
  plots: Plot[];
  targets: TargetCheck[];
  /** Raw figures kept in the JSON record. */
  data: unknown;
  /**
   * What went wrong in a way that makes the figures unusable (a trial that never finished, a
   * member that never agreed): the run reports them and exits non-zero, smoke runs included.
   */
  errors?: string[];
}

/** One section, or several when one benchmark measures side by side what reads best apart. */
export type Benchmark = (context: BenchContext) => Promise<Section | Section[]>;

/** `12.3 ms`, or `—` when a trial produced no value. */
export function ms(value: number | undefined, digits = 1): string {
  return value === undefined ? '—' : `${value.toFixed(digits)} ms`;
}

/** A fixed-width text table for the console. */
export function textTable(table: Table): string {
  const widths = table.header.map((h, c) =>
    Math.max(h.length, ...table.rows.map((row) => (row[c] ?? '').length)),
  );
  const line = (cells: string[]) =>
    cells
      .map((cell, c) => cell.padEnd(widths[c]!))
      .join('  ')
      .trimEnd();
  return [
    table.caption,
    line(table.header),
    line(widths.map((w) => '-'.repeat(w))),
    ...table.rows.map(line),
  ].join('\n');
}
