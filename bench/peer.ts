/**
 * The peer in the same run (issue 6, measurement 3): etcd3's own `Election` — campaign, resign,
 * observe — on the same etcd cluster as our failover trials, so the docs can put the library's
 * handover times beside ours.
 *
 * Three candidates are child processes (bench/peerCandidate.ts), so a crash is a real SIGKILL
 * and a graceful stop is what a careful user writes: SIGTERM → `resign()` (a lease revoke) →
 * exit. This process observes the election with the library's own `election.observe()` and
 * times, on its monotonic clock (`performance.now()`), from the signal to the leader until:
 * - `deletedMs`: a plain watch on the election prefix sees the old leader's key deleted — the
 *   handover as etcd sees it, since the successor's key is already there (what the library
 *   adds on top shows in the next two);
 * - `observedMs`: the observer reports a new leader (what our trials call "new claim in etcd":
 *   a watcher learns who leads);
 * - `electedMs`: the new leader's campaign emits `elected` (its stdout line, read here).
 *
 * After each trial the signalled candidate is started again under the same name, and the next
 * trial waits until its campaign key is in etcd (seen by a watch), so every trial starts from
 * three candidates: the leader and two in line behind it.
 *
 * This file runs the scenarios one after the other, each on a fresh pool of three
 * (bench/failoverScenarios.ts says which, bench/peerPool.ts holds the candidates,
 * bench/peerTrial.ts runs one handover, bench/peerReport.ts renders the section).
 * What blocks: each scenario until its trials are done and its candidates have exited.
 */
import type { LocalEtcd } from '../src/demo/localEtcd.js';
import { scenarios as failoverScenarios, type Scenario } from './failoverScenarios.js';
import { CANDIDATE_IDS, PeerPool } from './peerPool.js';
import { peerSection, report, type ScenarioReport } from './peerReport.js';
import { peerTrial, type PeerTrialKind, type PeerTrialResult } from './peerTrial.js';
import { ms, type Benchmark, type Section } from './section.js';

/** Our graceful and crash scenarios, same TTLs and trial counts, so the tables line up. */
function scenarios(smoke: boolean): Scenario<PeerTrialKind>[] {
  return failoverScenarios(smoke).flatMap((s): Scenario<PeerTrialKind>[] => {
    if (s.kind === 'restart') return [];
    if (s.kind === 'graceful') return [{ ...s, kind: s.kind, name: 'graceful (SIGTERM → resign)' }];
    return [{ ...s, kind: s.kind }];
  });
}

async function runScenario(
  etcd: LocalEtcd,
  scenario: Scenario<PeerTrialKind>,
  log: (line: string) => void,
): Promise<ScenarioReport> {
  const pool = await PeerPool.start(etcd, scenario.ttlSeconds, log);
  const results: PeerTrialResult[] = [];
  try {
    for (let i = 1; i <= scenario.trials; i++) {
      // No restart after the last trial: the pool closes next.
      const r = await peerTrial(pool, scenario.kind, i < scenario.trials);
      results.push(r);
      // Observed, but its campaign silent: the same finding as in settledLeader.
      if (r.observedLeader !== undefined && r.electedMs === undefined) {
        pool.unelected.add(r.observedLeader);
      }
      log(
        `[${scenario.name} ${i}/${scenario.trials}] ${r.leader} → ${r.observedLeader ?? '?'}: ` +
          `key deleted ${ms(r.deletedMs)}, observed ${ms(r.observedMs)}, elected ${ms(r.electedMs)}` +
          (r.resignMs === undefined ? '' : `, resign() ${ms(r.resignMs)}`) +
          ` (${r.exit})`,
      );
    }
  } finally {
    await pool.close();
  }
  return report(scenario, results, pool.campaignErrors, [...pool.unelected]);
}

export const peerElection: Benchmark = async (context): Promise<Section> => {
  const reports: ScenarioReport[] = [];
  for (const scenario of scenarios(context.smoke)) {
    context.log(
      `${scenario.name}: ${scenario.trials} trials, ${CANDIDATE_IDS.length} etcd3 Election candidates`,
    );
    reports.push(await runScenario(context.etcd, scenario, context.log));
  }
  return peerSection(reports);
};
