/**
 * The failover benchmark's section of the report (bench/failover.ts measures, this renders):
 * each scenario's trials summarized, the systems side by side (bench/handoverComparison.ts),
 * the failover table, the targets of issues 6 and 16 with the measured figure, the two CDF
 * plots, the method in prose and the raw figures kept in the record.
 *
 * Units: times in ms from the signal, calls counted. Nothing here blocks.
 */
import { ms, type Section, type Table, type TargetCheck } from './section.js';
import { summarize, type Summary } from './stats.js';
import {
  cdfSeries,
  MEASURE_HEADER,
  measureRows,
  PHASE_HEADER,
  phaseCell,
  trialsCell,
} from './failoverLayout.js';
import type { Scenario, TrialKind } from './failoverScenarios.js';
import type { TrialResult } from './failoverTrial.js';
import { handoverTable, handoverTargets } from './handoverComparison.js';
import type { PeerScenarioReport } from './peerReport.js';

export interface ScenarioReport extends Scenario {
  servedMs: Summary | undefined;
  claimedMs: Summary | undefined;
  failed: number;
  calls: number;
  missed: number;
  results: TrialResult[];
}

/** One scenario's trials, summarized. */
export function report(scenario: Scenario, results: TrialResult[]): ScenarioReport {
  return {
    ...scenario,
    servedMs: summarize(results.map((r) => r.servedMs)),
    claimedMs: summarize(results.map((r) => r.claimedMs)),
    failed: results.reduce((sum, r) => sum + r.failed, 0),
    calls: results.reduce((sum, r) => sum + r.calls, 0),
    missed: results.filter((r) => r.servedMs === undefined || r.claimedMs === undefined).length,
    results,
  };
}

function failoverTable(reports: ScenarioReport[]): Table {
  return {
    caption:
      'Failover, pool of 3 member processes (signal → first /work by the new leader, seen on another member; signal → new claim in etcd)',
    header: [...MEASURE_HEADER, 'failed calls', PHASE_HEADER],
    rows: reports.flatMap((r) =>
      measureRows(
        [r.name, trialsCell(r)],
        [
          ['first /work by new leader', r.servedMs],
          ['new claim in etcd', r.claimedMs],
        ],
        [`${r.failed} of ${r.calls}`, phaseCell(r.results)],
      ),
    ),
  };
}

function failoverTargets(reports: ScenarioReport[]): TargetCheck[] {
  return reports.flatMap((r): TargetCheck[] => {
    const p99 = r.servedMs?.p99;
    const missed = r.missed > 0 ? ` (${r.missed} trials missed)` : '';
    switch (r.kind) {
      case 'graceful':
        return [
          {
            target: 'graceful failover p99 < 50 ms, zero failed client requests',
            measured: `p99 ${ms(p99)}, ${r.failed} of ${r.calls} calls failed${missed}`,
            met: p99 !== undefined && p99 < 50 && r.failed === 0 && r.missed === 0,
          },
        ];
      case 'crash': {
        const limit = r.ttlSeconds * 1000 + 500;
        return [
          {
            target: `crash failover p99 < TTL + 500 ms (TTL ${r.ttlSeconds} s: < ${limit} ms)`,
            measured: `p99 ${ms(p99)}${missed}`,
            met: p99 !== undefined && p99 < limit && r.missed === 0,
          },
        ];
      }
      case 'restart':
        return [
          {
            target: 'restart takeover < 1 s',
            measured: `max ${ms(r.servedMs?.max)}, p50 ${ms(r.servedMs?.p50)}${missed}`,
            met: r.servedMs !== undefined && r.servedMs.max < 1000 && r.missed === 0,
          },
        ];
    }
  });
}

/**
 * The section of a run: the systems side by side (ours and the peers' of the same run), every
 * scenario of ours in detail, the plots and the targets.
 */
export function failoverSection(
  reports: ScenarioReport[],
  peers: readonly PeerScenarioReport[],
): Section {
  const servedSeries = (kind: TrialKind) =>
    cdfSeries(
      reports.filter((r) => r.kind === kind),
      (t) => t.servedMs,
    );
  return {
    id: 'failover',
    title: 'Failover',
    method:
      'Three member processes (the built CLI) on the shared etcd; a client on the youngest follower ' +
      'calls /work back to back on one keep-alive connection while the leader gets SIGTERM ' +
      '(graceful, as `kubectl delete pod` does) or SIGKILL (crash); restart takeover starts the ' +
      'killed member again at once with the same MEMBER_ID. A watch on the claim key timestamps ' +
      "the new claim. Every time is on the benchmark process's monotonic clock from the signal. " +
      "A crash takes about TTL − (the time since the lease was last renewed) + etcd's expiry " +
      'check (≤ 500 ms), so in the crash scenarios the SIGKILL lands at a set phase of the ' +
      "leader's renewal cycle: trial k of n waits for a renewal (ours from the leader's GET /pool " +
      "`leaseTimeLeftMs`, etcd3's from its candidate's keep-alive answers) and signals " +
      '((s + 0.5)/n) × TTL/3 after it, s a stratum of the cycle used once, in a spread order, the ' +
      "same phase for every system in a round (column 'killed after a renewal'). " +
      "The peers (etcd3's Election, Go's concurrency.Election through `etcdctl elect`; next " +
      'section) run the graceful and crash scenarios in the same run, each on its own three ' +
      'candidates, their trials interleaved with ours (ours, then each peer, trial by trial); the ' +
      'first table puts the systems side by side with ratios within each scenario.',
    tables: [handoverTable(reports, peers), failoverTable(reports)],
    plots: [
      {
        file: 'failover-graceful.svg',
        title: 'Graceful failover: signal → first /work by the new leader',
        xLabel: 'share of trials',
        yLabel: 'ms',
        kind: 'cdf',
        series: servedSeries('graceful'),
      },
      {
        file: 'failover-crash.svg',
        title: 'Crash failover and restart takeover: signal → first /work by a serving leader',
        xLabel: 'share of trials',
        yLabel: 'ms',
        kind: 'cdf',
        series: [...servedSeries('crash'), ...servedSeries('restart')],
      },
    ],
    targets: [...failoverTargets(reports), ...handoverTargets(reports, peers)],
    data: reports,
    errors: reports
      .filter((r) => r.missed > 0)
      .map((r) => `${r.name}: ${r.missed} of ${r.trials} trials saw no new leader serve and claim`),
  };
}
