/**
 * A member notices when ETCD_ENDPOINTS and etcd's member list part ways: an etcd member
 * removed with `etcdctl member remove` is named in a warning, with a real 3-member etcd.
 */
import { expect } from 'chai';
import { EtcdCluster } from '../../src/local/etcdCluster.js';
import { etcdMemberId, eventually, TestPool } from '../support/pool.js';

describe("ETCD_ENDPOINTS against etcd's member list", function () {
  this.timeout(60_000);
  let etcd: EtcdCluster;
  let pool: TestPool | undefined;

  before(async () => {
    etcd = await EtcdCluster.start({ size: 3 });
  });
  after(async () => {
    await pool?.close();
    await etcd?.close();
  });

  it('a member warns, naming the endpoint, once an etcd member is removed', async () => {
    pool = new TestPool(etcd, { ETCD_MEMBERSHIP_CHECK_MS: '1000' });
    await pool.start(['a']);
    const warning = "ETCD_ENDPOINTS and etcd's member list differ";
    expect(pool.member('a').recentOutput()).to.not.include(warning);
    const leader = await etcd.raftLeader();
    const index = [0, 1, 2].find((i) => i !== leader)!;
    const removed = await etcdMemberId(etcd, etcd.endpoints[index]!);
    // etcd refuses a reconfiguration until its members have been connected for 5 s.
    await eventually(
      'etcd removes the member',
      async () => (await etcd.etcdctl(['member', 'remove', removed])).code === 0,
      15_000,
    );
    await etcd.stopMember(index);
    await eventually(
      'a warns',
      async () => pool!.member('a').recentOutput().includes(warning),
      10_000,
    );
    const line = pool
      .member('a')
      .recentOutput()
      .split('\n')
      .find((l) => l.includes(warning))!;
    expect(JSON.parse(line)).to.deep.include({ unknown: [etcd.endpoints[index]], missing: [] });
  });
});
