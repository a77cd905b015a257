/**
 * What the scale benchmark (bench/scale.ts) runs: the pool sizes, trials, worker processes and
 * registration batches of a full and a smoke run, the pool's name and TTL, and the bounds on
 * the waits that normally end by an event.
 *
 * Units: sizes and batches in members; `restMs` and every timeout in milliseconds; the TTL in
 * seconds. Nothing here blocks.
 */

export interface Plan {
  /** Pool sizes in members, ascending: the pool grows from one to the next. */
  sizes: number[];
  /** Convergence trials (lease revokes) per size. */
  trials: number;
  /** Worker processes hosting the members (bench/scaleWorker.ts); the same for every size. */
  workers: number;
  /** Members registering at once, over all workers (see `grow` in bench/scale.ts). */
  batch: number;
  /** The window at rest, in ms, over which CPU, RSS and etcd requests are measured. */
  restMs: number;
  /**
   * For profiling only: write a CPU profile of every worker and phase here
   * (`<size>-<phase>-w<worker>.cpuprofile`, phases `register`, `trials`, `rest`).
   */
  cpuProfileDir?: string;
}

export const FULL: Plan = {
  sizes: [10, 100, 500, 1000],
  trials: 3,
  workers: 4,
  // Each new member reads the whole pool twice (takeover check, snapshot) and queues a watch
  // behind its process's others; at 800 members and more, 40 at once overran the call
  // deadlines on this 2-core machine, and the retries that follow do not let up.
  batch: 20,
  restMs: 6000,
};
export const SMOKE: Plan = { sizes: [10, 50], trials: 1, workers: 2, batch: 20, restMs: 1500 };

/** The pool's name under the benchmark's own prefix. */
export const POOL = 'scale';
export const TTL_SECONDS = 5;
/** Bounds on waits that normally end by an event within a second or so. */
export const AGREE_TIMEOUT_MS = 15_000;
export const SETTLE_TIMEOUT_MS = 60_000;
