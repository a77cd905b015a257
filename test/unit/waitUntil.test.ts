/**
 * The event-driven waits of util/waitUntil.ts: a value waited for on an emitter's events,
 * cancelled by a signal, and the listener removed whatever ends the wait.
 */
import { EventEmitter } from 'node:events';
import { expect } from 'chai';
import { valueOnEvent, waitUntil } from '../../src/util/waitUntil.js';

/** What `promise` rejects with; fails when it resolves. */
async function rejection(promise: Promise<unknown>): Promise<Error> {
  return promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (error: unknown) => error as Error,
  );
}

describe('waiting on events (waitUntil.ts)', () => {
  it('valueOnEvent resolves at once, or at the first event after which the value is defined', async () => {
    const emitter = new EventEmitter();
    expect(await valueOnEvent(emitter, 'change', () => 1, new AbortController().signal)).to.equal(
      1,
    );
    const state: { value?: string } = {};
    const waiting = valueOnEvent(
      emitter,
      'change',
      () => state.value,
      new AbortController().signal,
    );
    emitter.emit('change');
    state.value = 'now';
    emitter.emit('change');
    expect(await waiting).to.equal('now');
    expect(emitter.listenerCount('change')).to.equal(0);
  });

  it("valueOnEvent rejects with the signal's reason, or with what the value throws, and removes its listener", async () => {
    const emitter = new EventEmitter();
    const controller = new AbortController();
    const waiting = valueOnEvent(emitter, 'change', () => undefined, controller.signal);
    controller.abort(new Error('caller gave up'));
    expect((await rejection(waiting)).message).to.equal('caller gave up');
    const aborted = AbortSignal.abort(new Error('already'));
    expect((await rejection(valueOnEvent(emitter, 'change', () => 1, aborted))).message).to.equal(
      'already',
    );
    let stopped = false;
    const stopping = valueOnEvent(
      emitter,
      'change',
      () => {
        if (stopped) throw new Error('stopped');
        return undefined;
      },
      new AbortController().signal,
    );
    stopped = true;
    emitter.emit('change');
    expect((await rejection(stopping)).message).to.equal('stopped');
    expect(emitter.listenerCount('change')).to.equal(0);
  });

  it('waitUntil resolves true on the event, or with the condition after the timeout', async () => {
    const emitter = new EventEmitter();
    let ready = false;
    const waiting = waitUntil(emitter, 'change', () => ready, 10_000);
    ready = true;
    emitter.emit('change');
    expect(await waiting).to.equal(true);
    expect(await waitUntil(emitter, 'change', () => false, 5)).to.equal(false);
    expect(emitter.listenerCount('change')).to.equal(0);
  });
});
