/**
 * The leaders one member has seen in its pool: the history of leader changes, the leader
 * metrics (changes, failover outage per cause, leaderless gaps, who leads) and the log lines.
 * The election hands it each leader it computes; `observe` says whether that was a change.
 * Synchronous; nothing here blocks, and there is nothing to cancel.
 */
import type { Logger } from 'pino';
import type { PoolMetrics } from '../metrics/metrics.js';
import { monotonicNow } from '../util/time.js';
import { FAILOVER_CAUSES, FailoverClock, type ClaimEnd, type FailoverCause } from './failover.js';

/** A pool's leader as one member's view of etcd sees it. */
export interface LeaderInfo {
  /** The leader's MEMBER_ID. */
  id: string;
  /** Its ADVERTISE_URL, where work is forwarded to it. */
  url: string;
  /** Its member key in etcd; the last segment is its lease id, in hexadecimal. */
  memberKey: string;
  /** The claim's etcd revision: the term, and fencing token, it leads under. */
  term: bigint;
  /** Whether the leader is the member asking. */
  self: boolean;
}

/** One observed leader change; `leader` null means the pool became leaderless. */
export interface LeaderChange {
  /** ISO time this member observed it. */
  at: string;
  leader: string | null;
  term: number | null;
  previous: string | null;
  /**
   * Why the previous leader's claim ended (failover.ts); null for the leader found on joining,
   * or when this member did not see the previous claim end.
   */
  cause: FailoverCause | null;
  /** Time without a leader claim before this one, as observed; null when there was no gap. */
  leaderlessMs: number | null;
  /**
   * For a new leader: from the previous leader's last sign of life to now — what callers
   * waited (failover.ts); null when there was no previous leader to date.
   */
  outageMs: number | null;
}

const HISTORY_LENGTH = 50;

export class LeaderLog {
  private lastLeader: LeaderInfo | undefined;
  private readonly changes: LeaderChange[] = [];
  /** The last leader there was, kept across a leaderless gap for logs and events. */
  private lastKnownLeader: LeaderInfo | undefined;
  /** Since when (monotonic milliseconds) the pool has had no leader, as seen here. */
  private leaderlessSince: number | undefined;
  private readonly failovers: FailoverClock;

  constructor(
    private readonly options: {
      pool: string;
      /** The pool's lease TTL (seconds): dates an expired leader's last sign of life. */
      leaseTtlSeconds: number;
      metrics: PoolMetrics;
      logger: Logger;
    },
  ) {
    this.failovers = new FailoverClock(options.leaseTtlSeconds * 1000);
    // Series exist from the start at 0, so that rate() and increase() see the first event.
    const { metrics, pool } = options;
    metrics.leaderChanges.inc({ pool }, 0);
    for (const cause of FAILOVER_CAUSES) metrics.failoverDuration.zero({ pool, cause });
    metrics.leaderlessDuration.zero({ pool });
  }

  /**
   * Records `leader` (undefined: none) if it differs from the last one observed: the history,
   * the leader metrics and a log line. Returns the leader before it (kept across a leaderless
   * gap) when it was a change, else undefined. A change is a new term after one this member
   * knew: the leader it finds at start-up is not one, or every restart of any member would
   * count as a change of the pool's leader.
   *
   * @param claimedAt the claim's own `claimedAt` (ISO), which every member reads alike
   * @param view where to read how the previous claim ended, if this member saw it vanish
   */
  observe(
    leader: LeaderInfo | undefined,
    claimedAt: string | undefined,
    view: { claimEnded(term: bigint): ClaimEnd | undefined },
  ): { previous: LeaderInfo | undefined } | undefined {
    const current = this.lastLeader;
    if (leader?.term === current?.term && leader?.memberKey === current?.memberKey) return;
    this.lastLeader = leader;
    const previous = this.lastKnownLeader;
    if (leader) this.lastKnownLeader = leader;
    const { metrics, pool } = this.options;
    // Durations from the monotonic clock; the wall clock only to show when.
    const now = monotonicNow();
    const wallNow = Date.now();
    const leaderlessSince = this.leaderlessSince;
    // How the previous claim ended, if this member saw it vanish (failover.ts).
    const ended = previous && view.claimEnded(previous.term);
    let outageMs: number | null = null;
    // The claim's own time, which every member reads alike, not when this one saw it.
    const claimedAtMs = leader ? Date.parse(claimedAt ?? '') : NaN;
    if (!leader) {
      this.leaderlessSince = now;
    } else {
      if (leaderlessSince !== undefined) {
        metrics.leaderlessDuration.observe({ pool }, (now - leaderlessSince) / 1000);
      }
      this.leaderlessSince = undefined;
      if (previous && previous.term !== leader.term) {
        metrics.leaderChanges.inc({ pool });
        // The claim passed from one holder to the next in one write: a gap of zero, observed
        // so that the histogram counts every change and its quantiles say how many had none.
        if (leaderlessSince === undefined) metrics.leaderlessDuration.observe({ pool }, 0);
        const since = ended ? this.failovers.lastSignOfLife(ended) : leaderlessSince;
        if (since !== undefined) {
          outageMs = Math.round(now - since);
          metrics.failoverDuration.observe(
            { pool, cause: ended?.cause ?? 'unknown' },
            (now - since) / 1000,
          );
        }
      }
      if (Number.isFinite(claimedAtMs)) metrics.lastLeaderChange.set({ pool }, claimedAtMs / 1000);
    }
    if (current) metrics.leaderInfo.remove({ pool, leader_id: current.id });
    if (leader) metrics.leaderInfo.set({ pool, leader_id: leader.id }, 1);
    // The leader found on joining is shown from its claim, which came before we did.
    const found = leader && !previous && claimedAtMs <= wallNow;
    this.record({
      at: new Date(found ? claimedAtMs : wallNow).toISOString(),
      leader: leader?.id ?? null,
      term: leader ? Number(leader.term) : null,
      previous: previous?.id ?? null,
      cause: ended?.cause ?? null,
      leaderlessMs:
        leader && leaderlessSince !== undefined ? Math.round(now - leaderlessSince) : null,
      outageMs,
    });
    this.options.logger.info(
      {
        leader: leader?.id ?? null,
        term: leader?.term.toString() ?? null,
        previous: previous?.id ?? null,
      },
      leader ? 'leader changed' : 'pool has no leader',
    );
    return { previous };
  }

  /**
   * The leader of `term` answered a forward: a sign of life that dates a crash failover's
   * outage (failover.ts). Never blocks.
   */
  answered(term: bigint): void {
    this.failovers.answered(term);
  }

  /** The last `HISTORY_LENGTH` leader changes this member observed, oldest first. */
  get history(): readonly LeaderChange[] {
    return this.changes;
  }

  private record(change: LeaderChange): void {
    this.changes.push(change);
    if (this.changes.length > HISTORY_LENGTH) this.changes.shift();
  }
}
