/**
 * The backoff schedule and the retry loop (src/util/backoff.ts): the delays a schedule gives,
 * and that an aborted signal stops the loop at once with its reason. The waits run on a fake
 * clock, except where the test is about ending a real timer early.
 */
import { expect } from 'chai';
import { backoffDelayMs, retry, type BackoffSchedule } from '../../src/util/backoff.js';
import { monotonicNow, sleep } from '../../src/util/time.js';
import { FakeClock } from '../support/fakeClock.js';
import { rejectionOf } from '../support/rejection.js';

const DOUBLING: BackoffSchedule = { initialMs: 100, maxMs: 2000 };

/** An attempt that fails `failures` times, then resolves with 'done'. */
function failingTimes(failures: number) {
  const attempt = () => {
    attempt.calls++;
    return attempt.calls <= failures
      ? Promise.reject(new Error(`failure ${attempt.calls}`))
      : Promise.resolve('done');
  };
  attempt.calls = 0;
  return attempt;
}

describe('Backoff schedule: the delay before each retry', () => {
  it('doubles from the first delay and stops growing at the cap', () => {
    const delays = [0, 1, 2, 3, 4, 5, 6, 40].map((n) => backoffDelayMs(DOUBLING, n));
    expect(delays).to.deep.equal([100, 200, 400, 800, 1600, 2000, 2000, 2000]);
  });

  it('grows by the factor it is given', () => {
    const schedule = { initialMs: 10, maxMs: 1000, factor: 3 };
    const delays = [0, 1, 2, 3, 4, 5].map((n) => backoffDelayMs(schedule, n));
    expect(delays).to.deep.equal([10, 30, 90, 270, 810, 1000]);
  });

  it('with jitter 0.5, waits between half and one and a half times the delay', () => {
    const jittered = { ...DOUBLING, jitter: 0.5 };
    expect(backoffDelayMs(jittered, 0, () => 0)).to.equal(50);
    expect(backoffDelayMs(jittered, 0, () => 0.5)).to.equal(100);
    expect(backoffDelayMs(jittered, 0, () => 0.75)).to.equal(125);
    expect(backoffDelayMs(jittered, 9, () => 0.5)).to.equal(2000);
  });
});

describe('retry: trying again until an attempt succeeds or the signal aborts', () => {
  it('an attempt that fails three times is retried after 100, 200 and 400 ms', async () => {
    const clock = new FakeClock();
    const attempt = failingTimes(3);
    const seen: { delayMs: number; error: string }[] = [];
    const result = await retry(attempt, {
      schedule: DOUBLING,
      clock,
      onRetry: (error, delayMs) => seen.push({ delayMs, error: (error as Error).message }),
    });
    expect(result).to.equal('done');
    expect(attempt.calls).to.equal(4);
    expect(clock.waits).to.deep.equal([100, 200, 400]);
    expect(seen).to.deep.equal([
      { delayMs: 100, error: 'failure 1' },
      { delayMs: 200, error: 'failure 2' },
      { delayMs: 400, error: 'failure 3' },
    ]);
  });

  it('onRetry sees the jittered delay that is then waited', async () => {
    const clock = new FakeClock();
    const seen: number[] = [];
    await retry(failingTimes(2), {
      schedule: { ...DOUBLING, jitter: 0.5 },
      clock,
      random: () => 0.25,
      onRetry: (_error, delayMs) => seen.push(delayMs),
    });
    expect(seen).to.deep.equal([75, 150]);
    expect(clock.waits).to.deep.equal(seen);
  });

  it('an attempt that succeeds at once waits nothing', async () => {
    const clock = new FakeClock();
    expect(await retry(failingTimes(0), { schedule: DOUBLING, clock })).to.equal('done');
    expect(clock.waits).to.deep.equal([]);
  });

  it('after a try of its own, the caller asks to wait the first delay before the first attempt', async () => {
    const clock = new FakeClock();
    const attempt = failingTimes(1);
    await retry(attempt, { schedule: DOUBLING, clock, waitFirst: true });
    expect(clock.waits).to.deep.equal([100, 200]);
    expect(attempt.calls).to.equal(2);
  });

  it('passes unref on to every wait', async () => {
    const clock = new FakeClock();
    await retry(failingTimes(2), { schedule: DOUBLING, clock, unref: true });
    expect(clock.unrefs).to.deep.equal([true, true]);
  });

  it('the signal aborts during a 10 s wait: the loop stops at once and rejects with its reason', async () => {
    const controller = new AbortController();
    const reason = new Error('member leaving');
    const attempt = failingTimes(Infinity);
    const startedAt = monotonicNow();
    const error = await rejectionOf(
      retry(attempt, {
        schedule: { initialMs: 10_000, maxMs: 10_000 },
        signal: controller.signal,
        onRetry: () => setImmediate(() => controller.abort(reason)),
      }),
    );
    expect(error).to.equal(reason);
    expect(attempt.calls).to.equal(1);
    expect(monotonicNow() - startedAt).to.be.below(1000);
  });

  it('the signal aborts during an attempt that then fails: no wait, no onRetry, the reason', async () => {
    const clock = new FakeClock();
    const controller = new AbortController();
    const reason = new Error('closed');
    let retries = 0;
    const error = await rejectionOf(
      retry(
        () => {
          controller.abort(reason);
          return Promise.reject(new Error('etcd unavailable'));
        },
        { schedule: DOUBLING, signal: controller.signal, clock, onRetry: () => retries++ },
      ),
    );
    expect(error).to.equal(reason);
    expect(retries).to.equal(0);
    expect(clock.waits).to.deep.equal([]);
  });

  it('a signal aborted before the start runs no attempt', async () => {
    const attempt = failingTimes(0);
    const reason = new Error('already closed');
    const error = await rejectionOf(
      retry(attempt, { schedule: DOUBLING, signal: AbortSignal.abort(reason) }),
    );
    expect(error).to.equal(reason);
    expect(attempt.calls).to.equal(0);
  });
});

describe('sleep: a wait its signal can end', () => {
  it('resolves after its time when nothing aborts', async () => {
    const startedAt = monotonicNow();
    await sleep(20, { signal: new AbortController().signal });
    expect(monotonicNow() - startedAt).to.be.at.least(19);
  });

  it('rejects with the reason at once when the signal aborts during the wait', async () => {
    const controller = new AbortController();
    const reason = new Error('shutdown');
    const startedAt = monotonicNow();
    setImmediate(() => controller.abort(reason));
    expect(await rejectionOf(sleep(10_000, { signal: controller.signal }))).to.equal(reason);
    expect(monotonicNow() - startedAt).to.be.below(1000);
  });
});
