/**
 * Preemption: a leader that the strategy no longer prefers hands its claim over (docs/design-
 * choices.md, "Preemption with hold-down"). This module owns the strategy's choice, memoised
 * per view revision, the hold-down during which a better member must stay preferred, the gate
 * that lets one pool of a process hand over at a time, and the release of the claim to the
 * preferred member — with the claims we released, which are never adopted again.
 *
 * Nothing here blocks the caller: `release` awaits one etcd transaction (bounded by the
 * client's call timeout) and never throws. Timers are unref'd; `clear()` cancels the
 * hold-down. When a hold-down runs out it emits `due`, and the election evaluates again.
 */
import { EventEmitter } from 'node:events';
import type { ComparatorBuilder, Etcd3 } from 'etcd3';
import type { Logger } from 'pino';
import { describeEtcdError } from '../etcd/access.js';
import type { PoolKeys } from '../etcd/keys.js';
import type { PoolMetrics } from '../metrics/metrics.js';
import { asError } from '../util/errors.js';
import { monotonicNow } from '../util/time.js';
import { candidates } from './candidates.js';
import { putReleaseNote } from './failover.js';
import type { MemberView } from './poolView.js';
import { FALLBACK_REASONS, oldest, StrategyFallback, type LeaderStrategy } from './strategy.js';

/** Allows one handover per hold-down across the pools of a process (see ElectionOptions). */
export class HandoverGate {
  private last = -Infinity;

  /** Whether `holdMs` milliseconds have passed since the last handover (monotonic `now`). */
  mayHandOver(holdMs: number, now = monotonicNow()): boolean {
    return now - this.last >= holdMs;
  }

  record(now = monotonicNow()): void {
    this.last = now;
  }
}

/** How long a released claim may still name us before we delete it again (milliseconds). */
const RELEASE_SETTLE_MS = 1000;

export interface PreemptionEvents {
  /** A hold-down ran out: evaluate again, and ask `handOverDue`. */
  due: [];
}

export interface PreemptionOptions {
  pool: string;
  keys: PoolKeys;
  /** Our MEMBER_ID, named in the release note. */
  memberId: string;
  strategy: LeaderStrategy;
  /** How long (milliseconds) a better member must stay preferred; default 5000. */
  preemptAfterMs?: number | undefined;
  /** Shared by the pools of one process: at most one of them hands over per hold-down. */
  handovers?: HandoverGate | undefined;
  /** A transaction that commits only while `term` is still the claim's revision. */
  fenced: (term: bigint) => ComparatorBuilder;
  logger: Logger;
  metrics: PoolMetrics;
}

export class Preemption extends EventEmitter<PreemptionEvents> {
  /** The strategy's choice, remembered per view revision: a tick does not re-run it. */
  private preference:
    | { revision: bigint; self: string; member: MemberView | undefined }
    | undefined;
  private lastFallback: { reason: string; at: number } | undefined;
  /** Since when (monotonic) the strategy has preferred another member while we lead. */
  private outranked: { since: number; timer: NodeJS.Timeout } | undefined;
  private releasedTerm: bigint | undefined;
  /** When (monotonic) we released `releasedTerm`, and a repeat of that delete in flight. */
  private releasedAt = 0;
  private releaseRetry: Promise<unknown> | undefined;

  constructor(
    private readonly etcd: Etcd3,
    private readonly options: PreemptionOptions,
  ) {
    super();
    // Series exist from the start at 0, so that rate() and increase() see the first event.
    const { metrics, pool } = options;
    for (const reason of FALLBACK_REASONS) metrics.strategyFallbacks.inc({ pool, reason }, 0);
  }

  /** Whether the strategy hands leadership over to a better member at all. */
  get preempts(): boolean {
    return this.options.strategy.preempt;
  }

  /**
   * The strategy's choice for the view at `revision`, among the members that may lead
   * (`candidates`); `self` is our member key. A strategy that throws, is too slow or names
   * no member is logged (once per reason and minute), counted, and `oldest` decides instead.
   */
  preferred(view: { revision: bigint; members: readonly MemberView[] }, self: string) {
    const revision = view.revision;
    if (this.preference?.revision === revision && this.preference.self === self) {
      return this.preference.member;
    }
    const members = candidates(view.members);
    const context = { pool: this.options.pool, self };
    let member: MemberView | undefined;
    try {
      member = this.options.strategy.select(members, context);
    } catch (error) {
      const reason = error instanceof StrategyFallback ? error.reason : 'threw';
      this.options.metrics.strategyFallbacks.inc({ pool: this.options.pool, reason });
      const now = monotonicNow();
      if (this.lastFallback?.reason !== reason || now - this.lastFallback.at > 60_000) {
        this.lastFallback = { reason, at: now };
        this.options.logger.error(
          { err: asError(error).message, reason },
          'leader strategy failed; using oldest',
        );
      }
      // Not remembered: a slow module may answer in time on the next evaluation, and every
      // member must end up with the same answer.
      return oldest.select(members, context);
    }
    this.preference = { revision, self, member };
    return member;
  }

