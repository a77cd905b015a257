/**
 * Waits that a signal makes pointless: made only when needed, ended by the signal, and
 * leaving no listener behind on the long-lived signals they hang on.
 */
import { getEventListeners } from 'node:events';
import { expect } from 'chai';
import { ABORTED, LazyAbort, unlessAbortedBy } from '../../src/util/abortable.js';

/** How many abort listeners `signal` holds. */
function listeners(signal: AbortSignal): number {
  return getEventListeners(signal, 'abort').length;
}

describe('LazyAbort', () => {
  it('aborts with the reason given, whether asked for before or after', () => {
    const before = new LazyAbort();
    const early = before.signal;
    before.abort('gone');
    const after = new LazyAbort();
    after.abort('gone');
    expect([early.aborted, early.reason]).to.deep.equal([true, 'gone']);
    expect([after.signal.aborted, after.signal.reason]).to.deep.equal([true, 'gone']);
  });

  it('follows the long-lived signal only once asked for, and lets go of it on dispose', () => {
    const shutdown = new AbortController();
    const unasked = new LazyAbort(shutdown.signal);
    expect(listeners(shutdown.signal), 'nothing until asked for').to.equal(0);
    unasked.dispose();
    const asked = new LazyAbort(shutdown.signal);
    const signal = asked.signal;
    expect(listeners(shutdown.signal)).to.equal(1);
    asked.dispose();
    expect(listeners(shutdown.signal)).to.equal(0);
    const following = new LazyAbort(shutdown.signal);
    const followed = following.signal;
    shutdown.abort('shutting down');
    expect([signal.aborted, followed.reason]).to.deep.equal([false, 'shutting down']);
    expect(new LazyAbort(shutdown.signal).signal.reason, 'aborted already').to.equal(
      'shutting down',
    );
  });
});

describe('unlessAbortedBy', () => {
  it('ends every wait under way when the signal aborts, with one listener for all', async () => {
    const lastCall = new AbortController();
    const untilLastCall = unlessAbortedBy(lastCall.signal);
    const done = untilLastCall(Promise.resolve('done'));
    const never = new Promise<string>(() => undefined);
    const waits = [untilLastCall(never), untilLastCall(never)];
    expect(await done).to.equal('done');
    expect(listeners(lastCall.signal)).to.equal(1);
    lastCall.abort();
    expect(await Promise.all(waits)).to.deep.equal([ABORTED, ABORTED]);
    expect(await untilLastCall(never), 'aborted already').to.equal(ABORTED);
  });

  it('passes a failure on as it came', async () => {
    const untilLastCall = unlessAbortedBy(new AbortController().signal);
    const error = new Error('handler failed');
    const outcome = await untilLastCall(Promise.reject(error)).catch((e: unknown) => e);
    expect(outcome).to.equal(error);
  });
});
