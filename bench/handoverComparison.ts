/**
 * Our handover beside the peers', from one run (issue 16): for each graceful and crash
 * scenario, this project's "first /work by the new leader" and "new claim", and each peer's
 * "successor elected" and "new leader observed", with p50 / p90 / p99, their ratios to Go's
 * and etcd3's successor-elected figures of the same scenario, and in the crash scenarios the
 * phases of the lease renewal cycle at which each system's leaders were killed (the same set
 * for all, bench/crashPhase.ts); and the targets stated as those ratios.
 *
 * Units: ms from the signal, ratios as `1.50×`. Pure functions of the reports: nothing blocks.
 */
import { PHASE_HEADER, phaseCell } from './failoverLayout.js';
import type { ScenarioReport } from './failoverReport.js';
import type { PeerScenarioReport } from './peerReport.js';
import { PEER_SYSTEMS, type PeerSystem } from './peerSystems.js';
import { ms, type Table, type TargetCheck } from './section.js';
import type { Summary } from './stats.js';

/** The peers' report of the same scenario as ours: same signal, same TTL. */
function peersOf(ours: ScenarioReport, peers: readonly PeerScenarioReport[]) {
  return peers.filter((p) => p.kind === ours.kind && p.ttlSeconds === ours.ttlSeconds);
}

function peerOf(
  key: PeerSystem['key'],
  ours: ScenarioReport,
  peers: readonly PeerScenarioReport[],
): PeerScenarioReport | undefined {
  return peersOf(ours, peers).find((p) => p.systemKey === key);
}

function electedOf(
  key: PeerSystem['key'],
  ours: ScenarioReport,
  peers: readonly PeerScenarioReport[],
): Summary | undefined {
  return peerOf(key, ours, peers)?.electedMs;
}

const ratio = (a: number | undefined, b: number | undefined) =>
  a === undefined || b === undefined || b === 0 ? undefined : a / b;
const times = (value: number | undefined) => (value === undefined ? '—' : `${value.toFixed(2)}×`);
/** `1.20× / 1.50×`: p50 over p50, p99 over p99; `—` without the reference. */
function ratios(summary: Summary | undefined, reference: Summary | undefined): string {
  if (reference === undefined) return '—';
  return `${times(ratio(summary?.p50, reference.p50))} / ${times(ratio(summary?.p99, reference.p99))}`;
}

const HEADER = [
  'scenario',
  'system: measure',
  'trials',
  'p50',
  'p90',
  'p99',
  '× Go',
  '× etcd3',
  PHASE_HEADER,
] as const;

/** One row per system and measure of each scenario; a peer that cannot run it says why. */
export function handoverTable(
  ours: readonly ScenarioReport[],
  peers: readonly PeerScenarioReport[],
): Table {
  const rows = ours
    .filter((o) => o.kind !== 'restart')
    .flatMap((o) => {
      const go = electedOf('go', o, peers);
      const etcd3 = electedOf('etcd3', o, peers);
      const row = (measure: string, trials: string, s: Summary | undefined, phases = '') => [
        measure,
        trials,
        ms(s?.p50),
        ms(s?.p90),
        ms(s?.p99),
        ratios(s, go),
        ratios(s, etcd3),
        phases,
      ];
      const peerRows = PEER_SYSTEMS.flatMap((system) => {
        const mine = peerOf(system.key, o, peers);
        if (mine === undefined) {
          return [[`${system.name}: not run — ${system.limits ?? 'not started'}`, '', '', '', '']];
        }
        return [
          row(
            `${system.name}: successor elected`,
            String(mine.trials),
            mine.electedMs,
            phaseCell(mine.results),
          ),
          row(`${system.name}: new leader observed`, String(mine.trials), mine.observedMs),
        ];
      });
      const table = [
        row(
          'this project: first /work by the new leader (client on a follower)',
          String(o.trials),
          o.servedMs,
          phaseCell(o.results),
        ),
        row('this project: new claim in etcd', String(o.trials), o.claimedMs),
        ...peerRows,
      ];
      return table.map((cells, i) => [i === 0 ? o.name : '', ...cells]);
    });
  return {
    caption:
      'Handover, three systems in the same run, trials interleaved: signal → successor leads ' +
      "(p50 / p99 ratios to Go's and to etcd3's successor-elected figures of the same scenario; " +
      'crashes killed at the same phases after a lease renewal)',
    header: [...HEADER],
    rows: rows.map((cells) => [...cells, ...Array<string>(HEADER.length - cells.length).fill('')]),
  };
}

/** Issue 16's handover targets, as ratios to the peers measured in the same run. */
export function handoverTargets(
  ours: readonly ScenarioReport[],
  peers: readonly PeerScenarioReport[],
): TargetCheck[] {
  return ours.flatMap((o): TargetCheck[] => {
    const served = o.servedMs;
    if (o.kind === 'graceful') {
      const go = electedOf('go', o, peers);
      const p50 = ratio(served?.p50, go?.p50);
      const p99 = ratio(served?.p99, go?.p99);
      return [
        {
          target:
            "graceful handover at Go's level: first /work by the new leader p50 ≤ 1.5× and p99 ≤ 2× " +
            "Go's successor elected (same run), zero failed calls",
          measured:
            `p50 ${ms(served?.p50)} (${times(p50)}), p99 ${ms(served?.p99)} (${times(p99)}) against Go's ` +
            `${ms(go?.p50)} / ${ms(go?.p99)}; ${o.failed} of ${o.calls} calls failed`,
          met: p50 !== undefined && p99 !== undefined && p50 <= 1.5 && p99 <= 2 && o.failed === 0,
        },
      ];
    }
    if (o.kind === 'crash') {
      const etcd3 = peerOf('etcd3', o, peers);
      const p50 = ratio(served?.p50, etcd3?.electedMs?.p50);
      const [ourPhases, theirPhases] = [phaseCell(o.results), phaseCell(etcd3?.results ?? [])];
      return [
        {
          target: `crash failover (TTL ${o.ttlSeconds} s) within 10 % of etcd3's Election at p50 (same run, same kill phases)`,
          measured:
            `p50 ${ms(served?.p50)} against ${ms(etcd3?.electedMs?.p50)}: ${times(p50)}` +
            (ourPhases === '' && theirPhases === ''
              ? ''
              : `; killed after a renewal: ours ${ourPhases || '—'}, etcd3's ${theirPhases || '—'}`),
          met: p50 !== undefined && p50 <= 1.1,
        },
      ];
    }
    return [];
  });
}
