/**
 * Backoff: how long to wait before trying again, and the loop that tries until an attempt
 * succeeds or a signal says to stop.
 *
 * A `BackoffSchedule` is the whole policy: attempt n (from 0) waits
 * `min(initialMs × factor^n, maxMs)` milliseconds, spread by `jitter` so that members that
 * failed together do not retry together. `backoffDelayMs` computes one delay and is what
 * event-driven waits (a timer re-armed by a callback, a wait for the next view change) use;
 * `retry` is the loop for everything that awaits its attempts.
 */
import { systemClock, type Clock } from './time.js';

export interface BackoffSchedule {
  /** The first delay, in milliseconds. */
  initialMs: number;
  /** No delay (before jitter) exceeds this, in milliseconds. */
  maxMs: number;
  /** What each delay is multiplied by for the next; default 2 (doubling). */
  factor?: number;
  /**
   * Spread, from 0 (none, the default) to 1: each delay is multiplied by a uniform draw from
   * [1 − jitter, 1 + jitter). 0.5 waits between half and one and a half times the delay.
   */
  jitter?: number;
}

/**
 * The delay in milliseconds before retry `attempt` (0 for the first retry) under `schedule`.
 * Pure but for `random` (default `Math.random`), which only jitter draws on.
 */
export function backoffDelayMs(
  schedule: BackoffSchedule,
  attempt: number,
  random: () => number = Math.random,
): number {
  const { initialMs, maxMs, factor = 2, jitter = 0 } = schedule;
  const delayMs = Math.min(initialMs * factor ** attempt, maxMs);
  return jitter === 0 ? delayMs : delayMs * (1 - jitter + 2 * jitter * random());
}

export interface RetryOptions {
  schedule: BackoffSchedule;
  /**
   * Stops the retries: no attempt starts after it aborts, a wait in progress ends at once, and
   * `retry` rejects with `signal.reason`. An attempt in flight is not interrupted (it is
   * passed the signal to watch, if it can).
   */
  signal?: AbortSignal;
  /**
   * Called after an attempt failed with `error`, just before waiting `delayMs` milliseconds
   * (jitter included) to try again. Not called once the signal has aborted.
   */
  onRetry?: (error: unknown, delayMs: number) => void;
  /**
   * True when the caller has tried once already: the first attempt, too, waits its delay
   * (the schedule's first) rather than running at once.
   */
  waitFirst?: boolean;
  /** True: the waits do not keep the process alive. */
  unref?: boolean;
  /** Where the waits happen; default the real timers (`systemClock`). */
  clock?: Pick<Clock, 'sleep'>;
  /** Jitter's random source, in [0, 1); default `Math.random`. */
  random?: (() => number) | undefined;
}

/**
 * Runs `attempt` until it resolves, waiting out `schedule` after each failure (a rejection
 * means "try again"), and resolves with its value. Blocks only its caller; rejects only with
 * `signal.reason`, once `signal` aborts. Nothing else ends it: pass a signal, or make the
 * attempt resolve, whenever retrying must stop.
 */
export async function retry<T>(
  attempt: (signal: AbortSignal | undefined) => Promise<T>,
  options: RetryOptions,
): Promise<T> {
  const { schedule, signal, onRetry, unref, clock = systemClock, random } = options;
  let retries = 0;
  if (options.waitFirst) {
    await clock.sleep(backoffDelayMs(schedule, retries++, random), { signal, unref });
  }
  for (;;) {
    signal?.throwIfAborted();
    try {
      return await attempt(signal);
    } catch (error) {
      signal?.throwIfAborted();
      const delayMs = backoffDelayMs(schedule, retries++, random);
      onRetry?.(error, delayMs);
      await clock.sleep(delayMs, { signal, unref });
    }
  }
}
