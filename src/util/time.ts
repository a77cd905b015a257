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
