import { expect } from 'chai';
import { candidates, whyNoCandidate } from '../../src/election/candidates.js';
import type { MemberView } from '../../src/election/poolView.js';
import { memberView } from '../support/memberView.js';

const member = (id: string, createRevision: bigint, candidate = true): MemberView =>
  memberView(id, createRevision, { candidate });

describe('who may lead', () => {
  it('every member but those with CANDIDATE=false, oldest first', () => {
    const members = [member('edge', 1n, false), member('b', 2n), member('c', 3n)];
    expect(candidates(members).map((m) => m.record.id)).to.deep.equal(['b', 'c']);
    const all = [member('a', 1n), member('b', 2n)];
    expect(candidates(all)).to.equal(all);
  });

  it('says why nobody may lead only when the pool has members and none may', () => {
    expect(whyNoCandidate([])).to.equal(undefined);
    expect(whyNoCandidate([member('edge', 1n, false), member('b', 2n)])).to.equal(undefined);
    expect(whyNoCandidate([member('edge', 1n, false)])).to.equal(
      'no member may lead: its only member is CANDIDATE=false; a member with CANDIDATE=true (the default) that joins will lead',
    );
    expect(whyNoCandidate([member('e1', 1n, false), member('e2', 2n, false)])).to.include(
      'all 2 members are CANDIDATE=false',
    );
  });
});
