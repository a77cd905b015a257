/**
 * Why the leader changed, and what it cost, as every member reads it from etcd: a handover to
 * a preferred member, a graceful stop, an admin resign and a crash (SIGKILL), one after the
 * other in one pool of real member processes on a real etcd. Member c follows throughout and
 * must name each cause, show the outage callers felt (milliseconds for the first three, about
 * one lease TTL for the crash) apart from the gap without a claim (none for the first three:
 * the leaver hands its claim over in one write; milliseconds after the crash), and count each
 * in service_pool_failover_duration_seconds{cause} and service_pool_leaderless_seconds.
 */
import { expect } from 'chai';
import type { LeaderChange } from '../../src/election/leaderLog.js';
import { EtcdCluster } from '../support/etcdCluster.js';
import { eventually, metricSample, TestPool } from '../support/pool.js';

const TTL_SECONDS = 2;
const ADMIN_TOKEN = 'failover-cause-admin';

describe('why the leader changed and what it cost, on a real etcd', function () {
  this.timeout(60_000);
  let etcd: EtcdCluster;
  let pool: TestPool | undefined;

  before(async () => {
    etcd = await EtcdCluster.start({ size: 1 });
  });

  after(async () => {
    await pool?.close();
    await etcd?.close();
  });

  afterEach(function () {
    if (this.currentTest?.state !== 'failed') return;
    for (const member of pool?.members.values() ?? []) {
      console.log(
        `--- ${member.id} ---\n${member.recentOutput().split('\n').slice(-20).join('\n')}`,
      );
    }
  });

  it('handover, stop, resign and crash: each named, the crash costing callers one TTL', async () => {
    pool = new TestPool(etcd, {
      LEASE_TTL_SECONDS: String(TTL_SECONDS),
      ELECTION_STRATEGY: 'weighted',
      PREEMPT_AFTER_MS: '200',
      ADMIN_TOKEN,
    });
    await pool.start(['a', 'b', 'c']);
    expect(await pool.agreedLeader()).to.equal('a');
    const c = pool.member('c');
    // The new leader as c sees it, with the cause and figures of the change c recorded.
    const change = async (leader: string) => {
      await pool!.agreedLeader(10_000);
      let last: LeaderChange | undefined;
      await eventually(`c records ${leader} as leader`, async () => {
        last = (await pool!.view('c')).timeline.at(-1);
        return last?.leader === leader;
      });
      return last!;
    };

    // A heavier member joins: a hands over to it once it has been preferred for 200 ms.
    await pool.startWith('d', { WEIGHT: '5' });
    const handover = await change('d');
    expect(handover.cause).to.equal('handover');

    // d stops gracefully; the weights tie again, so the oldest, a, leads.
    expect((await pool.member('d').stop()).code).to.equal(0);
    const stop = await change('a');
    expect(stop.cause).to.equal('stop');

    // a resigns and rejoins as the youngest: b leads.
    const resigned = await fetch(`${pool.member('a').url}/resign`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    expect(resigned.status).to.equal(200);
    const resign = await change('b');
    expect(resign.cause).to.equal('resign');

    for (const graceful of [handover, stop, resign]) {
      expect(graceful.leaderlessMs, 'no gap: the claim handed over in one write').to.equal(null);
      expect(graceful.outageMs, 'outage of a graceful change').to.be.a('number').below(1000);
    }

    // b crashes: its lease expires one TTL after its last renewal, and only then may c claim.
    await pool.member('b').kill();
    const crash = await change('c');
    expect(crash.cause).to.equal('expired');
    expect(crash.leaderlessMs, 'gap without a claim').to.be.a('number').below(1000);
    expect(crash.outageMs, 'outage of a crash').to.be.within(
      TTL_SECONDS * 1000,
      TTL_SECONDS * 1000 + 2000,
    );
    console.log(
      `      measured: c saw outages of ${[handover, stop, resign, crash].map((x) => `${x.cause} ${x.outageMs} ms`).join(', ')}; gaps without a claim ${[handover, stop, resign, crash].map((x) => x.leaderlessMs ?? 'none').join(', ')} ms`,
    );

    for (const cause of ['handover', 'stop', 'resign', 'expired']) {
      const count = await metricSample(
        c.url,
        'service_pool_failover_duration_seconds_count',
        `pool="default",cause="${cause}"`,
      );
      expect(count, `failovers counted with cause ${cause}`).to.equal(1);
    }
    expect(
      await metricSample(
        c.url,
        'service_pool_failover_duration_seconds_bucket',
        'le="1",pool="default",cause="expired"',
      ),
      'the crash outage is above 1 s',
    ).to.equal(0);
    // Four changes, each counted; only the crash left the pool without a claim for longer
    // than the zero of a claim handed over in one write.
    expect(
      await metricSample(c.url, 'service_pool_leaderless_seconds_count', 'pool="default"'),
      'every change is counted',
    ).to.equal(4);
    expect(
      await metricSample(
        c.url,
        'service_pool_leaderless_seconds_bucket',
        'le="0.005",pool="default"',
      ),
      'the three handovers had no gap',
    ).to.be.at.least(3);
  });
});
