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

/**
 * An abort signal made only when first asked for: most requests never wait, and an
 * AbortController with a listener on a long-lived signal costs microseconds per request. It
 * aborts when `abort` is called, or when `also` aborts (with its reason) while the signal
 * exists. Call `dispose` when done with it: it removes the listener on `also`.
 */
export class LazyAbort {
  private controller: AbortController | undefined;
  private aborted = false;
  private reason: unknown;
  private readonly onAlso = () => this.abort(this.also?.reason);

  constructor(private readonly also?: AbortSignal) {}

  /** Aborts the signal, now or as soon as it is asked for. */
  abort(reason?: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.controller?.abort(reason);
  }

  /** The signal; the first call makes it (aborted already if `abort` or `also` came first). */
  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.also?.aborted) this.abort(this.also.reason);
      else this.also?.addEventListener('abort', this.onAlso, { once: true });
      if (this.aborted) this.controller.abort(this.reason);
    }
    return this.controller.signal;
  }

  dispose(): void {
    if (this.controller !== undefined) this.also?.removeEventListener('abort', this.onAlso);
  }
}

/**
 * `unlessAborted` for many waits on one long-lived signal (shutdown's last call): one listener
 * on it for all of them, instead of one added and removed per wait.
 */
export function unlessAbortedBy(
  signal: AbortSignal | undefined,
): <T>(work: Promise<T>) => Promise<T | typeof ABORTED> {
  if (signal === undefined) return (work) => work;
  const waiting = new Set<() => void>();
  signal.addEventListener('abort', () => {
    for (const abandon of waiting) abandon();
    waiting.clear();
  });
  return <T>(work: Promise<T>) => {
    if (signal.aborted) return unlessAborted(work, signal);
    return new Promise<T | typeof ABORTED>((resolve, reject) => {
      const abandon = () => resolve(ABORTED);
      waiting.add(abandon);
      work.then(
        (value) => {
          waiting.delete(abandon);
          resolve(value);
        },
        (error: unknown) => {
          waiting.delete(abandon);
          reject(error);
        },
      );
    });
  };
}
