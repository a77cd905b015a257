/**
 * The handover scenarios of the failover benchmark (bench/failover.ts), which the peer
 * benchmark (bench/peer.ts) runs alike — its graceful and crash ones, same TTLs and trial
 * counts, so the two tables line up: the signal, the lease TTL and the number of trials of a
 * full and a smoke run, and how long past its TTL a trial may run before it counts as a miss.
 *
 * Units: TTLs in seconds, the slack in ms. Nothing here blocks.
 */

/** SIGTERM, SIGKILL, or SIGKILL and the same member started again at once. */
export type TrialKind = 'graceful' | 'crash' | 'restart';

export interface Scenario<Kind extends TrialKind = TrialKind> {
  name: string;
  kind: Kind;
  ttlSeconds: number;
  trials: number;
}

/** How long after its TTL a crash trial may take before it counts as a miss. */
export const FAILOVER_SLACK_MS = 5000;

/**
 * The failover scenarios; the peer benchmark runs the graceful and crash ones alike.
 *
 * Crash trials kill at set phases of the renewal cycle (bench/crashPhase.ts), which leaves
 * etcd's expiry check — a delay of 0 to 500 ms, uniform — as what spreads one system's trials
 * beside another's. Simulated (TTL − phase + that delay, both systems alike), the p50 ratio of
 * two systems has a standard deviation of about 3.5 % with 10 trials at TTL 5 s, where the
 * check is a tenth of the TTL; at TTL 2 s, where it is a quarter, 5.5 % with 10 trials and
 * 4.3 % with 16 — against a 10 % target, worth the ~35 s that 6 more trials add to `make bench`.
 */
export function scenarios(smoke: boolean): Scenario[] {
  return smoke
    ? [
        { name: 'graceful (SIGTERM)', kind: 'graceful', ttlSeconds: 2, trials: 2 },
        { name: 'crash (SIGKILL), TTL 2 s', kind: 'crash', ttlSeconds: 2, trials: 1 },
        { name: 'restart takeover, TTL 2 s', kind: 'restart', ttlSeconds: 2, trials: 1 },
      ]
    : [
        { name: 'graceful (SIGTERM)', kind: 'graceful', ttlSeconds: 5, trials: 30 },
        { name: 'crash (SIGKILL), TTL 2 s', kind: 'crash', ttlSeconds: 2, trials: 16 },
        { name: 'crash (SIGKILL), TTL 5 s', kind: 'crash', ttlSeconds: 5, trials: 10 },
        { name: 'restart takeover, TTL 5 s', kind: 'restart', ttlSeconds: 5, trials: 10 },
      ];
}
