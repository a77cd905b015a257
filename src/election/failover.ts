/**
 * Why a leader's claim ended, and what the change cost (docs/operations.md, "Failover
 * figures"). Two figures, each member measuring from its own view:
 *
 * - The outage (`service_pool_failover_duration_seconds`): from the old leader's last sign of
 *   life to this member seeing the new leader — from then on it routes work again. This is
 *   what a caller of /work felt. A leader that hands over or stops gracefully was alive until
 *   its claim vanished, so the outage is the leaderless gap; a crashed, frozen or cut-off
 *   leader was last alive about one lease TTL before etcd expired its lease, or when this
 *   member's last forward to it was answered, whichever is later.
 * - The leaderless gap (`service_pool_leaderless_seconds`): from the old claim vanishing to a
 *   new claim, as this member saw them. Milliseconds after any cause: it shows how fast the
 *   successor claims, not how long callers waited.
 *
 * The cause comes from etcd alone, so every member reads it alike: a leader that releases its
 * claim puts a release note (`<pool>/state/released`) in the same transaction that hands the
 * claim to its successor (a put naming another holder) or deletes it, so the note and the put
 * or delete share one revision. A handed-over claim leaves no gap: the leaderless figure
 * observes 0 then. etcd deletes all keys of an expired
 * (or revoked) lease in one revision too: the claim and its holder's member key vanishing
 * together without a note is the lease ending under a leader that did not leave.
 */
import type { Etcd3, PutBuilder } from 'etcd3';
import { z } from 'zod';
import { memberId } from '../config/schemas.js';
import { monotonicNow } from '../util/time.js';

/**
 * Why a claim ended: the `cause` label of service_pool_failover_duration_seconds.
 * - `stop`: graceful shutdown (SIGTERM) — the leader left the pool.
 * - `resign`: the admin resign — the leader rejoined as the youngest member.
 * - `handover`: preemption — the strategy preferred another member and the leader released.
 * - `expired`: the leader's lease ended without a release — crashed, frozen or cut off.
 * - `unknown`: the claim vanished some other way (deleted by hand, or seen only in a re-read).
 */
export const FAILOVER_CAUSES = ['stop', 'resign', 'handover', 'expired', 'unknown'] as const;
export type FailoverCause = (typeof FAILOVER_CAUSES)[number];

/** The causes a releasing leader writes in its note. */
export type ReleaseReason = Extract<FailoverCause, 'stop' | 'resign' | 'handover'>;

/** The release note: the value of `P/pools/<pool>/state/released`, the last release. */
export const releaseNoteSchema = z.object({
  /** The released claim's term (its mod revision), decimal. */
  term: z.string().regex(/^\d{1,30}$/),
  id: memberId,
  reason: z.enum(['stop', 'resign', 'handover']),
  /** Wall-clock time of the release, for people. */
  at: z.iso.datetime(),
});

export type ReleaseNote = z.infer<typeof releaseNoteSchema>;

/**
 * The put of a release note at `key`, for the transaction that hands over or deletes
 * `holder`'s claim of `term`: every member sees why the claim ended in the same revision. Builds
 * the operation only; the caller's transaction sends it.
 */
export function putReleaseNote(
  etcd: Etcd3,
  key: string,
  release: { term: bigint; holder: string; reason: ReleaseReason },
): PutBuilder {
  const note: ReleaseNote = {
    term: release.term.toString(),
    id: release.holder,
    reason: release.reason,
    at: new Date().toISOString(),
  };
  return etcd.put(key).value(JSON.stringify(note));
}

/** How one claim ended, as one member's view saw it. */
export interface ClaimEnd {
  /** The ended claim's term. */
  term: bigint;
  /** The member id the claim named; undefined when its value was invalid. */
  leaderId: string | undefined;
  cause: FailoverCause;
  /** Monotonic time (milliseconds) this member saw the claim vanish. */
  observedAt: number;
}

/**
 * The cause of a claim delete, from what happened in the same revision: a release note, or
 * the delete of the member key bound to the claim's lease.
 */
export function causeOf(sameRevision: {
  note: ReleaseNote | undefined;
  holderKeyDeleted: boolean;
}): FailoverCause {
  if (sameRevision.note) return sameRevision.note.reason;
  return sameRevision.holderKeyDeleted ? 'expired' : 'unknown';
}

/**
 * Dates the old leader's last sign of life for the outage figure. One per election; the
 * router reports each forward the leader answered. Never blocks.
 */
export class FailoverClock {
  private lastAnswer: { term: bigint; at: number } | undefined;

  /** @param leaseTtlMs the pool's lease TTL in milliseconds (members of a pool share it). */
  constructor(private readonly leaseTtlMs: number) {}

  /** The leader of `term` answered a forward at `at` (monotonic milliseconds). */
  answered(term: bigint, at = monotonicNow()): void {
    if (!this.lastAnswer || this.lastAnswer.term !== term || this.lastAnswer.at < at) {
      this.lastAnswer = { term, at };
    }
  }

  /**
   * When (monotonic milliseconds) the leader of the ended claim was last known alive. A lease
   * expires one TTL after its last renewal, so an expired claim's holder was last alive one TTL
   * before the delete at the latest — unless it answered one of our forwards since.
   */
  lastSignOfLife(end: ClaimEnd): number {
    if (end.cause !== 'expired') return end.observedAt;
    const answered = this.lastAnswer?.term === end.term ? this.lastAnswer.at : -Infinity;
    return Math.min(end.observedAt, Math.max(end.observedAt - this.leaseTtlMs, answered));
  }
}
