/**
 * Waiting for a condition that only changes with an event. Event-driven: the condition is
 * checked at once, then on every `event` of `emitter`, never on a timer.
 */
/** What waitUntil needs of an emitter; a typed EventEmitter has it. */
interface Listenable {
  on(event: string, listener: () => void): unknown;
  off(event: string, listener: () => void): unknown;
}

/**
 * Resolves true once `ready()` holds, or with `ready()`'s value after `timeoutMs`
 * (milliseconds). Blocks nothing; the listener is removed either way.
 */
export function waitUntil(
  emitter: Listenable,
  event: string,
  ready: () => boolean,
  timeoutMs: number,
): Promise<boolean> {
  if (ready()) return Promise.resolve(true);
  return new Promise((resolve) => {
    const onEvent = () => {
      if (!ready()) return;
      cleanup();
      resolve(true);
    };
    const timer = setTimeout(() => {
      cleanup();
      resolve(ready());
    }, timeoutMs);
    const cleanup = () => {
      clearTimeout(timer);
      emitter.off(event, onEvent);
    };
    emitter.on(event, onEvent);
  });
}
