/**
 * The peers' section of the report (bench/peer.ts measures, this renders): each system's
 * scenarios summarized with the library's findings (campaign errors, leaders never elected),
 * one table per system laid out like the failover table, the CDF plots of signal → new leader
 * observed, the method in prose and the raw figures kept in the record.
 *
 * Units: times in ms from the signal. Nothing here blocks.
 */
import {
  cdfSeries,
  MEASURE_HEADER,
  measureRows,
  PHASE_HEADER,
  phaseCell,
  trialsCell,
} from './failoverLayout.js';
import type { Scenario } from './failoverScenarios.js';
import { CANDIDATE_IDS } from './peerPool.js';
import { ETCDCTL_SESSION_TTL_SECONDS, PEER_SYSTEMS, type PeerSystem } from './peerSystems.js';
import type { PeerTrialKind, PeerTrialResult } from './peerTrial.js';
import type { Plot, Section, Table } from './section.js';
import { summarize, type Summary } from './stats.js';

export interface PeerScenarioReport extends Scenario<PeerTrialKind> {
  /** Which peer (bench/peerSystems.ts), and its name with the version. */
  systemKey: PeerSystem['key'];
  system: string;
  deletedMs: Summary | undefined;
  observedMs: Summary | undefined;
  electedMs: Summary | undefined;
  missed: number;
  /** Campaign `error` lines from any candidate: none is expected. */
  campaignErrors: string[];
  /** Leaders named by observe() whose campaign never emitted `elected`. */
  unelected: string[];
  results: PeerTrialResult[];
}

function table(system: PeerSystem, reports: PeerScenarioReport[]): Table {
  return {
    caption:
      `${system.name}, ${CANDIDATE_IDS.length} candidate processes: ` +
      'from the signal to the leader until its key is gone, and until a new leader is observed / elected',
    // The failover table's layout (bench/failoverLayout.ts), so the two read side by side.
    header: [...MEASURE_HEADER, PHASE_HEADER],
    rows: reports.flatMap((r) =>
      measureRows(
        [
          r.name,
          trialsCell(r) + (r.unelected.length > 0 ? ` (${r.unelected.length} never elected)` : ''),
        ],
        [
          ["old leader's key deleted (watch)", r.deletedMs],
          ['new leader seen by observe()', r.observedMs],
          ["new leader's campaign elected", r.electedMs],
        ],
        [phaseCell(r.results)],
      ),
    ),
  };
}

/** Signal → new leader seen by `observe()`, one series per system and scenario. */
function observedPlot(reports: PeerScenarioReport[], file: string, title: string): Plot {
  return {
    file,
    title,
    xLabel: 'share of trials',
    yLabel: 'ms',
    kind: 'cdf',
    series: cdfSeries(
      reports.map((r) => ({ ...r, name: `${r.systemKey}: ${r.name}` })),
      (t) => t.observedMs,
    ),
  };
}

/**
 * One scenario's trials, summarized, with the campaign errors and the leaders never elected
 * that its candidates showed.
 */
export function report(
  system: PeerSystem,
  scenario: Scenario<PeerTrialKind>,
  results: PeerTrialResult[],
  campaignErrors: string[],
  unelected: string[],
): PeerScenarioReport {
  return {
    ...scenario,
    systemKey: system.key,
    system: system.name,
    deletedMs: summarize(results.map((r) => r.deletedMs)),
    observedMs: summarize(results.map((r) => r.observedMs)),
    electedMs: summarize(results.map((r) => r.electedMs)),
    // A trial without the old key's delete or a new leader observed measured nothing; one
    // whose new leader's campaign stayed silent is counted in `unelected` instead.
    missed: results.filter((r) => r.deletedMs === undefined || r.observedMs === undefined).length,
    campaignErrors,
    unelected,
    results,
  };
}

/** The section of a run: one table per system, the plots, no targets (the failover section has them). */
export function peerSection(reports: PeerScenarioReport[]): Section {
  const systems = PEER_SYSTEMS.filter((system) => reports.some((r) => r.systemKey === system.key));
  return {
    id: 'peer',
    title: `Peers: ${systems.map((s) => s.name).join(' and ')} on the same etcd`,
    method:
      `Three child processes per system campaign in one election with the given lease TTL, ` +
      'their trials interleaved with the failover trials (ours, then each peer, trial by trial, ' +
      'each on its own pool). On SIGTERM a candidate resigns and exits: etcd3 calls `resign()` (a ' +
      'lease revoke), `etcdctl elect` deletes its key; on SIGKILL its lease expires. A crash ' +
      "trial's SIGKILL lands at the same phase of the leader's lease renewal cycle as our pool's " +
      'trial of the round (failover section): the etcd3 candidates print each keep-alive answer ' +
      'with how long before it the keep-alive was sent. ' +
      `etcdctl elect has no TTL flag: its session lease lives ${ETCDCTL_SESSION_TTL_SECONDS} s, so it ` +
      "runs the graceful scenario only. The benchmark process watches with etcd3's " +
      '`election.observe()` (Go keeps its keys under the same prefix) and times from the signal to ' +
      "the leader until a watch on the election prefix sees the old leader's key deleted, until " +
      "the observer names a new leader, and until the new leader's own program says it won " +
      "(etcd3's `elected` event; etcdctl prints the proposal once elected, after one read of its " +
      'key). The signalled candidate is started again before the next trial.',
    tables: systems.map((system) =>
      table(
        system,
        reports.filter((r) => r.systemKey === system.key),
      ),
    ),
    plots: [
      observedPlot(reports, 'peer-failover.svg', 'Peers: signal → new leader observed'),
      // On one linear axis with the crashes (seconds) the graceful handovers (tens of ms) are a
      // flat line at the bottom: they get a plot of their own too.
      observedPlot(
        reports.filter((r) => r.kind === 'graceful'),
        'peer-graceful.svg',
        'Peers, graceful: SIGTERM → new leader observed',
      ),
    ],
    targets: [],
    data: {
      systems: systems.map((s) => s.name),
      candidates: CANDIDATE_IDS.length,
      scenarios: reports,
    },
    errors: reports.flatMap((r) => [
      ...(r.missed > 0
        ? [
            `${r.system}, ${r.name}: ${r.missed} of ${r.trials} trials saw no old key deleted or no new leader observed`,
          ]
        : []),
      // A campaign that failed mid-run (its lease lost) would make the handover times meaningless.
      ...r.campaignErrors.map((error) => `${r.system}, ${r.name}: campaign error from ${error}`),
    ]),
  };
}
