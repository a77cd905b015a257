/**
 * Time as the pool measures it: every wait and deadline on the monotonic clock, wall time for
 * display only. Nothing here cancels; `sleep` blocks the caller only.
 */

/**
 * Milliseconds on the monotonic clock that lease deadlines use. `process.hrtime` rather than
 * `performance.now()`: the latter counts from each thread's own start, and a deadline renewed
 * on the keep-alive thread (see membership/leaseThread.ts) must mean the same instant on the
 * main one.
 */
export const monotonicNow = (): number => Number(process.hrtime.bigint()) / 1e6;

/** Resolves after `ms` milliseconds. Not cancellable: keep it short, or check after it. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A timer set on a `Clock`. `cancel()` after it fired does nothing. */
export interface ClockTimer {
  cancel(): void;
}

/**
 * The time a module that decides on time reads and schedules on: the monotonic clock and
 * unref'd timers in production (`systemClock`), a fake one in unit tests.
 */
export interface Clock {
  /** Monotonic milliseconds, as `monotonicNow`. */
  now(): number;
  /** Calls `fire` once, `delayMs` milliseconds from now. Never keeps the process alive. */
  schedule(delayMs: number, fire: () => void): ClockTimer;
}

export const systemClock: Clock = {
  now: monotonicNow,
  schedule(delayMs, fire) {
    const timer = setTimeout(fire, delayMs);
    timer.unref();
    return { cancel: () => clearTimeout(timer) };
  },
};
