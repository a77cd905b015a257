/**
 * Waiting on something that a signal may make pointless: the client left, the member shuts
 * down. The work is not cancelled, only no longer waited for; its outcome, even a failure, is
 * dropped.
 */

/** What `unlessAborted` resolves with when the signal came first. */
export const ABORTED = Symbol('aborted');

/** `work`'s outcome, or ABORTED as soon as `signal` fires (at once if it already has). */
export function unlessAborted<T>(
  work: Promise<T>,
  signal: AbortSignal | undefined,
): Promise<T | typeof ABORTED> {
  if (signal === undefined) return work;
  if (signal.aborted) {
    work.catch(() => undefined);
    return Promise.resolve(ABORTED);
  }
  return new Promise((resolve, reject) => {
    const onAbort = () => resolve(ABORTED);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}
