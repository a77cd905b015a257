/**
 * A fresh pool draws every dashboard panel: right after start-up, before any work, forward,
 * failover or resync, each pool metric the dashboard reads already has a series on the
 * members (at 0), so Grafana shows 0 where it would otherwise say "No data".
 */
import { expect } from 'chai';
import { EtcdCluster } from '../support/etcdCluster.js';
import { TestPool } from '../support/pool.js';
import { dashboardQueries, loadDashboard } from './dashboard.js';

/** Metric names of this project that a PromQL expression reads (histograms by their parts). */
function poolMetricNames(expr: string): string[] {
  return [...expr.matchAll(/\bservice_pool_[a-z_]+\b/g)].map(([name]) => name);
}

describe('a fresh pool on the dashboard', function () {
  this.timeout(60_000);
  let etcd: EtcdCluster | undefined;
  let pool: TestPool | undefined;

  after(async () => {
    await pool?.close();
    await etcd?.close();
  });

  it('every pool metric a panel or annotation reads has a series before any work, forward or failover', async () => {
    etcd = await EtcdCluster.start({ size: 1 });
    pool = new TestPool(etcd, { LEASE_TTL_SECONDS: '2' });
    await pool.start(['a', 'b']);
    await pool.agreedLeader();
    const exposed = (
      await Promise.all(
        pool.running().map(async (member) => (await fetch(`${member.url}/metrics`)).text()),
      )
    ).join('\n');
    const missing = dashboardQueries(loadDashboard()).flatMap(({ where, expr }) =>
      poolMetricNames(expr)
        .filter((name) => !new RegExp(`^${name}[{ ]`, 'm').test(exposed))
        .map((name) => `${where}: ${name}`),
    );
    expect([...new Set(missing)], 'metrics without a series on a fresh pool').to.deep.equal([]);
  });
});
