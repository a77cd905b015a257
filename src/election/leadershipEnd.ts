/**
 * How a term of leadership ended: the reason the election reports with its `released` event,
 * and the error a term's signal aborts with (leadership.ts).
 */
import { PoolError } from '../errors.js';

/**
 * Why a term ended:
 * - `deadline`: the lease was not renewed in time (etcd cut off, this process paused); the
 *   claim may still stand in etcd until the lease expires there.
 * - `claim lost`: the claim changed or vanished in etcd (our lease revoked or expired, the key
 *   deleted or overwritten, etcd restored from an older backup).
 * - `resigned`: `resign()` (POST /resign) gave it up.
 * - `handed over`: a member the strategy prefers took over (PREEMPT_AFTER_MS).
 * - `shutdown`: `leave()` or `close()` (graceful shutdown, SIGTERM).
 * - `unsubscribed`: the watcher was stopped while the term ran; leadership itself goes on.
 */
export type LeadershipEndReason =
  | 'deadline'
  | 'claim lost'
  | 'resigned'
  | 'handed over'
  | 'shutdown'
  | 'unsubscribed';

/** The `reason` of a term's aborted signal; `reason` says how the term ended. */
export class LeadershipEndedError extends PoolError {
  declare readonly code: 'LEADERSHIP_ENDED';
  constructor(
    readonly term: bigint,
    readonly reason: LeadershipEndReason,
  ) {
    super('LEADERSHIP_ENDED', `leadership of term ${term} ended: ${reason}`);
    this.name = 'LeadershipEndedError';
  }
}

/** Whether `error` is a LeadershipEndedError (code `LEADERSHIP_ENDED`): a term's signal reason. */
export function isLeadershipEnded(error: unknown): error is LeadershipEndedError {
  return error instanceof LeadershipEndedError;
}
