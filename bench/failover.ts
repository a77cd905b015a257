/**
 * Failover trials against a real etcd cluster and pool members as child processes running the
 * built CLI (issue 6, measurements 1 and 2).
 *
 * What a trial measures, all on this process's monotonic clock (`performance.now()`):
 * - `servedMs`: from the signal to the leader until a client looping on another member gets
 *   the first /work answer performed by a member other than the old leader (restart takeover:
 *   by any member, for a call started after the kill);
 * - `claimedMs`: from the signal until a watch on the claim key reports a new claim;
 * - `failed`: client calls that ended between the signal and that first answer without a 200.
 *
 * The client loops one call at a time with no pause on one keep-alive connection (Node's
 * fetch), so the resolution of `servedMs` is one round trip through the follower.
 *
 * The peers (bench/peer.ts: etcd3's Election, Go's through `etcdctl elect`) run the graceful
 * and crash scenarios in the same run, interleaved: each scenario starts our pool and every
 * peer's candidates that can run it, then trial by trial signals ours, then each peer's, so a
 * drift of the shared machine touches every system alike.
 *
 * A crash's time depends on when in the lease renewal cycle the SIGKILL lands (TTL − the time
 * since the last renewal, plus etcd's expiry check): in the crash scenarios trial k of every
 * system is killed at the same phase, k's of a stratified set (bench/crashPhase.ts), after one
 * of its leader's renewals, and each trial records the phase it hit. Graceful and restart
 * trials signal at once.
 *
 * This file runs the scenarios one after the other, each on fresh pools of three
 * (bench/failoverScenarios.ts says which, bench/failoverPool.ts holds the pool,
 * bench/failoverTrial.ts runs one trial, bench/failoverReport.ts renders the section,
 * bench/handoverComparison.ts the systems side by side).
 * What blocks: each scenario until its trials are done and its pools have stopped.
 */
import type { LocalEtcd } from '../src/demo/localEtcd.js';
import { ms, type Benchmark } from './section.js';
import { crashPhases } from './crashPhase.js';
import { BenchPool } from './failoverPool.js';
import { failoverSection, report, type ScenarioReport } from './failoverReport.js';
import { scenarios, type Scenario, type TrialKind } from './failoverScenarios.js';
import { failoverTrial, type TrialResult } from './failoverTrial.js';
import { PeerRun } from './peer.js';
import { peerSection, type PeerScenarioReport } from './peerReport.js';
import { PEER_SYSTEMS } from './peerSystems.js';

const MEMBER_IDS = ['a', 'b', 'c'];

const isPeerKind = (kind: TrialKind): kind is Exclude<TrialKind, 'restart'> => kind !== 'restart';

/** Every peer that can run `scenario`, started; those that started before a failure are in `started`. */
async function startPeers(
  etcd: LocalEtcd,
  scenario: Scenario,
  log: (line: string) => void,
  started: PeerRun[],
): Promise<void> {
  const { kind } = scenario;
  if (!isPeerKind(kind)) return;
  for (const system of PEER_SYSTEMS.filter((s) => s.runs(kind, scenario.ttlSeconds))) {
    started.push(await PeerRun.start(system, etcd, { ...scenario, kind }, log));
  }
}

/**
 * Measurements 1 and 2: graceful, crash and restart-takeover failover of a pool of 3, the
 * peers' graceful and crash handovers interleaved with ours.
 */
export const failover: Benchmark = async ({ etcd, smoke, log, rounds }) => {
  const reports: ScenarioReport[] = [];
  const peerReports: PeerScenarioReport[] = [];
  for (const planned of scenarios(smoke)) {
    const scenario = { ...planned, trials: Math.min(planned.trials, rounds ?? Infinity) };
    const peers: PeerRun[] = [];
    // Side by side (starting takes seconds, and nothing is measured yet); settled, not raced,
    // so that whatever started is stopped below.
    const [ours, theirs] = await Promise.allSettled([
      BenchPool.start(etcd, scenario.ttlSeconds, MEMBER_IDS),
      startPeers(etcd, scenario, log, peers),
    ]);
    const pool = ours.status === 'fulfilled' ? ours.value : undefined;
    const results: TrialResult[] = [];
    try {
      if (ours.status === 'rejected') throw ours.reason;
      if (theirs.status === 'rejected') throw theirs.reason;
      const running = ours.value;
      log(
        `${scenario.name}: ${scenario.trials} trials, pool of ${MEMBER_IDS.length}` +
          (peers.length > 0
            ? `, interleaved with ${peers.map((p) => p.system.key).join(', ')}`
            : ''),
      );
      const phases =
        scenario.kind === 'crash' ? crashPhases(scenario.trials, scenario.ttlSeconds) : [];
      for (let i = 1; i <= scenario.trials; i++) {
        const phaseMs = phases[i - 1];
        const result = await failoverTrial(running, scenario.kind, MEMBER_IDS.length, phaseMs);
        results.push(result);
        log(
          `${scenario.name} ${i}/${scenario.trials}: ${result.leader} → ${result.servedBy ?? '?'}, ` +
            `served ${ms(result.servedMs)}, claimed ${ms(result.claimedMs)}, ` +
            `failed ${result.failed}/${result.calls} calls` +
            (result.phaseMs === undefined ? '' : `, killed ${ms(result.phaseMs)} after a renewal`),
        );
        for (const peer of peers) await peer.trial(i, phaseMs);
      }
    } finally {
      await pool?.close();
      for (const peer of peers) peerReports.push(await peer.close());
    }
    reports.push(report(scenario, results));
  }
  return [failoverSection(reports, peerReports), peerSection(peerReports)];
};
