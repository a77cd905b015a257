/**
 * A clock for unit tests of timing decisions: time moves only when the test says so, and a
 * wait returns at once after moving time by its length (recorded in `waits`), so that a
 * schedule of seconds runs in microseconds. Waits honour their signal as `sleep` does.
 */
import type { Clock, SleepOptions } from '../../src/util/time.js';

export class FakeClock implements Clock {
  /** Every wait asked for, in milliseconds, in order. */
  readonly waits: number[] = [];
  /** Whether each wait asked to be unref'd, in the same order. */
  readonly unrefs: boolean[] = [];

  constructor(private at = 1_000_000) {}

  now = (): number => this.at;

  advance(ms: number): void {
    this.at += ms;
  }

  sleep = (ms: number, { signal, unref = false }: SleepOptions = {}): Promise<void> => {
    this.waits.push(ms);
    this.unrefs.push(unref);
    if (signal?.aborted) return Promise.reject(signal.reason as unknown);
    this.at += ms;
    return Promise.resolve();
  };
}
