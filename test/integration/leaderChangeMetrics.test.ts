/**
 * What a member counts as a leader change, as real member processes on a real etcd report it
 * on /metrics: a new term after one the member knew. Finding a leader at start-up is not a
 * change, so a follower that restarts (a crash loop) moves neither its counter nor the time
 * of the last change, and the dashboard and the flapping alert stay quiet.
 */
import { expect } from 'chai';
import { EtcdCluster } from '../support/etcdCluster.js';
import { TestPool, eventually } from '../support/pool.js';

/** The value of `name{pool="default"}` on member `id`'s /metrics; undefined without a sample. */
async function sample(pool: TestPool, id: string, name: string): Promise<number | undefined> {
  const response = await fetch(`${pool.member(id).url}/metrics`, {
    signal: AbortSignal.timeout(1000),
  });
  const exposition = await response.text();
  const line = new RegExp(`^${name}\\{pool="default"\\} (\\S+)$`, 'm').exec(exposition);
  return line ? Number(line[1]) : undefined;
}

const changes = (pool: TestPool, id: string) =>
  sample(pool, id, 'service_pool_leader_changes_total');
const lastChange = (pool: TestPool, id: string) =>
  sample(pool, id, 'service_pool_last_leader_change_timestamp_seconds');

describe('the leader changes a member counts', function () {
  this.timeout(60_000);
  let etcd: EtcdCluster | undefined;
  let pool: TestPool | undefined;

  before(async () => {
    etcd = await EtcdCluster.start({ size: 1 });
  });

  after(async () => {
    await pool?.close();
    await etcd?.close();
  });

  it('finding the leader at start-up counts 0; a new leader counts 1 on every member that knew the old one; a restarted follower starts again at 0', async () => {
    pool = new TestPool(etcd!, { LEASE_TTL_SECONDS: '2' });
    await pool.start(['a', 'b', 'c']);
    expect(await pool.agreedLeader()).to.equal('a');
    // a claimed an empty pool, b and c found a leading: no member saw the leader change.
    expect(await Promise.all(['a', 'b', 'c'].map((id) => changes(pool!, id)))).to.deep.equal([
      0, 0, 0,
    ]);
    // Every member reports when the current leader claimed: the same time on each.
    const claimedByA = await lastChange(pool, 'a');
    expect(claimedByA).to.be.a('number');
    expect([await lastChange(pool, 'b'), await lastChange(pool, 'c')]).to.deep.equal([
      claimedByA,
      claimedByA,
    ]);

    const stoppedAt = Date.now() / 1000;
    expect((await pool.member('a').stop()).code).to.equal(0);
    expect(await pool.agreedLeader(5000, { except: 'a' })).to.equal('b');
    await eventually('b and c count one leader change', async () => {
      const counted = await Promise.all(['b', 'c'].map((id) => changes(pool!, id)));
      return counted.every((n) => n === 1);
    });
    const claimedByB = await lastChange(pool, 'b');
    expect(claimedByB).to.be.at.least(stoppedAt - 1);
    expect(await lastChange(pool, 'c')).to.equal(claimedByB);

    // c crashes and comes back under the same leader.
    await pool.member('c').kill();
    await pool.startMember('c');
    expect(await pool.agreedLeader()).to.equal('b');
    await eventually(
      'the restarted c names b',
      async () => (await pool!.view('c')).leader?.id === 'b',
    );
    expect(await changes(pool, 'c')).to.equal(0);
    expect(await lastChange(pool, 'c')).to.equal(claimedByB);
    expect(await changes(pool, 'b')).to.equal(1);
  });
});
