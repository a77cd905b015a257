import { EventEmitter } from 'node:events';
import { Writable } from 'node:stream';
import { expect } from 'chai';
import { pino } from 'pino';
import type { MemberView } from '../../src/election/poolView.js';
import { reportStrategyDisagreement } from '../../src/election/strategyAgreement.js';
import { memberView } from '../support/memberView.js';

const member = (id: string, createRevision: bigint, strategy?: string): MemberView =>
  memberView(id, createRevision, strategy === undefined ? {} : { strategy });

/** A pool view that the test changes, and the lines this member logs about it. */
function weightedMemberOf(members: MemberView[]) {
  const view = Object.assign(new EventEmitter<{ change: [] }>(), { members });
  const lines: { level: number; msg: string; poolStrategy?: string }[] = [];
  const logger = pino(
    { level: 'info' },
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(JSON.parse(chunk.toString()) as (typeof lines)[number]);
        done();
      },
    }),
  );
  reportStrategyDisagreement({ view, memberRecord: { strategy: 'weighted' } }, logger);
  const change = (next: MemberView[]) => {
    view.members = next;
    view.emit('change');
  };
  return { lines, change };
}

describe("a member whose strategy differs from the pool's", () => {
  it('warns once per change of what it disagrees with, and says when it agrees again', () => {
    const a = member('a', 1n, 'oldest');
    const self = member('self', 2n, 'weighted');
    const { lines, change } = weightedMemberOf([a, self]);
    change([a, self]);
    change([a, self, member('c', 3n, 'oldest')]);
    expect(lines).to.have.length(1);
    expect(lines[0]).to.include({ level: 40, poolStrategy: 'oldest' });
    expect(lines[0]!.msg).to.equal(
      "this member's strategy differs from the pool's: it would choose the leader by weighted, the pool chooses by oldest (its oldest member, a, says so). Give every member of the pool the same ELECTION_STRATEGY and settings",
    );
    const b = member('b', 0n, 'avoid(labels: disk; pools: none)');
    change([b, a, self]);
    expect(lines).to.have.length(2);
    expect(lines[1]).to.include({ level: 40, poolStrategy: 'avoid(labels: disk; pools: none)' });
    change([self]);
    change([self, member('d', 4n, 'oldest')]);
    expect(lines).to.have.length(3);
    expect(lines[2]).to.include({
      level: 30,
      msg: "this member's strategy agrees with the pool's again",
    });
  });

  it('says nothing while the pool names no strategy (members of an earlier version)', () => {
    const { lines, change } = weightedMemberOf([member('old', 1n)]);
    change([member('old', 1n), member('self', 2n, 'weighted')]);
    expect(lines).to.deep.equal([]);
  });
});
