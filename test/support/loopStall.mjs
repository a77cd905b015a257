/**
 * Preloaded into a member under test (NODE_OPTIONS=--import): the longest gap between two
 * ticks of a 20 ms timer on the main thread, printed as a line `loop stall max <ms> ms`
 * whenever it grows past 100 ms. A flood can hold the event loop in one turn for seconds
 * (libuv handles up to ~49,000 I/O events before it runs timers again); prom-client's
 * nodejs_eventloop_lag_max_seconds misses such a stall when a scrape resets its histogram in
 * the middle of it, which a test that scrapes every 100 ms does.
 */
import { isMainThread } from 'node:worker_threads';

if (isMainThread) {
  const TICK_MS = 20;
  let last = process.hrtime.bigint();
  let max = 0;
  setInterval(() => {
    const now = process.hrtime.bigint();
    const gapMs = Number(now - last) / 1e6 - TICK_MS;
    last = now;
    if (gapMs > Math.max(max, 100)) {
      max = gapMs;
      process.stderr.write(`loop stall max ${Math.round(max)} ms\n`);
    }
  }, TICK_MS).unref();
}
