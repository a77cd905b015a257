/**
 * Several pools per process, the leader strategies of the Elixir demo's README, and simple vs
 * tracked work — with real member processes on a real etcd.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { EtcdCluster } from '../support/etcdCluster.js';
import { eventually, metricSample, TestPool, type PoolView } from '../support/pool.js';

/** A pool that also reads the per-pool routes. */
class StrategyPool extends TestPool {
  async pools(id: string): Promise<PoolView[]> {
    return (await (await fetch(`${this.member(id).url}/pools`)).json()) as PoolView[];
  }

  async leaderOf(id: string, pool: string): Promise<string | undefined> {
    const view = (await (await fetch(`${this.member(id).url}/pools/${pool}`)).json()) as PoolView;
    return view.leader?.id;
  }
}

describe('several pools and leader strategies', function () {
  this.timeout(60_000);
  let etcd: EtcdCluster;
  let pool: StrategyPool | undefined;
  let dir: string;

  before(async () => {
    etcd = await EtcdCluster.start({ size: 1 });
    dir = await mkdtemp(path.join(os.tmpdir(), 'spl-strategies-'));
  });

  after(async () => {
    await etcd?.close();
    await rm(dir, { recursive: true, force: true });
  });

  afterEach(async () => {
    await pool?.close();
    pool = undefined;
  });

  it('weighted: a heavier member that joins takes over after the hold-down, without flapping', async () => {
    pool = new StrategyPool(etcd, {
      LEASE_TTL_SECONDS: '2',
      ELECTION_STRATEGY: 'weighted',
      PREEMPT_AFTER_MS: '500',
    });
    await pool.startWith('small', { WEIGHT: '1' });
    expect(await pool.agreedLeader()).to.equal('small');
    await pool.startWith('big', { WEIGHT: '8' });
    const joinedAt = Date.now();
    await eventually(
      'big leads',
      async () => (await pool!.view('small')).leader?.id === 'big',
      5000,
    );
    expect(Date.now() - joinedAt).to.be.at.least(400);
    await pool.startWith('medium', { WEIGHT: '4' });
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const view = await pool.view('medium');
    expect(view.leader?.id).to.equal('big');
    expect(
      view.timeline.filter((change) => change.leader !== null).map((c) => c.leader),
    ).to.deep.equal(['big']);
  });

  it('avoid: a member carrying an avoided label does not lead while another can', async () => {
    pool = new StrategyPool(etcd, {
      LEASE_TTL_SECONDS: '2',
      ELECTION_STRATEGY: 'avoid',
      AVOID_LABELS: 'disk=busy',
      PREEMPT_AFTER_MS: '300',
    });
    await pool.startWith('a', { LABELS: 'disk=busy,zone=z1' });
    expect(await pool.agreedLeader(), 'alone, a leads despite its label').to.equal('a');
    await pool.startWith('b', { LABELS: 'zone=z2' });
    await eventually('b leads', async () => (await pool!.view('a')).leader?.id === 'b', 5000);
    expect((await pool.work('a')).body.performedBy).to.equal('b');
  });

  it('two pools whose leaders avoid each other end up on different members', async () => {
    pool = new StrategyPool(etcd, {
      LEASE_TTL_SECONDS: '2',
      POOLS: 'reports,billing',
      ELECTION_STRATEGY: 'avoid',
      AVOID_POOLS: 'reports,billing',
      PREEMPT_AFTER_MS: '300',
    });
    await pool.start(['a', 'b', 'c']);
    let leaders: (string | undefined)[] = [];
    await eventually(
      'different leaders, agreed by all',
      async () => {
        const views = await Promise.all(['a', 'b', 'c'].map((id) => pool!.pools(id)));
        leaders = views[0]!.map((v) => v.leader?.id);
        const agreed = views.every(
          (v) => JSON.stringify(v.map((p) => p.leader?.id)) === JSON.stringify(leaders),
        );
        return agreed && leaders.every(Boolean) && leaders[0] !== leaders[1];
      },
      10_000,
    );
    const [reports, billing] = leaders;
    expect((await pool.work('c')).body.performedBy, '/work is the first pool').to.equal(reports);
    const viaBilling = await fetch(`${pool.member('c').url}/pools/billing/work?payload=x`);
    expect(((await viaBilling.json()) as { performedBy: string }).performedBy).to.equal(billing);
    expect((await fetch(`${pool.member('c').url}/pools/payroll/work`)).status).to.equal(404);
  });

  it('a member leading two pools that avoid each other hands one over when a second member joins, and nothing swaps back', async () => {
    pool = new StrategyPool(etcd, {
      LEASE_TTL_SECONDS: '2',
      POOLS: 'x,y',
      ELECTION_STRATEGY: 'avoid',
      AVOID_POOLS: 'x,y',
      PREEMPT_AFTER_MS: '300',
    });
    await pool.start(['a']);
    await eventually(
      'a leads both',
      async () => (await pool!.pools('a')).every((v) => v.leader?.id === 'a'),
      5000,
    );
    await pool.startMember('b');
    let leaders = '';
    await eventually(
      'the pools have different leaders',
      async () => {
        const views = await pool!.pools('b');
        leaders = views.map((v) => v.leader?.id ?? '-').join();
        return views.every((v) => v.leader) && views[0]!.leader?.id !== views[1]!.leader?.id;
      },
      10_000,
    );
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const views = await pool.pools('b');
    expect(views.map((v) => v.leader?.id ?? '-').join(), 'leaders stay put').to.equal(leaders);
    const changes = views.map((v) => v.timeline.filter((c) => c.leader !== null).length);
    expect(Math.max(...changes), `leader changes seen by b: ${changes.join(', ')}`).to.be.at.most(
      2,
    );
  });

  it('a strategy module chooses the leader; one that throws falls back to the oldest, logged and counted', async () => {
    const chooser = path.join(dir, 'chooser.mjs');
    await writeFile(
      chooser,
      'export function selectLeader(members) { return members.find((m) => m.labels.role === "primary") ?? members[0]; }',
    );
    pool = new StrategyPool(etcd, {
      LEASE_TTL_SECONDS: '2',
      ELECTION_STRATEGY: 'module',
      STRATEGY_MODULE: chooser,
    });
    await pool.startWith('a', {});
    await pool.startWith('b', { LABELS: 'role=primary' });
    await eventually('b leads', async () => (await pool!.view('a')).leader?.id === 'b', 8000);
    await pool.close();

    const broken = path.join(dir, 'broken.mjs');
    await writeFile(broken, 'export function selectLeader() { throw new Error("no idea"); }');
    pool = new StrategyPool(etcd, {
      LEASE_TTL_SECONDS: '2',
      ELECTION_STRATEGY: 'module',
      STRATEGY_MODULE: broken,
    });
    await pool.start(['x', 'y']);
    expect(await pool.agreedLeader()).to.equal('x');
    expect(
      await metricSample(
        pool.member('y').url,
        'service_pool_strategy_fallbacks_total',
        'pool="default",reason="threw"',
      ),
    ).to.be.greaterThan(0);
    expect(pool.member('y').recentOutput()).to.include('leader strategy failed; using oldest');
    expect(pool.running()).to.have.length(2);
  });

  it('/simple-work reads etcd on every call; /work makes no etcd request at all', async () => {
    pool = new StrategyPool(etcd, { LEASE_TTL_SECONDS: '5', RECONCILE_INTERVAL_MS: '600000' });
    await pool.start(['a', 'b']);
    expect(await pool.agreedLeader()).to.equal('a');
    const url = pool.member('b').url;
    const reads = () => metricSample(url, 'service_pool_etcd_requests_total', 'operation="range"');
    const txns = () => metricSample(url, 'service_pool_etcd_requests_total', 'operation="txn"');

    const [rangeBefore, txnBefore] = [await reads(), await txns()];
    for (let i = 0; i < 20; i++) expect((await pool.work('b', i)).body.performedBy).to.equal('a');
    expect(
      [(await reads()) - rangeBefore, (await txns()) - txnBefore],
      'etcd requests of 20 /work',
    ).to.deep.equal([0, 0]);

    const simpleBefore = await reads();
    for (let i = 0; i < 20; i++) {
      const res = await fetch(`${url}/simple-work?payload=${i}`);
      expect(((await res.json()) as { performedBy: string }).performedBy).to.equal('a');
    }
    expect((await reads()) - simpleBefore, 'etcd ranges of 20 /simple-work').to.equal(20);
    // The same, as the member attributes them: requests sent while serving each route; what
    // it sends in the background (keep-alives, watch, reconcile) is not counted there.
    const forRoute = (route: string) =>
      metricSample(url, 'service_pool_work_etcd_requests_total', `route="${route}"`);
    expect([await forRoute('work'), await forRoute('simple-work')]).to.deep.equal([0, 20]);
  });
});
