/**
 * Noticing etcd going back in time: a read below what was received before it was sent is a
 * step back; reads in flight together may come back in any order; the ticket floor is kept.
 */
import { expect } from 'chai';
import { EtcdHistory } from '../../src/election/etcdHistory.js';

describe('EtcdHistory', () => {
  it('an answer below what was received before the read was sent is a step back, reported once', () => {
    const history = new EtcdHistory();
    for (const revision of [5n, 9n, 12n]) {
      expect(history.noteRevision(revision, history.revisionFloor, 0)).to.equal(undefined);
    }
    expect(history.noteRevision(7n, history.revisionFloor, 100)).to.deep.equal({
      seen: 12n,
      now: 7n,
    });
    expect(history.sinceLastStepMs(350)).to.equal(250);
    expect(history.noteRevision(7n, history.revisionFloor, 0), 'the same restore').to.equal(
      undefined,
    );
    expect(history.noteRevision(8n, history.revisionFloor, 0)).to.equal(undefined);
  });

  it('overlapping reads answered out of order are no step back', () => {
    const history = new EtcdHistory();
    history.noteRevision(10n, 0n, 0);
    const sentFirst = history.revisionFloor; // a probe goes out
    const sentSecond = history.revisionFloor; // a resync's read goes out
    expect(history.noteRevision(20n, sentSecond, 0)).to.equal(undefined); // comes back first
    expect(history.noteRevision(15n, sentFirst, 0), 'the slower, older read').to.equal(undefined);
    expect(history.revisionFloor).to.equal(20n);
    expect(history.sinceLastStepMs(0)).to.equal(Infinity);
  });

  it('a ticket mark below the highest seen is a step back until raised; reservations count', () => {
    const history = new EtcdHistory();
    expect(history.noteTicketMark(0n, 0)).to.equal(undefined);
    expect(history.noteTicketMark(1000n, 0)).to.equal(undefined);
    history.noteReserved(3000n); // our own reservation, before its watch event
    expect(history.highestTicketMark).to.equal(3000n);
    expect(history.noteTicketMark(1000n, 5)).to.deep.equal({ highest: 3000n, now: 1000n });
    expect(history.noteTicketMark(2000n, 6), 'still below').to.deep.equal({
      highest: 3000n,
      now: 2000n,
    });
    expect(history.noteTicketMark(3000n, 7), 'raised back').to.equal(undefined);
    expect(history.noteTicketMark(0n, 8), 'the key deleted').to.deep.equal({
      highest: 3000n,
      now: 0n,
    });
  });
});
