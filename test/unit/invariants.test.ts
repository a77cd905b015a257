/** The chaos suite's invariant checker must catch what it claims to catch. */
import { expect } from 'chai';
import { checkAcrossRestore, checkInvariants, type CallRecord } from '../chaos/harness.js';

function ok(
  performedBy: string,
  term: number,
  ticket: number,
  startedAt: number,
  endedAt = startedAt + 5,
): CallRecord {
  return { asked: 'b', startedAt, endedAt, status: 200, body: { performedBy, term, ticket } };
}

const claims = new Map([
  [3, 'a'],
  [9, 'b'],
]);
const none = new Set<string>();

describe('the chaos invariant checker', () => {
  it('passes a clean history across a failover', () => {
    const records = [ok('a', 3, 1, 0), ok('a', 3, 2, 10), ok('b', 9, 1001, 20)];
    expect(checkInvariants(records, claims, none)).to.deep.equal([]);
  });

  it('catches a ticket issued twice', () => {
    // Within one term, so that no other invariant is touched.
    const found = checkInvariants([ok('a', 3, 5, 0), ok('a', 3, 5, 20)], claims, none);
    expect(found.map((v) => v.invariant)).to.deep.equal(['unique tickets']);
    // Across a failover it also breaks the order of tickets by term, and both are named.
    const across = checkInvariants([ok('a', 3, 5, 0), ok('b', 9, 5, 20)], claims, none);
    expect(across.map((v) => v.invariant)).to.have.members([
      'unique tickets',
      'tickets increase with term',
    ]);
  });

  it('catches tickets that go down as the term goes up', () => {
    const found = checkInvariants([ok('a', 3, 50, 0), ok('b', 9, 40, 20)], claims, none);
    expect(found.map((v) => v.invariant)).to.deep.equal(['tickets increase with term']);
  });

  it('catches work performed under a term its performer never claimed', () => {
    const found = checkInvariants([ok('c', 3, 1, 0)], claims, none);
    expect(found.map((v) => v.invariant)).to.deep.equal([
      'only the leader of a term performs work under it',
    ]);
  });

  it('catches a stale leader answering after a newer term already answered', () => {
    const found = checkInvariants([ok('b', 9, 1001, 0, 5), ok('a', 3, 7, 10, 15)], claims, none);
    expect(found.map((v) => v.invariant)).to.deep.equal(['no stale leader']);
  });

  it('catches a 500, an undocumented error and a hang; forgives a killed member dropping the connection', () => {
    const failed = (status: number, code: string, asked = 'b'): CallRecord => ({
      asked,
      startedAt: 0,
      endedAt: 1,
      status,
      body: { error: { code, message: '' } },
    });
    const found = checkInvariants(
      [
        failed(500, 'INTERNAL'),
        failed(503, 'SOMETHING'),
        failed(0, 'CLIENT_TIMEOUT'),
        failed(0, 'CONNECTION_LOST', 'a'),
        failed(503, 'NO_LEADER'),
      ],
      claims,
      new Set(['a']),
    );
    // Exactly the three: the killed member's dropped connection and NO_LEADER are forgiven.
    expect(found.map((v) => v.invariant)).to.deep.equal(
      Array(3).fill('every call ends in a 2xx or a documented error'),
    );
  });

  it('catches a member that said "no leader" before LEADERLESS_WAIT_MS', () => {
    const leaderless = (waitedMs: number): CallRecord => ({
      asked: 'b',
      startedAt: 0,
      endedAt: waitedMs,
      status: 503,
      body: { error: { code: 'NO_LEADER', message: 'x', details: { waitedMs } } },
    });
    const options = { leaderlessWaitMs: 3000 };
    expect(checkInvariants([leaderless(3001)], claims, none, options)).to.deep.equal([]);
    const found = checkInvariants([leaderless(383)], claims, none, options);
    expect(found.map((v) => v.invariant)).to.deep.equal([
      'a leaderless answer only after LEADERLESS_WAIT_MS',
    ]);
  });

  it('across a restore of etcd: terms start again lower, tickets must not', () => {
    const restoredAt = 100;
    const history = [
      { member: 'a', term: 900, at: 0 },
      { member: 'b', term: 40, at: 150 },
    ];
    const before = [ok('a', 900, 1, 10), ok('a', 900, 2, 20)];
    expect(
      checkAcrossRestore([...before, ok('b', 40, 51, 160)], history, restoredAt, none),
    ).to.deep.equal([]);
    const found = checkAcrossRestore([...before, ok('b', 40, 2, 160)], history, restoredAt, none);
    expect(found.map((v) => v.invariant)).to.have.members([
      'unique tickets',
      'tickets after a restore are above every ticket before it',
    ]);
  });
});
