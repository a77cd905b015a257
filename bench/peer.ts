/**
 * The peers in the same run (issue 6, measurement 3; issue 16): other election libraries on
 * the same etcd cluster as our failover trials, their trials interleaved with ours
 * (bench/failover.ts drives the rounds), so the docs can put their handover times beside ours.
 * The systems are in bench/peerSystems.ts: etcd3's `Election` and Go's
 * `concurrency.Election` through `etcdctl elect`.
 *
 * Three candidates are child processes, so a crash is a real SIGKILL and a graceful stop is
 * what a careful user does: SIGTERM → resign → exit. This process observes the election with
 * etcd3's `election.observe()` and times, on its monotonic clock (`performance.now()`), from
 * the signal to the leader until:
 * - `deletedMs`: a plain watch on the election prefix sees the old leader's key deleted — the
 *   handover as etcd sees it, since the successor's key is already there (what the library
 *   adds on top shows in the next two);
 * - `observedMs`: the observer reports a new leader (what our trials call "new claim in etcd":
 *   a watcher learns who leads);
 * - `electedMs`: the new leader's campaign says it won (its stdout line, read here).
 *
 * A crash trial kills the leader at the phase of its lease renewal cycle that bench/failover.ts
 * gives the round, the same as our pool's trial (bench/crashPhase.ts); the candidates report
 * their renewals on stdout.
 *
 * After each trial the signalled candidate is started again under the same name, and the next
 * trial waits until its campaign key is in etcd (seen by a watch), so every trial starts from
 * three candidates: the leader and two in line behind it.
 *
 * bench/peerPool.ts holds the candidates, bench/peerTrial.ts runs one handover,
 * bench/peerReport.ts renders the section. What blocks: `PeerRun.start` until the candidates
 * campaign, `trial` for one handover, `close` until every candidate has exited.
 */
import type { LocalEtcd } from '../src/demo/localEtcd.js';
import type { Scenario } from './failoverScenarios.js';
import { PeerPool } from './peerPool.js';
import { report, type PeerScenarioReport } from './peerReport.js';
import type { PeerSystem } from './peerSystems.js';
import { peerTrial, type PeerTrialKind, type PeerTrialResult } from './peerTrial.js';
import { ms } from './section.js';

/** The name a peer's scenario goes by: a graceful stop is a resign for every library. */
export function peerScenario(scenario: Scenario<PeerTrialKind>): Scenario<PeerTrialKind> {
  return scenario.kind === 'graceful'
    ? { ...scenario, name: 'graceful (SIGTERM → resign)' }
    : scenario;
}

/** One system's candidates for one scenario, and the trials run on them so far. */
export class PeerRun {
  private readonly results: PeerTrialResult[] = [];

  private constructor(
    readonly system: PeerSystem,
    private readonly scenario: Scenario<PeerTrialKind>,
    private readonly pool: PeerPool,
    private readonly log: (line: string) => void,
  ) {}

  static async start(
    system: PeerSystem,
    etcd: LocalEtcd,
    scenario: Scenario<PeerTrialKind>,
    log: (line: string) => void,
  ): Promise<PeerRun> {
    const pool = await PeerPool.start(system, etcd, scenario.ttlSeconds, log);
    return new PeerRun(system, peerScenario(scenario), pool, log);
  }

  /**
   * Trial `i` (1-based) of the scenario, a crash `phaseMs` after one of the leader's lease
   * renewals (bench/crashPhase.ts); the last leaves the signalled candidate stopped.
   */
  async trial(i: number, phaseMs?: number): Promise<void> {
    const { scenario, pool } = this;
    const r = await peerTrial(pool, scenario.kind, i < scenario.trials, phaseMs);
    this.results.push(r);
    // Observed, but its campaign silent: the same finding as in settledLeader.
    if (r.observedLeader !== undefined && r.electedMs === undefined) {
      pool.unelected.add(r.observedLeader);
    }
    this.log(
      `[${this.system.key} ${scenario.name} ${i}/${scenario.trials}] ${r.leader} → ${r.observedLeader ?? '?'}: ` +
        `key deleted ${ms(r.deletedMs)}, observed ${ms(r.observedMs)}, elected ${ms(r.electedMs)}` +
        (r.resignMs === undefined ? '' : `, resign() ${ms(r.resignMs)}`) +
        (r.phaseMs === undefined ? '' : `, killed ${ms(r.phaseMs)} after a renewal`) +
        ` (${r.exit})`,
    );
  }

  /** Stops the candidates; the scenario's trials, summarized. */
  async close(): Promise<PeerScenarioReport> {
    await this.pool.close();
    return report(this.system, this.scenario, this.results, this.pool.campaignErrors, [
      ...this.pool.unelected,
    ]);
  }
}
