/**
 * The cause of a claim's end and the old leader's last sign of life (src/election/failover.ts):
 * pure logic, on numbers the test chooses.
 */
import { expect } from 'chai';
import { causeOf, FailoverClock, type ClaimEnd } from '../../src/election/failover.js';

const end = (cause: ClaimEnd['cause'], observedAt = 10_000, term = 7n): ClaimEnd => ({
  term,
  leaderId: 'a',
  cause,
  observedAt,
});

describe('failover causes and figures', () => {
  it('a release note names the cause; without one, the holder key going too is its lease ending', () => {
    const note = { term: '7', id: 'a', reason: 'resign' as const, at: '2025-01-31T12:00:00.000Z' };
    expect(causeOf({ note, holderKeyDeleted: true })).to.equal('resign');
    expect(causeOf({ note: undefined, holderKeyDeleted: true })).to.equal('expired');
    expect(causeOf({ note: undefined, holderKeyDeleted: false })).to.equal('unknown');
  });

  it('a leader that released was alive until its claim vanished', () => {
    const clock = new FailoverClock(5000);
    for (const cause of ['stop', 'resign', 'handover', 'unknown'] as const) {
      expect(clock.lastSignOfLife(end(cause))).to.equal(10_000);
    }
  });

  it('an expired leader was last alive one TTL before the delete, or at its last answer to us since', () => {
    const clock = new FailoverClock(5000);
    expect(clock.lastSignOfLife(end('expired'))).to.equal(5000);
    // An answer before its last renewal says nothing more.
    clock.answered(7n, 4000);
    expect(clock.lastSignOfLife(end('expired'))).to.equal(5000);
    // One after it does (its keep-alives failed while it still served us).
    clock.answered(7n, 8000);
    expect(clock.lastSignOfLife(end('expired'))).to.equal(8000);
    // An older answer does not replace a newer one; another term's answers do not count.
    clock.answered(7n, 6000);
    expect(clock.lastSignOfLife(end('expired'))).to.equal(8000);
    expect(clock.lastSignOfLife(end('expired', 10_000, 9n))).to.equal(5000);
    // Never after the delete was seen.
    clock.answered(7n, 12_000);
    expect(clock.lastSignOfLife(end('expired'))).to.equal(10_000);
  });
});
