/**
 * The peer benchmark's section of the report (bench/peer.ts measures, this renders): each
 * scenario's trials summarized with the library's findings (campaign errors, leaders never
 * elected), the table laid out like the failover table, the CDF plots of signal → new leader
 * observed, the method in prose and the raw figures kept in the record.
 *
 * Units: times in ms from the signal. Nothing here blocks but reading etcd3's package.json once.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { cdfSeries, MEASURE_HEADER, measureRows, trialsCell } from './failoverLayout.js';
import type { Scenario } from './failoverScenarios.js';
import { CANDIDATE_IDS } from './peerPool.js';
import type { PeerTrialKind, PeerTrialResult } from './peerTrial.js';
import type { Plot, Section, Table } from './section.js';
import { summarize, type Summary } from './stats.js';

export interface ScenarioReport extends Scenario<PeerTrialKind> {
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

const ETCD3_VERSION = (
  JSON.parse(readFileSync(fileURLToPath(import.meta.resolve('etcd3/package.json')), 'utf8')) as {
    version: string;
  }
).version;

function table(reports: ScenarioReport[]): Table {
  return {
    caption:
      `etcd3 ${ETCD3_VERSION} Election, ${CANDIDATE_IDS.length} candidate processes: ` +
      'from the signal to the leader until its key is gone, and until a new leader is observed / elected',
    // The failover table's layout (bench/failoverLayout.ts), so the two read side by side.
    header: MEASURE_HEADER,
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
      ),
    ),
  };
}

/** Signal → new leader seen by `observe()`, one series per scenario. */
function observedPlot(reports: ScenarioReport[], file: string, title: string): Plot {
  return {
    file,
    title,
    xLabel: 'share of trials',
    yLabel: 'ms',
    kind: 'cdf',
    series: cdfSeries(reports, (t) => t.observedMs),
  };
}

/**
 * One scenario's trials, summarized, with the campaign errors and the leaders never elected
 * that its candidates showed.
 */
export function report(
  scenario: Scenario<PeerTrialKind>,
  results: PeerTrialResult[],
  campaignErrors: string[],
  unelected: string[],
): ScenarioReport {
  return {
    ...scenario,
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

/** The section of a run: every scenario in the table, the plots, no targets. */
export function peerSection(reports: ScenarioReport[]): Section {
  return {
    id: 'peer',
    title: `Peer: etcd3 ${ETCD3_VERSION}'s own Election on the same etcd`,
    method:
      `Three child processes campaign in one etcd3 ${ETCD3_VERSION} \`Election\` with the ` +
      'given lease TTL; on SIGTERM a candidate calls `resign()` (a lease revoke) and exits, on ' +
      'SIGKILL its lease expires. The benchmark process watches with `election.observe()` and ' +
      'times from the signal to the leader until a watch on the election prefix sees the old ' +
      "leader's key deleted, until the observer names a new leader, and until the new " +
      "leader's campaign emits `elected`. The signalled candidate is started again " +
      'before the next trial.',
    tables: [table(reports)],
    plots: [
      observedPlot(
        reports,
        'peer-failover.svg',
        `etcd3 ${ETCD3_VERSION} Election: signal → new leader observed`,
      ),
      // On one linear axis with the crashes (seconds) the graceful handovers (tens of ms) are a
      // flat line at the bottom: they get a plot of their own too.
      observedPlot(
        reports.filter((r) => r.kind === 'graceful'),
        'peer-graceful.svg',
        `etcd3 ${ETCD3_VERSION} Election, graceful: SIGTERM → new leader observed`,
      ),
    ],
    targets: [],
    data: {
      library: `etcd3 ${ETCD3_VERSION}`,
      candidates: CANDIDATE_IDS.length,
      scenarios: reports,
    },
    errors: reports.flatMap((r) => [
      ...(r.missed > 0
        ? [
            `${r.name}: ${r.missed} of ${r.trials} trials saw no old key deleted or no new leader observed`,
          ]
        : []),
      // A campaign that failed mid-run (its lease lost) would make the handover times meaningless.
      ...r.campaignErrors.map((error) => `${r.name}: campaign error from ${error}`),
    ]),
  };
}
