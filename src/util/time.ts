/**
 * Time as the pool measures it: every wait and deadline on the monotonic clock, wall time for
 * display only. `sleep` blocks its caller only, and its signal cancels it.
 */

/**
 * Milliseconds on the monotonic clock that lease deadlines use. `process.hrtime` rather than
 * `performance.now()`: the latter counts from each thread's own start, and a deadline renewed
 * on the keep-alive thread (see membership/leaseThread.ts) must mean the same instant on the
 * main one.
 */
export const monotonicNow = (): number => Number(process.hrtime.bigint()) / 1e6;

export interface SleepOptions {
  /** Ends the wait early: `sleep` then rejects with `signal.reason` (at once if aborted). */
  signal?: AbortSignal | undefined;
  /** True: the timer does not keep the process alive (a library user's process may exit). */
  unref?: boolean | undefined;
}

/**
 * Resolves after `ms` milliseconds; rejects with the signal's reason as soon as `signal`
 * aborts. Without a signal it cannot be cancelled: keep it short, or check after it.
 */
export function sleep(ms: number, { signal, unref = false }: SleepOptions = {}): Promise<void> {
  const reason = (): unknown => signal?.reason;
  if (signal?.aborted) return Promise.reject(reason());
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(reason());
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    if (unref) timer.unref();
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** A timer set on a `Clock`. `cancel()` after it fired does nothing. */
export interface ClockTimer {
  cancel(): void;
}

/**
 * The time a module that decides on time reads, waits on and schedules on: the monotonic
 * clock and real timers in the service (`systemClock`), a fake one in unit tests, so that
 * timing logic is proven in milliseconds. Modules take the part they use
 * (`Pick<Clock, 'now' | 'schedule'>`).
 */
export interface Clock {
  /** Monotonic milliseconds, as `monotonicNow`. */
  now(): number;
  /** Waits `ms` milliseconds, as `sleep` does (same cancellation, same unref). */
  sleep(ms: number, options?: SleepOptions): Promise<void>;
  /** Calls `fire` once, `delayMs` milliseconds from now. Never keeps the process alive. */
  schedule(delayMs: number, fire: () => void): ClockTimer;
}

export const systemClock: Clock = {
  now: monotonicNow,
  sleep,
  schedule(delayMs, fire) {
    const timer = setTimeout(fire, delayMs);
    timer.unref();
    return { cancel: () => clearTimeout(timer) };
  },
};
