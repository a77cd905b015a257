/**
 * Forwards to a replaced leader are given up a grace period after its successor's claim is
 * seen — not before, not for the leader that still leads, and never for an unknown term.
 */
import { EventEmitter, once } from 'node:events';
import { expect } from 'chai';
import { Supersession } from '../../src/work/supersession.js';
import { monotonicNow } from '../../src/util/time.js';

const GRACE_MS = 30;

class Claims extends EventEmitter {
  term: bigint | undefined = 5n;
  leader() {
    return this.term === undefined ? undefined : { term: this.term };
  }
  claim(term: bigint | undefined) {
    this.term = term;
    this.emit('change');
  }
}

describe('Supersession', () => {
  it("aborts the forwards to a leader the grace period after its successor's claim is seen", async () => {
    const claims = new Claims();
    const supersession = new Supersession(claims, GRACE_MS);
    const old = supersession.of(5n)!;
    expect(supersession.of(5n)).to.equal(old);
    claims.claim(undefined);
    claims.claim(6n);
    const seenAt = monotonicNow();
    const current = supersession.of(6n)!;
    await once(old, 'abort');
    expect(monotonicNow() - seenAt).to.be.at.least(GRACE_MS - 1);
    expect(current.aborted, 'the current leader').to.equal(false);
    // A new signal for the superseded term: its forwards are given the grace again.
    const late = supersession.of(5n)!;
    expect(late).to.not.equal(old);
    await once(late, 'abort');
  });

  it('nothing is abandoned while no newer claim is seen, nor for an unknown term', async () => {
    const claims = new Claims();
    const supersession = new Supersession(claims, GRACE_MS);
    const signal = supersession.of(5n)!;
    claims.claim(undefined);
    claims.claim(5n);
    expect(supersession.of(0n)).to.equal(undefined);
    // An older term is superseded already: once its grace is over, so would 5's be.
    await once(supersession.of(4n)!, 'abort');
    expect(signal.aborted).to.equal(false);
    expect(claims.listenerCount('change'), 'one listener, whatever the forwards').to.equal(1);
  });

  it('takes as many forwards as are in flight without a listener-leak warning', async () => {
    const warnings: string[] = [];
    const onWarning = (warning: Error) => warnings.push(warning.name);
    process.on('warning', onWarning);
    try {
      const signal = new Supersession(new Claims(), GRACE_MS).of(5n)!;
      for (let i = 0; i < 50; i++) signal.addEventListener('abort', () => undefined);
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings).to.deep.equal([]);
  });
});
