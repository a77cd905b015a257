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
 * This file runs the scenarios one after the other, each on a fresh pool of three
 * (bench/failoverScenarios.ts says which, bench/failoverPool.ts holds the pool,
 * bench/failoverTrial.ts runs one trial, bench/failoverReport.ts renders the section).
 * What blocks: each scenario until its trials are done and its pool has stopped.
 */
import { ms, type Benchmark } from './section.js';
import { BenchPool } from './failoverPool.js';
import { failoverSection, report, type ScenarioReport } from './failoverReport.js';
import { scenarios } from './failoverScenarios.js';
import { failoverTrial, type TrialResult } from './failoverTrial.js';

const MEMBER_IDS = ['a', 'b', 'c'];

/** Measurements 1 and 2: graceful, crash and restart-takeover failover of a pool of 3. */
export const failover: Benchmark = async ({ etcd, smoke, log }) => {
  const reports: ScenarioReport[] = [];
  for (const scenario of scenarios(smoke)) {
    log(`${scenario.name}: ${scenario.trials} trials, pool of ${MEMBER_IDS.length}`);
    const pool = await BenchPool.start(etcd, scenario.ttlSeconds, MEMBER_IDS);
    const results: TrialResult[] = [];
    try {
      for (let i = 1; i <= scenario.trials; i++) {
        const result = await failoverTrial(pool, scenario.kind, MEMBER_IDS.length);
        results.push(result);
        log(
          `${scenario.name} ${i}/${scenario.trials}: ${result.leader} → ${result.servedBy ?? '?'}, ` +
            `served ${ms(result.servedMs)}, claimed ${ms(result.claimedMs)}, ` +
            `failed ${result.failed}/${result.calls} calls`,
        );
      }
    } finally {
      await pool.close();
    }
    reports.push(report(scenario, results));
  }
  return failoverSection(reports);
};
