/**
 * A clock for unit tests of timing decisions: time moves only when the test says so. A wait
 * returns at once after moving time by its length (recorded in `waits`), so that a schedule of
 * seconds runs in microseconds; waits honour their signal as `sleep` does. Timers set with
 * `schedule` fire, in order, when `advance` moves time past them.
 */
import type { Clock, ClockTimer, SleepOptions } from '../../src/util/time.js';

interface FakeTimer {
  at: number;
  delayMs: number;
  fire: () => void;
  cancelled: boolean;
}

export class FakeClock implements Clock {
  /** Every wait asked for, in milliseconds, in order. */
  readonly waits: number[] = [];
  /** Whether each wait asked to be unref'd, in the same order. */
  readonly unrefs: boolean[] = [];
  /** Every timer scheduled, fired or cancelled ones included. */
  readonly timers: FakeTimer[] = [];

  constructor(private at = 1_000_000) {}

  now = (): number => this.at;

  /** Moves time on by `ms`, firing the timers due meanwhile, in order. */
  advance(ms: number): void {
    const until = this.at + ms;
    for (;;) {
      const next = this.timers
        .filter((t) => !t.cancelled && t.at <= until)
        .sort((x, y) => x.at - y.at)[0];
      if (!next) break;
      next.cancelled = true;
      this.at = next.at;
      next.fire();
    }
    this.at = until;
  }

  sleep = (ms: number, { signal, unref = false }: SleepOptions = {}): Promise<void> => {
    this.waits.push(ms);
    this.unrefs.push(unref);
    if (signal?.aborted) return Promise.reject(signal.reason as unknown);
    this.advance(ms);
    return Promise.resolve();
  };

  schedule = (delayMs: number, fire: () => void): ClockTimer => {
    const timer = { at: this.at + delayMs, delayMs, fire, cancelled: false };
    this.timers.push(timer);
    return { cancel: () => void (timer.cancelled = true) };
  };

  /** The delays (ms) of the timers still pending. */
  get pending(): number[] {
    return this.timers.filter((t) => !t.cancelled).map((t) => t.delayMs);
  }
}
