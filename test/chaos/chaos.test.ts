/**
 * The chaos suite (`make chaos`, part of `make test`): real etcd clusters, real member
 * processes, real signals, a bounded client load on loopback, and the invariant checker.
 * Each scenario's measured outcome is written to test-artifacts/reliability.{json,md}, from
 * which docs/reliability.md is updated.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { expect } from 'chai';
import { Etcd3 } from 'etcd3';
import { restoreSnapshot, saveSnapshot } from '../support/etcdBackup.js';
import { EtcdCluster } from '../support/etcdCluster.js';
import { freePorts } from '../../src/demo/ports.js';
import { eventually, removeEtcdMember } from '../support/pool.js';
import { flood } from '../support/flood.js';
import {
  ChaosPool,
  checkAcrossRestore,
  checkInvariants,
  checkLogs,
  fakeWallClock,
  claimedAfter,
  claimedTerms,
  claims,
  firstServedAfter,
  Load,
  outcomes,
  type CallRecord,
  type Violation,
} from './harness.js';

const TTL_SECONDS = 2;
const TTL_MS = TTL_SECONDS * 1000;
const LEADERLESS_WAIT_MS = 3000;

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
    etcdArgs: string[] = [],
  ): Promise<ChaosPool> {
    etcd = await EtcdCluster.start({ size: 3, extraArgs: etcdArgs });
    pool = new ChaosPool(
      etcd,
      {
        LEASE_TTL_SECONDS: String(TTL_SECONDS),
        LEADERLESS_WAIT_MS: String(LEADERLESS_WAIT_MS),
        ...env,
      },
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
    /** When etcd was restored from an older backup during the scenario. */
    restoredAt?: number,
  ): Promise<Violation[]> {
    const options = { leaderlessWaitMs: LEADERLESS_WAIT_MS };
    const violations = [
      ...(restoredAt === undefined
        ? checkInvariants(records, await claimedTerms(logDir), disrupted, options)
        : checkAcrossRestore(records, await claims(logDir), restoredAt, disrupted, options)),
      ...(await checkLogs(logDir)),
    ];
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

  interface RenewalMargins {
    buckets: Map<string, number>;
    count: number;
    below: { '0.5': number; '1': number };
    lowest: string;
  }

  /**
   * The lease renewals in a member's /metrics (service_pool_lease_renewal_time_left_seconds),
   * less those of `before`: how many, how many landed with less than 0.5 and 1 s left, and
   * the lowest bucket any fell in.
   */
  function renewalMargins(metrics: string, before?: RenewalMargins): RenewalMargins {
    const buckets = new Map<string, number>();
    for (const [, le, count] of metrics.matchAll(
      /^service_pool_lease_renewal_time_left_seconds_bucket\{le="([^"]+)",pool="default"\} (\d+)/gm,
    )) {
      buckets.set(le!, Number(count) - (before?.buckets.get(le!) ?? 0));
    }
    const count = buckets.get('+Inf') ?? 0;
    const lowest = [...buckets].find(([, n]) => n > 0)?.[0];
    return {
      buckets,
      count,
      below: { '0.5': buckets.get('0.5') ?? 0, '1': buckets.get('1') ?? 0 },
      lowest: lowest === undefined ? 'none' : `≤ ${lowest} s`,
    };
  }

  it('1. leader SIGKILL: a new leader within TTL + 1 s; in-flight calls end clearly or succeed', async () => {
    const p = await startPool();
    const work = startLoad(p);
    await pause(1000);
    const killedAt = Date.now();
    disrupted.add('a');
    await p.member('a').kill();
    await eventually(
      'a new leader serves',
      () => firstServedAfter(work.records, killedAt, 'a') !== undefined,
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
      () => firstServedAfter(work.records, cutAt, 'a') !== undefined,
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
      () => firstServedAfter(work.records, backAt, undefined) !== undefined,
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
      () => firstServedAfter(work.records, backAt, undefined) !== undefined,
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
    // Work through every member all along, c included while it is cut off: it forwards to a.
    const stopping = new Set<string>();
    const work = startLoad(p, { exclude: stopping });
    p.cutFromEtcd('c');
    // Like a Service taking a terminating pod out of its endpoints: no new calls to b.
    stopping.add('b');
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
    const records = await work.stop();
    expect(records.filter((r) => r.asked === 'c').length, 'calls through c').to.be.above(0);
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

  it('10. etcd out of space (NOSPACE): every member keeps its lease, /work says NOSPACE and the fix; once fixed the pool serves again, no restart', async () => {
    const p = await startPool(
      { TICKET_BLOCK_SIZE: '20' },
      ['a', 'b', 'c'],
      [`--quota-backend-bytes=${8 * 1024 * 1024}`],
    );
    const keys = async () =>
      Promise.all(p.running().map(async (m) => (await p.view(m.id)).self.memberKey));
    const registered = await keys();
    const work = startLoad(p);
    await pause(500);
    const client = new Etcd3({ hosts: etcd!.endpoints });
    let filledAt = 0;
    try {
      const value = Buffer.alloc(512 * 1024, 'x');
      for (let i = 0; filledAt === 0 && i < 64; i++) {
        await client
          .put(`/filler/${i}`)
          .value(value)
          .catch((error: unknown) => {
            if (String(error).includes('database space exceeded')) filledAt = Date.now();
            else throw error;
          });
      }
      expect(filledAt, 'etcd raised its NOSPACE alarm').to.be.greaterThan(0);
      // Longer than etcd3 takes to call a lease lost (2×TTL), with failing writes all along.
      await pause(3 * TTL_MS + 1000);
      expect(await keys(), 'every member kept its registration').to.deep.equal(registered);
      const ready = await Promise.all(
        p.running().map(async (m) => (await fetch(`${m.url}/readyz`)).status),
      );
      expect(ready, 'every member stays ready').to.deep.equal([200, 200, 200]);
      const refused = work.records.filter((r) => r.body.error?.code === 'ETCD_UNAVAILABLE');
      expect(refused.length, 'answers refused for lack of space').to.be.greaterThan(0);
      for (const record of refused) {
        expect(record.body.error!.message).to.include('NOSPACE');
        expect(record.body.error!.message, 'the fix').to.include('alarm disarm');
      }

      const fixedAt = Date.now();
      await client.delete().prefix('/filler/');
      await etcd!.compact();
      await etcd!.etcdctl(['defrag', '--cluster']);
      await etcd!.etcdctl(['alarm', 'disarm']);
      await eventually(
        'the pool serves again',
        () => firstServedAfter(work.records, fixedAt, undefined) !== undefined,
        10_000,
      );
      const recovered = firstServedAfter(work.records, fixedAt, undefined)!;
      await pause(500);
      const records = await work.stop();
      expect(await claimedAfter(logDir, filledAt - 500), 'no leader change').to.equal(undefined);
      const violations = await finish(
        'etcd out of space (NOSPACE alarm), then fixed (compact, defrag, alarm disarm)',
        `${3 * TTL_MS + 1000} ms under NOSPACE: every lease kept, ${refused.length} calls refused with NOSPACE; serving again ${recovered} ms after the fix began`,
        records,
      );
      expect(violations).to.deep.equal([]);
    } finally {
      client.close();
    }
  });

  it('11. a frozen member whose registration a new process with its MEMBER_ID took over yields on waking: one member per id, exit 3', async () => {
    const p = await startPool();
    const frozen = p.member('c');
    disrupted.add('c');
    const work = startLoad(p, { exclude: new Set(['c']) });
    frozen.signal('SIGSTOP');
    // The frozen process still holds its port: the new one listens elsewhere.
    const successor = await p.startMember('c', (await freePorts(1))[0]);
    await eventually(
      'the new c is the only c',
      async () => (await p.view('a')).members.filter((m) => m.id === 'c').length === 1,
      3 * TTL_MS,
    );
    const wokenAt = Date.now();
    frozen.signal('SIGCONT');
    const exit = await frozen.exited;
    const yieldedAfter = Date.now() - wokenAt;
    expect(exit.code, frozen.recentOutput()).to.equal(3);
    expect(frozen.recentOutput()).to.include(
      'another process with our MEMBER_ID took over our registration; yielding to it',
    );
    await pause(2 * TTL_MS);
    const members = (await p.view('a')).members.map((m) => m.id);
    expect(members.sort()).to.deep.equal(['a', 'b', 'c']);
    expect((await p.view('c')).self.memberKey).to.equal(
      (await p.view('a')).members.find((m) => m.id === 'c')!.memberKey,
    );
    expect(successor.running).to.equal(true);
    const records = await work.stop();
    const violations = await finish(
      'a member SIGSTOPped, a new process with its MEMBER_ID takes over, SIGCONT',
      `the woken process yielded (exit 3) ${yieldedAfter} ms after SIGCONT; one member per id`,
      records,
    );
    expect(violations).to.deep.equal([]);
  });

  it('12. etcd restored from an older backup while the pool runs: no ticket repeats, one leader again, without restarts', async () => {
    const p = await startPool({ TICKET_BLOCK_SIZE: '50' });
    const work = startLoad(p);
    await pause(1000);
    const snapshot = path.join(logDir, 'etcd.snapshot');
    await saveSnapshot(etcd!, snapshot);
    // After the backup: a graceful handover (the successor reserves the next block), a
    // restart of c (the backup holds its previous incarnation's key), more blocks — all lost
    // by the restore.
    disrupted.add('a');
    disrupted.add('c');
    await p.member('a').stop();
    await p.member('c').stop();
    await p.startMember('c');
    await pause(3000);
    const highestBefore = Math.max(
      ...work.records.filter((r) => r.status === 200).map((r) => r.body.ticket!),
    );
    const restoredAt = Date.now();
    await restoreSnapshot(etcd!, snapshot);
    const backAt = Date.now();
    await eventually(
      'the pool serves again',
      () => firstServedAfter(work.records, backAt, undefined) !== undefined,
      20_000,
    );
    const recovered = firstServedAfter(work.records, backAt, undefined)!;
    const leader = await p.agreedLeader(10_000);
    await pause(2000);
    const records = await work.stop();
    expect(
      p.running().map((m) => m.id),
      'no member yielded to its own dead predecessor',
    ).to.deep.equal(['b', 'c']);
    const ready = await Promise.all(
      p.running().map(async (m) => (await fetch(`${m.url}/readyz`)).status),
    );
    expect(ready, 'every member registered and ready again').to.deep.equal([200, 200]);
    const lowestAfter = Math.min(
      ...records
        .filter((r) => r.status === 200 && r.startedAt >= backAt)
        .map((r) => r.body.ticket!),
    );
    // The raised mark is in etcd, not only in the survivors' memory: a member that never saw
    // the old marks, alone in the pool, issues above them too.
    const highestSoFar = Math.max(
      ...records.filter((r) => r.status === 200).map((r) => r.body.ticket!),
    );
    await p.member('b').stop();
    await p.member('c').stop();
    await p.startMember('d');
    const fresh = await p.work('d');
    expect(fresh.status).to.equal(200);
    expect(fresh.body.ticket, 'the first ticket of a member with no memory').to.be.above(
      highestSoFar,
    );
    const violations = await finish(
      'etcd restored from a backup taken before a handover, a member restart and several ticket blocks',
      `etcd restored in ${backAt - restoredAt} ms; serving again ${recovered} ms after etcd was back (leader ${leader}); highest ticket before ${highestBefore}, lowest after ${lowestAfter}; a fresh member's first ${fresh.body.ticket}`,
      records,
      restoredAt,
    );
    expect(violations).to.deep.equal([]);
    expect(lowestAfter).to.be.above(highestBefore);
  });

  it('13. a leader whose ADVERTISE_URL reaches nothing: every call through the others says so after the full wait, and the pool heals once it leaves', async () => {
    etcd = await EtcdCluster.start({ size: 3 });
    const p = (pool = new ChaosPool(
      etcd,
      { LEASE_TTL_SECONDS: String(TTL_SECONDS), LEADERLESS_WAIT_MS: String(LEADERLESS_WAIT_MS) },
      logDir,
    ));
    const [wrongPort] = await freePorts(1);
    await p.startMember('a', undefined, { ADVERTISE_URL: `http://127.0.0.1:${wrongPort}` });
    await p.start(['b', 'c']);
    expect(await p.agreedLeader()).to.equal('a');
    const work = startLoad(p, { exclude: new Set(['a']) });
    await pause(2 * LEADERLESS_WAIT_MS);
    const unreachable = work.records.filter((r) => r.body.error?.code === 'LEADER_UNREACHABLE');
    expect(unreachable.length, 'calls answered LEADER_UNREACHABLE').to.be.greaterThan(0);
    expect(
      work.records.filter((r) => r.status !== 200).map((r) => r.body.error?.code),
      'every call so far',
    ).to.deep.equal(unreachable.map(() => 'LEADER_UNREACHABLE'));
    for (const record of unreachable) {
      expect(record.body.error!.message).to.include(`http://127.0.0.1:${wrongPort}`);
      expect(record.body.error!.message).to.include('ECONNREFUSED');
    }
    const leftAt = Date.now();
    disrupted.add('a');
    await p.member('a').stop();
    await eventually(
      'b serves',
      () => firstServedAfter(work.records, leftAt, 'a') !== undefined,
      5000,
    );
    const healed = firstServedAfter(work.records, leftAt, 'a')!;
    await pause(500);
    const records = await work.stop();
    const violations = await finish(
      'the leader advertises a URL that reaches nothing, then leaves',
      `${unreachable.length} calls answered LEADER_UNREACHABLE with the URL and reason, each after the full wait; served by b ${healed} ms after a left`,
      records,
    );
    expect(violations).to.deep.equal([]);
  });

  it('14. a member whose wall clock steps back an hour while it holds calls: still 503 after LEADERLESS_WAIT_MS, not when etcd returns', async () => {
    const clock = fakeWallClock(path.join(logDir, 'b.faketime'));
    etcd = await EtcdCluster.start({ size: 3 });
    const p = (pool = new ChaosPool(
      etcd,
      { LEASE_TTL_SECONDS: String(TTL_SECONDS), LEADERLESS_WAIT_MS: String(LEADERLESS_WAIT_MS) },
      logDir,
    ));
    await p.start(['a']);
    await p.startMember('b', undefined, clock.env);
    expect(await p.agreedLeader()).to.equal('a');
    // No leader can be elected while etcd is down: calls to b are held for the full wait.
    await etcd.stopAll();
    await pause(TTL_MS + 500);
    const calls = Array.from({ length: 10 }, async (_, i): Promise<CallRecord> => {
      const startedAt = Date.now();
      const answer = await p.work('b', { held: i }, 30_000);
      return { asked: 'b', startedAt, endedAt: Date.now(), ...answer };
    });
    await pause(500);
    clock.step('-1h');
    const records = await Promise.all(calls);
    await etcd.startAll();
    for (const record of records) {
      expect(record.status, JSON.stringify(record.body)).to.equal(503);
      expect(record.endedAt - record.startedAt).to.be.below(LEADERLESS_WAIT_MS + 2000);
    }
    expect(await p.agreedLeader(15_000)).to.be.oneOf(['a', 'b']);
    const took = records.map((r) => r.endedAt - r.startedAt);
    const violations = await finish(
      "a member's wall clock stepped back 1 h while it held calls (etcd down)",
      `answered 503 after ${Math.min(...took)}-${Math.max(...took)} ms (LEADERLESS_WAIT_MS ${LEADERLESS_WAIT_MS})`,
      records,
    );
    expect(violations).to.deep.equal([]);
  });

  for (const variant of ['held for a leader', 'stuck at a frozen leader'] as const) {
    it(`15. SIGTERM to a follower with 200 calls ${variant}: every call is answered before it exits (shutdown 2 s, leaderless wait 10 s)`, async () => {
      const p = await startPool({
        LEASE_TTL_SECONDS: '5',
        LEADERLESS_WAIT_MS: '10000',
        SHUTDOWN_TIMEOUT_MS: '2000',
        FORWARD_TIMEOUT_MS: '10000',
      });
      disrupted.add('a');
      if (variant === 'held for a leader') await p.member('a').kill();
      else p.member('a').signal('SIGSTOP');
      const calls = Array.from({ length: 200 }, async (_, i): Promise<CallRecord> => {
        const startedAt = Date.now();
        const answer = await p.work('b', { i }, 20_000).catch((error: unknown) => ({
          status: 0,
          body: { error: { code: 'CONNECTION_LOST', message: String(error) } },
        }));
        return { asked: 'b', startedAt, endedAt: Date.now(), ...answer };
      });
      await pause(1000);
      const stoppedAt = Date.now();
      const exit = await p.member('b').stop(10_000);
      const exitedAfter = Date.now() - stoppedAt;
      const records = await Promise.all(calls);
      if (variant === 'stuck at a frozen leader') p.member('a').signal('SIGCONT');
      const expected = variant === 'held for a leader' ? 'SHUTTING_DOWN' : 'UPSTREAM_FAILED';
      const answered = records.filter((r) => r.body.error?.code === expected).length;
      const violations = await finish(
        `SIGTERM to a follower with 200 calls ${variant} (SHUTDOWN_TIMEOUT_MS 2000, LEADERLESS_WAIT_MS 10000)`,
        `${answered} of 200 answered ${expected} before the exit (code ${exit.code}, ${exitedAfter} ms after SIGTERM)`,
        records,
      );
      expect(
        records
          .map((r) => `${r.status} ${r.body.error?.code}`)
          .filter((o) => !o.endsWith(expected)),
        'calls without the expected answer',
      ).to.deep.equal([]);
      expect(answered).to.equal(200);
      expect(exitedAfter).to.be.below(2500);
      expect(violations).to.deep.equal([]);
    });
  }

  it('16. a flood of 5000 calls on a follower while the leader is frozen (TTL 2): at most MAX_PENDING_WORK held, the rest shed at once, every call answered, the follower keeps its lease, every renewal landing ≥ 0.5 s (TTL/4) before expiry', async () => {
    const LIMIT = 500;
    const CALLS = 5000;
    // The event loop's longest stall, from a timer inside each member (test/support/loopStall.mjs).
    const p = await startPool({
      MAX_PENDING_WORK: String(LIMIT),
      NODE_OPTIONS: `--import ${path.join(import.meta.dirname, '../support/loopStall.mjs')}`,
    });
    const b = p.member('b');
    const keyBefore = (await p.view('b')).self.memberKey;
    const renewalsBefore = renewalMargins(await (await fetch(`${b.url}/metrics`)).text());
    // Sampled while the flood lasts: b's open descriptors, RSS and lease time left.
    let sampling = true;
    const peak = { fds: 0, rssKb: 0, minLeaseMs: Infinity, pending: 0, loopLagMs: 0 };
    let sampler: Promise<void> | undefined;
    const sample = async () => {
      while (sampling) {
        peak.fds = Math.max(peak.fds, readdirSync(`/proc/${b.pid}/fd`).length);
        const rss = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${b.pid}/status`, 'utf8'));
        peak.rssKb = Math.max(peak.rssKb, Number(rss?.[1] ?? 0));
        const view = await p.view('b').catch(() => undefined);
        if (view) peak.minLeaseMs = Math.min(peak.minLeaseMs, view.self.leaseTimeLeftMs);
        const metrics = await fetch(`${b.url}/metrics`).then(
          (r) => r.text(),
          () => '',
        );
        const pending = /^service_pool_work_pending (\d+)/m.exec(metrics);
        peak.pending = Math.max(peak.pending, Number(pending?.[1] ?? 0));
        // Node's own event-loop delay (prom-client's default metrics, highest since start).
        const lag = /^nodejs_eventloop_lag_max_seconds ([\d.e+-]+)/m.exec(metrics);
        peak.loopLagMs = Math.max(peak.loopLagMs, 1000 * Number(lag?.[1] ?? 0));
        await pause(100);
      }
    };
    // From a process of its own: this one relays the members' etcd traffic (their proxies)
    // and must not be the bottleneck it measures. The leader freezes once that process is
    // loaded, just before the burst: its start-up can outlast a TTL-2 failover.
    const records = await flood({
      url: b.url,
      count: CALLS,
      timeoutMs: 30_000,
      asked: 'b',
      beforeBurst: () => {
        disrupted.add('a');
        p.member('a').signal('SIGSTOP');
        sampler = sample();
      },
    });
    const floodMs =
      Math.max(...records.map((r) => r.endedAt)) - Math.min(...records.map((r) => r.startedAt));
    sampling = false;
    await sampler;
    p.member('a').signal('SIGCONT');
    const shed = records.filter((r) => r.body.error?.code === 'OVERLOADED').length;
    const metrics = await (await fetch(`${b.url}/metrics`)).text();
    const shedCounted = Number(/^service_pool_work_shed_total (\d+)/m.exec(metrics)?.[1]);
    // Renewals during the flood, by the time the lease had left when each landed (etcd's TTL
    // minus the keep-alive's age): none may come close to the lease running out.
    const renewals = renewalMargins(metrics, renewalsBefore);
    const stalls = [...b.recentOutput().matchAll(/^loop stall max (\d+) ms$/gm)];
    const loopStallMs = Number(stalls.at(-1)?.[1] ?? 0);
    const keyAfter = (await p.view('b')).self.memberKey;
    const violations = await finish(
      `a flood of ${CALLS} calls on a follower while the leader is frozen (TTL ${TTL_SECONDS}, MAX_PENDING_WORK ${LIMIT})`,
      `answered ${records.filter((r) => r.status !== 0).length} of ${CALLS} in ${floodMs} ms; held at most ${peak.pending}, shed ${shed} (503 OVERLOADED; the member counted ${shedCounted}); at peak ${peak.fds} fds, RSS ${Math.round(peak.rssKb / 1024)} MiB, event-loop stall ${loopStallMs} ms (prom-client's lag max ${Math.round(peak.loopLagMs)} ms); ${renewals.count} lease renewals, ${renewals.below['0.5']} with < 0.5 s left, ${renewals.below['1']} with < 1 s (lowest bucket ${renewals.lowest}); the lease time left as b's main thread saw it never below ${Math.round(peak.minLeaseMs)} ms`,
      records,
    );
    expect(
      records.filter((r) => r.status === 0),
      'calls without an answer',
    ).to.deep.equal([]);
    expect(peak.pending).to.be.at.most(LIMIT);
    expect(shed).to.be.greaterThan(0);
    expect(shedCounted).to.equal(shed);
    expect(keyAfter, 'b kept its registration').to.equal(keyBefore);
    expect(renewals.count, 'renewals during the flood').to.be.at.least(3);
    expect(renewals.below['0.5'], 'renewals that landed with < 0.5 s left').to.equal(0);
    expect(b.recentOutput()).to.not.include('lease lost');
    // 500 held calls listen to shutdown's signals: a bounded number, not a leak to warn of.
    expect(b.recentOutput()).to.not.include('MaxListenersExceededWarning');
    expect(violations).to.deep.equal([]);
  });

  it('17. the etcd raft leader removed from the cluster (member remove) under load, TTL 2: every member keeps its lease, no failed call', async () => {
    const p = await startPool();
    const keys = async () =>
      Promise.all(p.running().map(async (m) => (await p.view(m.id)).self.memberKey));
    const registered = await keys();
    const work = startLoad(p);
    const leader = await etcd!.raftLeader();
    expect(leader, 'etcd has a raft leader').to.not.equal(undefined);
    const removedAt = Date.now();
    await removeEtcdMember(etcd!, leader!);
    // A removed member shuts itself down; its endpoint then refuses connections.
    await etcd!.stopMember(leader!);
    await pause(3 * TTL_MS);
    const records = await work.stop();
    expect(await keys(), 'every member kept its registration').to.deep.equal(registered);
    const violations = await finish(
      "etcd's raft leader removed from the cluster (member remove) while the pool kept its endpoints",
      `${3 * TTL_MS} ms after the removal: every lease kept, leader ${await p.agreedLeader()}`,
      records,
    );
    expect(records.filter((r) => r.status !== 200 && r.startedAt >= removedAt)).to.deep.equal([]);
    expect(violations).to.deep.equal([]);
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
