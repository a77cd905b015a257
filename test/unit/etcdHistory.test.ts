/** Noticing etcd going back in time: each step back reported once, the ticket floor kept. */
import { expect } from 'chai';
import { EtcdHistory } from '../../src/election/etcdHistory.js';

describe('EtcdHistory', () => {
  it('a lower revision than seen is a step back, reported once; rising again is not', () => {
    const history = new EtcdHistory();
    for (const revision of [5n, 9n, 9n, 12n])
      expect(history.noteRevision(revision)).to.equal(undefined);
    expect(history.noteRevision(7n)).to.deep.equal({ seen: 12n, now: 7n });
    expect(history.noteRevision(7n), 'the same restore again').to.equal(undefined);
    expect(history.noteRevision(8n)).to.equal(undefined);
  });

  it('a ticket mark below the last one seen is a step back; the highest mark stays the floor', () => {
    const history = new EtcdHistory();
    expect(history.noteTicketMark(0n)).to.equal(undefined);
    expect(history.noteTicketMark(1000n)).to.equal(undefined);
    expect(history.noteTicketMark(3000n)).to.equal(undefined);
    expect(history.noteTicketMark(1000n)).to.deep.equal({ highest: 3000n, now: 1000n });
    expect(history.highestTicketMark).to.equal(3000n);
    expect(history.noteTicketMark(3000n), 'raised back').to.equal(undefined);
    expect(history.noteTicketMark(0n), 'the key deleted').to.deep.equal({
      highest: 3000n,
      now: 0n,
    });
  });
});
