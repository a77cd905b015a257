/**
 * CANDIDATE=false: a member that routes work but never leads (an edge pod, a small machine),
 * under every strategy — with real member processes on a real etcd.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { EtcdCluster } from '../support/etcdCluster.js';
import { eventually, TestPool } from '../support/pool.js';

interface Case {
  strategy: string;
  /** The pool's settings. */
  env: Record<string, string>;
  /** What would make the strategy prefer the non-candidate, were it a candidate. */
  edge: Record<string, string>;
  /** What would make the strategy pass a candidate over for the non-candidate. */
  candidate: Record<string, string>;
}

describe('a member with CANDIDATE=false', function () {
  this.timeout(60_000);
  let etcd: EtcdCluster;
  let pool: TestPool | undefined;
  let dir: string;
  const cases: Case[] = [];

  before(async () => {
    etcd = await EtcdCluster.start({ size: 1 });
    dir = await mkdtemp(path.join(os.tmpdir(), 'spl-candidates-'));
    const chooser = path.join(dir, 'chooser.mjs');
    await writeFile(
      chooser,
      'export function selectLeader(members) { return members.find((m) => m.labels.role === "primary") ?? members[0]; }',
    );
    cases.push(
      { strategy: 'oldest', env: {}, edge: {}, candidate: {} },
      {
        strategy: 'weighted',
        env: { ELECTION_STRATEGY: 'weighted' },
        edge: { WEIGHT: '10' },
        candidate: { WEIGHT: '1' },
      },
      {
        strategy: 'avoid',
        env: { ELECTION_STRATEGY: 'avoid', AVOID_LABELS: 'disk=busy' },
        edge: {},
        candidate: { LABELS: 'disk=busy' },
      },
      {
        strategy: 'module',
        env: { ELECTION_STRATEGY: 'module', STRATEGY_MODULE: chooser },
        edge: { LABELS: 'role=primary' },
        candidate: {},
      },
    );
  });

  after(async () => {
    await etcd?.close();
    await rm(dir, { recursive: true, force: true });
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

  for (const strategy of ['oldest', 'weighted', 'avoid', 'module']) {
    it(`${strategy}: the oldest member, a non-candidate the strategy would prefer, never leads; with only it left the pool has no leader and says why; a candidate that joins leads`, async () => {
      const { env, edge, candidate } = cases.find((c) => c.strategy === strategy)!;
      pool = new TestPool(etcd, {
        LEASE_TTL_SECONDS: '2',
        PREEMPT_AFTER_MS: '300',
        LEADERLESS_WAIT_MS: '500',
        ...env,
      });
      await pool.startWith('edge', { CANDIDATE: 'false', ...edge });
      await pool.startWith('c1', candidate);
      expect(await pool.agreedLeader()).to.equal('c1');
      // Past the hold-down: a strategy preferring edge would have handed over by now.
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const view = await pool.view('edge');
      expect(view.leader?.id).to.equal('c1');
      expect(view.timeline.map((change) => change.leader)).not.to.include('edge');
      expect(view.self.candidate).to.equal(false);
      expect(view.members.map((m) => [m.id, m.candidate])).to.deep.equal([
        ['edge', false],
        ['c1', true],
      ]);
      expect((await pool.work('edge')).body.performedBy).to.equal('c1');

      await pool.member('c1').kill();
      await eventually(
        'edge sees c1 gone and no leader',
        async () => (await pool!.view('edge')).members.length === 1,
        5000,
      );
      const alone = await pool.view('edge');
      expect(alone.leader).to.equal(null);
      expect(alone.noLeaderReason).to.include('CANDIDATE=false');
      expect((await pool.work('edge')).body.error?.code).to.equal('NO_LEADER');

      await pool.startWith('c2', candidate);
      expect(await pool.agreedLeader()).to.equal('c2');
      expect((await pool.work('edge')).body.performedBy).to.equal('c2');
    });
  }
});
