/**
 * Waiting for a condition that only changes with an event. Event-driven: the condition is
 * checked at once, then on every `event` of `emitter`, never on a timer.
 */
/** What the waits need of an emitter; a typed EventEmitter has it. */
interface Listenable {
  on(event: string, listener: () => void): unknown;
  off(event: string, listener: () => void): unknown;
}

/**
 * Resolves with `value()` once it is not undefined; rejects with `signal`'s reason when it
 * aborts first (at once if it already has), and with what `value()` throws. Blocks nothing;
 * the listener is removed either way.
 */
export function valueOnEvent<T>(
  emitter: Listenable,
  event: string,
  value: () => T | undefined,
  signal: AbortSignal,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const settle = (outcome: () => void) => {
      emitter.off(event, check);
      signal.removeEventListener('abort', onAbort);
      outcome();
    };
    const check = () => {
      try {
        const current = value();
        if (current !== undefined) settle(() => resolve(current));
      } catch (error) {
        settle(() => reject(error));
      }
    };
    const onAbort = () => settle(() => reject(signal.reason as Error));
    if (signal.aborted) return onAbort();
    emitter.on(event, check);
    signal.addEventListener('abort', onAbort, { once: true });
    check();
  });
}

/**
 * Resolves true once `ready()` holds, or with `ready()`'s value after `timeoutMs`
 * (milliseconds). Blocks nothing; the listener is removed either way.
 */
export async function waitUntil(
  emitter: Listenable,
  event: string,
  ready: () => boolean,
  timeoutMs: number,
): Promise<boolean> {
  if (ready()) return true;
  const timeout = new AbortController();
  const timer = setTimeout(() => timeout.abort(), timeoutMs);
  try {
    return await valueOnEvent(emitter, event, () => ready() || undefined, timeout.signal);
  } catch {
    return ready();
  } finally {
    clearTimeout(timer);
  }
}
