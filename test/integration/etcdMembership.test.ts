/**
 * A member notices when ETCD_ENDPOINTS and etcd's member list part ways, and follows the list
 * (src/etcd/membership.ts, src/etcd/endpoints.ts): an etcd member it was not given is used, a
 * removed one is dropped, and one removed with `etcdctl member remove` is named in a warning.
 * Each with a real 3-member etcd.
 */
import { expect } from 'chai';
import { EtcdCluster } from '../support/etcdCluster.js';
import { etcdMemberId, eventually, removeEtcdMember, TestPool } from '../support/pool.js';

describe("ETCD_ENDPOINTS against etcd's member list", function () {
  this.timeout(60_000);
  const FOLLOWING = "etcd endpoints follow etcd's member list";
  let etcd: EtcdCluster;
  let pool: TestPool | undefined;

  // A cluster per test: each changes its membership for good.
  beforeEach(async () => {
    etcd = await EtcdCluster.start({ size: 3 });
  });
  afterEach(async () => {
    await pool?.close();
    pool = undefined;
    await etcd?.close();
  });

  it('a member warns, naming the endpoint, once an etcd member is removed', async () => {
    pool = new TestPool(etcd, { ETCD_MEMBERSHIP_CHECK_MS: '1000' });
    await pool.start(['a']);
    const warning = "ETCD_ENDPOINTS and etcd's member list differ";
    expect(pool.member('a').recentOutput()).to.not.include(warning);
    const leader = await etcd.raftLeader();
    const index = [0, 1, 2].find((i) => i !== leader)!;
    await removeEtcdMember(etcd, index);
    await etcd.stopMember(index);
    await eventually('a warns', () => pool!.member('a').recentOutput().includes(warning), 10_000);
    const line = pool
      .member('a')
      .recentOutput()
      .split('\n')
      .find((l) => l.includes(warning))!;
    expect(JSON.parse(line)).to.deep.include({ unknown: [etcd.endpoints[index]], missing: [] });
  });

  /** The `follow` log lines of member a, parsed. */
  const followed = (): { added: string[]; removed: string[]; endpoints: string[] }[] =>
    pool!
      .member('a')
      .recentOutput()
      .split('\n')
      .filter((line) => line.includes(FOLLOWING))
      .map(
        (line) => JSON.parse(line) as { added: string[]; removed: string[]; endpoints: string[] },
      );

  it('given one endpoint of three, it uses all three: with that etcd member SIGKILLed it keeps its registration and serves; the member removed from etcd is dropped', async () => {
    const leader = await etcd.raftLeader();
    const given = [0, 1, 2].find((i) => i !== leader)!;
    pool = new TestPool(etcd, {
      ETCD_ENDPOINTS: etcd.endpoints[given]!,
      ETCD_MEMBERSHIP_CHECK_MS: '1000',
      LEASE_TTL_SECONDS: '2',
    });
    await pool.start(['a']);
    await eventually('a follows the member list', () => followed().length > 0);
    expect([...followed()[0]!.endpoints].sort()).to.deep.equal([...etcd.endpoints].sort());
    const keyBefore = (await pool.view('a')).self.memberKey;

    await etcd.stopMember(given, 'SIGKILL');
    // A lease at TTL 2 kept through three TTLs proves the keep-alives (the thread's too) moved
    // to the members a was never given.
    await new Promise((resolve) => setTimeout(resolve, 6000));
    expect((await pool.view('a')).self.memberKey, 'a kept its registration').to.equal(keyBefore);
    expect((await fetch(`${pool.member('a').url}/readyz`)).status).to.equal(200);
    expect((await pool.work('a', 'after the loss')).status).to.equal(200);
    expect(pool.member('a').recentOutput()).to.not.include('registering again');
    // The keep-alive thread followed too: it took over and never failed over to this one.
    expect(pool.member('a').recentOutput()).to.include('lease keep-alives run on their own thread');
    expect(pool.member('a').recentOutput()).to.not.include('lease keep-alive thread failed');

    const killed = await etcdMemberId(etcd, etcd.endpoints[given]!);
    await eventually(
      'etcd removes the killed member',
      async () => (await etcd.etcdctl(['member', 'remove', killed])).code === 0,
      15_000,
    );
    await eventually('a drops it', () =>
      followed().some((line) => line.removed.includes(new URL(etcd.endpoints[given]!).host)),
    );
    expect((await pool.work('a', 'after the removal')).status).to.equal(200);
  });
});
