/**
 * The chaos suite (`make chaos`, part of `make test`): real etcd clusters, real member
 * processes, real signals, a bounded client load on loopback, and the invariant checker.
 * Each scenario's measured outcome is written to test-artifacts/reliability.{json,md}, from
 * which docs/reliability.md is updated.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { expect } from 'chai';
import { EtcdCluster } from '../../src/local/etcdCluster.js';
import { eventually } from '../support/pool.js';
import {
  ChaosPool,
  checkInvariants,
  claimedAfter,
  claimedTerms,
  firstServedAfter,
  Load,
  outcomes,
  type CallRecord,
  type Violation,
} from './harness.js';

const TTL_SECONDS = 2;
const TTL_MS = TTL_SECONDS * 1000;

interface ScenarioResult {
  scenario: string;
  measured: string;
  requests: number;
  outcomes: string;
  violations: number;
}

const results: ScenarioResult[] = [];

describe('chaos: never two leaders, never a lost request', function () {
  this.timeout(120_000);
  let etcd: EtcdCluster | undefined;
  let pool: ChaosPool | undefined;
  let load: Load | undefined;
  let logDir: string;
  const disrupted = new Set<string>();

  beforeEach(async () => {
    logDir = await mkdtemp(path.join(os.tmpdir(), 'spl-chaos-'));
    disrupted.clear();
  });

  afterEach(async function () {
    await load?.stop();
    if (this.currentTest?.state === 'failed' && pool) {
      for (const member of pool.members.values()) {
        console.log(
          `--- ${member.id} ---\n${member.recentOutput().split('\n').slice(-25).join('\n')}`,
        );
      }
    }
    await pool?.close();
    await etcd?.close();
    await rm(logDir, { recursive: true, force: true });
    load = pool = etcd = undefined;
  });

  after(async () => {
    await writeResults(results);
  });

  async function startPool(
    env: Record<string, string> = {},
    ids = ['a', 'b', 'c'],
  ): Promise<ChaosPool> {
    etcd = await EtcdCluster.start({ size: 3 });
    pool = new ChaosPool(
      etcd,
      { LEASE_TTL_SECONDS: String(TTL_SECONDS), LEADERLESS_WAIT_MS: '3000', ...env },
      logDir,
    );
    await pool.start(ids);
    expect(await pool.agreedLeader()).to.equal(ids[0]);
    return pool;
  }

  /** Load on every member that is up and not being disrupted. */
  function startLoad(p: ChaosPool, options: { exclude?: Set<string> } = {}): Load {
    load = new Load(p, {
      targets: () =>
        p
          .running()
          .map((m) => m.id)
          .filter((id) => !options.exclude?.has(id)),
      concurrency: 6,
      ratePerSecond: 60,
      callTimeoutMs: 10_000,
    });
    return load;
  }

  async function finish(
    scenario: string,
    measured: string,
    records: CallRecord[],
  ): Promise<Violation[]> {
    const violations = checkInvariants(records, await claimedTerms(logDir), disrupted);
    results.push({
      scenario,
      measured,
      requests: records.length,
      outcomes: outcomes(records),
      violations: violations.length,
    });
    console.log(`      measured: ${measured}; ${records.length} calls: ${outcomes(records)}`);
    return violations;
  }

  const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  it('1. leader SIGKILL: a new leader within TTL + 1 s; in-flight calls end clearly or succeed', async () => {
    const p = await startPool();
    const work = startLoad(p);
    await pause(1000);
    const killedAt = Date.now();
    disrupted.add('a');
    await p.member('a').kill();
    await eventually(
      'a new leader serves',
      async () => firstServedAfter(work.records, killedAt, 'a') !== undefined,
      TTL_MS + 3000,
    );
    await pause(1000);
    const records = await work.stop();
    const failover = firstServedAfter(records, killedAt, 'a')!;
    const claimed = await claimedAfter(logDir, killedAt);
    const violations = await finish(
      'leader SIGKILL',
      `new claim after ${claimed} ms, first answer by the new leader after ${failover} ms (TTL ${TTL_MS} ms)`,
      records,
    );
    expect(violations).to.deep.equal([]);
    expect(failover).to.be.below(TTL_MS + 1000);
  });

  it('2. leader SIGSTOP for 3×TTL, then SIGCONT: it executes nothing as leader on waking and rejoins as follower', async () => {
    const p = await startPool();
    const paused = new Set(['a']);
    const work = startLoad(p, { exclude: paused });
    await pause(1000);
    const stoppedAt = Date.now();
    p.member('a').signal('SIGSTOP');
    await pause(3 * TTL_MS);
    const failover = firstServedAfter(work.records, stoppedAt, 'a');
    expect(failover, 'a new leader while a was frozen').not.to.equal(undefined);
    p.member('a').signal('SIGCONT');
    paused.clear();
    await eventually('a rejoins as a follower', async () => {
      const view = await p.view('a');
      return view.self.ready && !view.self.isLeader && view.leader?.id === 'b';
    });
    await pause(1500);
    const records = await work.stop();
    const viaA = records.filter((r) => r.asked === 'a' && r.status === 200);
    expect(viaA.length).to.be.greaterThan(0);
    expect(viaA.every((r) => r.body.performedBy === 'b')).to.equal(true);
    const claimed = await claimedAfter(logDir, stoppedAt);
    const violations = await finish(
      'leader SIGSTOP 3×TTL, SIGCONT',
      `new claim after ${claimed} ms, first answer by the new leader after ${failover} ms; on SIGCONT a rejoined as follower`,
      records,
    );
    expect(violations).to.deep.equal([]);
  });

  it('3. leader cut off from etcd: it stops acting before etcd expires its lease; after the heal, one leader', async () => {
    const p = await startPool();
    const work = startLoad(p);
    await pause(1000);
    const cutAt = Date.now();
    p.cutFromEtcd('a');
    let stoppedActingAt = 0;
    await eventually(
      'a stops acting as leader',
      async () => {
        const stopped = !(await p.view('a')).self.isLeader;
        if (stopped) stoppedActingAt = Date.now();
        return stopped;
      },
      TTL_MS + 2000,
    );
    await eventually(
      'a new leader serves',
      async () => firstServedAfter(work.records, cutAt, 'a') !== undefined,
      TTL_MS + 5000,
    );
    const failover = firstServedAfter(work.records, cutAt, 'a')!;
    p.healToEtcd('a');
    const leader = await p.agreedLeader(15_000);
    const leaders = await Promise.all(
      p.running().map(async (m) => (await p.view(m.id)).self.isLeader),
    );
    await pause(1000);
    const records = await work.stop();
    const claimed = (await claimedAfter(logDir, cutAt))!;
    const violations = await finish(
      'leader cut off from etcd (proxy blackhole)',
      `old leader stopped acting after ${stoppedActingAt - cutAt} ms, new claim after ${claimed} ms, first answer by the new leader after ${failover} ms`,
      records,
    );
    expect(violations).to.deep.equal([]);
    expect(stoppedActingAt - cutAt).to.be.below(TTL_MS);
    expect(stoppedActingAt - cutAt).to.be.below(claimed);
    expect(leader).to.equal('b');
    expect(leaders.filter(Boolean)).to.have.length(1);
  });

  it('4. one etcd member killed: no leader change, no failed call', async () => {
    const p = await startPool({ LEASE_TTL_SECONDS: '5' });
    const work = startLoad(p);
    await pause(1000);
    const raftLeader = (await etcd!.raftLeader()) ?? 0;
    await etcd!.killMember(raftLeader);
    await pause(3000);
    const records = await work.stop();
    const terms = new Set(records.filter((r) => r.status === 200).map((r) => r.body.term));
    const violations = await finish(
      'one etcd member (the raft leader) SIGKILLed',
      `leader terms seen: ${[...terms].join(', ')}`,
      records,
    );
    expect(violations).to.deep.equal([]);
    expect(terms.size).to.equal(1);
    expect(records.every((r) => r.status === 200)).to.equal(true);
  });

  it('5. two of three etcd members killed: not ready within TTL, the leader stops, /work 503; quorum back: one leader within 5 s', async () => {
    const p = await startPool();
    const work = startLoad(p);
    await pause(1000);
    const lostAt = Date.now();
    await Promise.all([etcd!.killMember(1), etcd!.killMember(2)]);
    const notReadyAfter: number[] = [];
    for (const member of p.running()) {
      await eventually(
        `${member.id} turns not ready`,
        async () => {
          const res = await fetch(`${member.url}/readyz`, { signal: AbortSignal.timeout(1000) });
          if (res.status !== 503) return false;
          notReadyAfter.push(Date.now() - lostAt);
          return true;
        },
        3 * TTL_MS,
      );
    }
    await eventually(
      'the leader stops acting',
      async () => !(await p.view('a')).self.isLeader,
      TTL_MS + 1000,
    );
    const during = await p.work('b', 'during');
    expect(during.status).to.equal(503);
    expect(during.body.error?.code).to.equal('NO_LEADER');

    const backAt = Date.now();
    await Promise.all([
      etcd!.startMember(1, { waitHealthy: false }),
      etcd!.startMember(2, { waitHealthy: false }),
    ]);
    await eventually(
      'one leader serves again',
      async () => firstServedAfter(work.records, backAt, undefined) !== undefined,
      10_000,
    );
    const recovered = firstServedAfter(work.records, backAt, undefined)!;
    await p.agreedLeader(10_000);
    await pause(1000);
    const records = await work.stop();
    const violations = await finish(
      'quorum lost (2 of 3 etcd members SIGKILLed), then restored',
      `not ready after ${Math.max(...notReadyAfter)} ms; serving again ${recovered} ms after quorum returned`,
      records,
    );
    expect(violations).to.deep.equal([]);
    expect(Math.max(...notReadyAfter)).to.be.below(TTL_MS + 3000);
    expect(recovered).to.be.below(5000);
  });

  it('6. the whole etcd cluster restarted with its data: one leader again, no repeated ticket', async () => {
    const p = await startPool();
    const work = startLoad(p);
    await pause(1000);
    await etcd!.stopAll();
    await pause(TTL_MS);
    const backAt = Date.now();
    await etcd!.startAll();
    await eventually(
      'one leader serves again',
      async () => firstServedAfter(work.records, backAt, undefined) !== undefined,
      15_000,
    );
    const recovered = firstServedAfter(work.records, backAt, undefined)!;
    await p.agreedLeader(10_000);
    await pause(1000);
    const records = await work.stop();
    const violations = await finish(
      'whole etcd cluster stopped and restarted with its data',
      `serving again ${recovered} ms after restart`,
      records,
    );
    expect(violations).to.deep.equal([]);
  });

  it('7. a member whose watch fell behind a compaction resyncs and agrees with the others', async () => {
    const p = await startPool({ LEASE_TTL_SECONDS: '5' });
    const resyncsBefore = await resyncCount(p, 'c');
    p.cutFromEtcd('c');
    disrupted.add('b');
    await p.member('b').stop();
    await p.startMember('d');
    await etcd!.compact();
    const healedAt = Date.now();
    p.healToEtcd('c');
    let agreedAfter = 0;
    await eventually(
      'c sees the same pool as a',
      async () => {
        const [a, c] = await Promise.all([p.view('a'), p.view('c')]);
        const same =
          JSON.stringify(a.members.map((m) => m.memberKey)) ===
          JSON.stringify(c.members.map((m) => m.memberKey));
        if (same && c.leader?.id === 'a') agreedAfter = Date.now() - healedAt;
        return same && c.leader?.id === 'a';
      },
      15_000,
    );
    const resyncsAfter = await resyncCount(p, 'c');
    const answer = await p.work('c');
    const records: CallRecord[] = [{ asked: 'c', startedAt: 0, endedAt: 0, ...answer }];
    const violations = await finish(
      "member's watch behind a compaction",
      `agreed ${agreedAfter} ms after reconnecting; resyncs ${resyncsBefore} → ${resyncsAfter}`,
      records,
    );
    expect(violations).to.deep.equal([]);
    expect(resyncsAfter).to.be.greaterThan(resyncsBefore);
    expect((await p.view('c')).members.map((m) => m.id)).to.deep.equal(['a', 'c', 'd']);
  });

  it('8. rolling restart of every member under load: zero non-2xx answers', async () => {
    const p = await startPool({ LEASE_TTL_SECONDS: '5' });
    const stopping = new Set<string>();
    const work = startLoad(p, { exclude: stopping });
    await pause(1000);
    for (const id of ['a', 'b', 'c']) {
      // Like a Service taking a terminating pod out of its endpoints: no new calls to it.
      stopping.add(id);
      disrupted.add(id);
      const exit = await p.member(id).stop();
      expect(exit.code).to.equal(0);
      await p.startMember(id);
      stopping.delete(id);
      await pause(500);
    }
    await p.agreedLeader();
    await pause(1000);
    const records = await work.stop();
    const failed = records.filter((r) => r.status !== 200);
    const violations = await finish(
      'rolling restart (SIGTERM, wait, start) of a, b, c',
      `${failed.length} non-2xx`,
      records,
    );
    expect(violations).to.deep.equal([]);
    expect(failed, JSON.stringify(failed.slice(0, 3))).to.deep.equal([]);
  });

  it('9. restart storm: all members SIGKILLed and restarted together, five times: one leader each time', async () => {
    const p = await startPool();
    const records: CallRecord[] = [];
    const leaders: string[] = [];
    for (let round = 0; round < 5; round++) {
      for (const id of ['a', 'b', 'c']) disrupted.add(id);
      await Promise.all(['a', 'b', 'c'].map((id) => p.member(id).kill()));
      await Promise.all(['a', 'b', 'c'].map((id) => p.startMember(id)));
      leaders.push(await p.agreedLeader(10_000));
      for (const id of ['a', 'b', 'c']) {
        const startedAt = Date.now();
        const answer = await p.work(id, round);
        records.push({ asked: id, startedAt, endedAt: Date.now(), ...answer });
      }
      const isLeader = await Promise.all(
        ['a', 'b', 'c'].map(async (id) => (await p.view(id)).self.isLeader),
      );
      expect(isLeader.filter(Boolean), `round ${round}`).to.have.length(1);
    }
    const violations = await finish(
      'restart storm ×5 (all SIGKILLed, restarted together)',
      `leaders per round: ${leaders.join(', ')}`,
      records,
    );
    expect(violations).to.deep.equal([]);
    expect(records.every((r) => r.status === 200)).to.equal(true);
  });
});

