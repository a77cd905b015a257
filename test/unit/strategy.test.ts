import { expect } from 'chai';
import type { MemberView } from '../../src/election/poolView.js';
import { oldest } from '../../src/election/strategy.js';
import { leaseIdHex, poolKeys } from '../../src/etcd/keys.js';

function member(id: string, createRevision: bigint): MemberView {
  return {
    key: `/p/pools/default/members/${id}`,
    leaseId: '1',
    createRevision,
    modRevision: createRevision,
    record: {
      id,
      pool: 'default',
      url: `http://${id}:1`,
      startedAt: '2026-11-26T10:00:00.000Z',
      pid: 1,
      version: '0',
      weight: 1,
      labels: {},
      leads: [],
    },
  };
}

describe('the oldest strategy', () => {
  it('prefers the member with the lowest create revision', () => {
    const members = [member('b', 7n), member('c', 9n), member('a', 12n)];
    expect(oldest(members, { pool: 'default', self: undefined })?.record.id).to.equal('b');
  });

  it('prefers nobody in an empty pool', () => {
    expect(oldest([], { pool: 'default', self: undefined })).to.equal(undefined);
  });
});

describe('the etcd key layout', () => {
  it("puts members where etcd's election recipe does: <prefix>/<lease id in hex>", () => {
    const keys = poolKeys('/service-pool-leader', 'default');
    // etcd3 reports lease ids in decimal; etcd's recipe formats them with %x.
    expect(keys.member('7587869398430217222')).to.equal(
      '/service-pool-leader/pools/default/members/694d8703ff7d7406',
    );
    expect(leaseIdHex('255')).to.equal('ff');
    expect(keys.leader).to.equal('/service-pool-leader/pools/default/leader');
    expect(keys.ticketHighWater.startsWith(keys.statePrefix)).to.equal(true);
  });
});