  /**
   * A better member is preferred while we lead. Hand over only once it has stayed preferred
   * for `preemptAfterMs` (hold-down), so leadership never flaps on a member that comes and
   * goes, and only when the process's gate allows. True when the handover is due now (the
   * hold-down is then over); false arms a timer that emits `due`.
   */
  handOverDue(preferred: MemberView): boolean {
    const holdMs = this.options.preemptAfterMs ?? 5000;
    const now = monotonicNow();
    if (!this.outranked) {
      // Jitter, so that two pools of one process do not decide in the same millisecond.
      const timer = setTimeout(() => this.emit('due'), holdMs * (1 + Math.random() / 5) + 10);
      timer.unref();
      this.outranked = { since: now, timer };
      this.options.logger.info(
        { preferred: preferred.record.id, holdMs },
        'a better member is preferred; handing over after the hold-down',
      );
      return false;
    }
    if (now - this.outranked.since < holdMs) return false;
    const gate = this.options.handovers;
    if (gate && !gate.mayHandOver(holdMs)) {
      clearTimeout(this.outranked.timer);
      this.outranked.timer = setTimeout(() => this.emit('due'), holdMs * Math.random() + 50);
      this.outranked.timer.unref();
      return false;
    }
    this.clear();
    return true;
  }

  /** We are preferred again, or no longer lead: the hold-down starts over. */
  clear(): void {
    if (!this.outranked) return;
    clearTimeout(this.outranked.timer);
    this.outranked = undefined;
  }

  /**
   * Hands our claim of `term` over to `successor`: deletes it, fenced on `term`, with a
   * release note. `term` counts as released from now on, even while the watch still shows
   * it. Awaits one transaction; never throws (a failure is logged, and `repeatRelease`
   * deletes the claim again).
   */
  async release(term: bigint, successor: MemberView): Promise<void> {
    // Until the watch shows the delete, the view still names us: never adopt this term again.
    this.releasedTerm = term;
    this.releasedAt = monotonicNow();
    this.options.handovers?.record();
    this.options.logger.info(
      { term: term.toString(), successor: successor.record.id },
      'handing leadership over',
    );
    const { keys, memberId } = this.options;
    try {
      await this.options
        .fenced(term)
        .then(
          this.etcd.delete().key(keys.leader),
          putReleaseNote(this.etcd, keys.released, { term, holder: memberId, reason: 'handover' }),
        )
        .commit();
    } catch (error) {
      this.options.logger.warn({ err: describeEtcdError(error) }, 'releasing the claim failed');
    }
  }

  /** Whether we released the claim of `term`: it is never adopted again. */
  released(term: bigint): boolean {
    return term === this.releasedTerm;
  }

  /**
   * Our claim of `term`, which we no longer hold, still names us. If it is the one we
   * released and well after the release (its delete failed, or a restore of etcd brought it
   * back), delete it again, only if it is still that claim: no one acts on it, so the pool
   * would otherwise wait for our lease to end. Never blocks; one repeat at a time.
   */
  repeatRelease(term: bigint): void {
    if (!this.released(term) || monotonicNow() - this.releasedAt <= RELEASE_SETTLE_MS) return;
    if (this.releaseRetry) return;
    this.releaseRetry = this.options
      .fenced(term)
      .then(this.etcd.delete().key(this.options.keys.leader))
      .commit()
      .then((result) => {
        if (result.succeeded)
          this.options.logger.info({ term: term.toString() }, 'deleted our released claim again');
      })
      .catch((error: unknown) => {
        this.options.logger.warn(
          { err: describeEtcdError(error) },
          'deleting our released claim failed',
        );
      })
      .finally(() => (this.releaseRetry = undefined));
  }

  /** etcd went back in time: a term we released may now mean another claim. */
  forgetReleases(): void {
    this.releasedTerm = undefined;
  }
}