async function resyncCount(pool: ChaosPool, id: string): Promise<number> {
  const text = await (await fetch(`${pool.member(id).url}/metrics`)).text();
  return [...text.matchAll(/^service_pool_watch_resyncs_total\{[^}]*\} (\d+)/gm)].reduce(
    (sum, m) => sum + Number(m[1]),
    0,
  );
}

async function writeResults(results: ScenarioResult[]): Promise<void> {
  const dir = path.resolve('test-artifacts');
  await mkdir(dir, { recursive: true });
  const etcdVersion = execFileSync('etcd', ['--version']).toString().split('\n')[0];
  const machine = `${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${etcdVersion}, ${os.type()} ${os.release()}`;
  const date = new Date().toISOString();
  await writeFile(
    path.join(dir, 'reliability.json'),
    JSON.stringify({ date, machine, results }, null, 2),
  );
  const rows = results.map(
    (r) => `| ${r.scenario} | ${r.measured} | ${r.requests} | ${r.outcomes} | ${r.violations} |`,
  );
  const table = [
    `Run ${date} on ${machine}; command: \`make chaos\`.`,
    '',
    '| scenario | measured | calls | outcomes | invariant violations |',
    '|---|---|---|---|---|',
    ...rows,
    '',
  ].join('\n');
  await writeFile(path.join(dir, 'reliability.md'), table);
}
