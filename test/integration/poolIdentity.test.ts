/**
 * What a pool's members must agree on, with real member processes on a real etcd: records
 * that a later version wrote still count as members.
 */
import { expect } from 'chai';
import { EtcdCluster } from '../../src/local/etcdCluster.js';
import { eventually, grantLease, TestPool } from '../support/pool.js';

describe('what the members of a pool agree on', function () {
  this.timeout(60_000);
  let etcd: EtcdCluster;
  let pool: TestPool | undefined;

  before(async () => {
    etcd = await EtcdCluster.start({ size: 1 });
  });

  after(async () => {
    await etcd?.close();
  });

  afterEach(async function () {
    if (this.currentTest?.state === 'failed' && pool) {
      for (const member of pool.members.values()) {
        console.log(
          `--- member ${member.id} ---\n${member.recentOutput().split('\n').slice(-30).join('\n')}`,
        );
      }
    }
    await pool?.close();
    pool = undefined;
  });

  it('a record with a field this version does not know (a later version wrote it) is still a member', async () => {
    pool = new TestPool(etcd, { LEASE_TTL_SECONDS: '2' });
    await pool.start(['a']);
    const lease = await grantLease(etcd, 60);
    const record = {
      id: 'later',
      pool: 'default',
      url: 'http://127.0.0.1:1',
      startedAt: new Date().toISOString(),
      pid: 1,
      version: '9.0.0',
      weight: 1,
      labels: {},
      leads: [],
      zone: 'eu-1',
    };
    const put = await etcd.etcdctl([
      'put',
      `--lease=${lease.id}`,
      `${pool.prefix}/pools/default/members/${lease.keySuffix}`,
      JSON.stringify(record),
    ]);
    expect(put.code, put.stderr).to.equal(0);
    await eventually('a lists the later member', async () =>
      (await pool!.view('a')).members.some((m) => m.id === 'later'),
    );
    expect((await pool.view('a')).members.map((m) => m.id)).to.deep.equal(['a', 'later']);
    expect(await pool.agreedLeader()).to.equal('a');
    const metrics = await (await fetch(`${pool.member('a').url}/metrics`)).text();
    expect(metrics).to.include(
      'service_pool_invalid_records_total{pool="default",kind="member_record"} 0',
    );
  });
});
