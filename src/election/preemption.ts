/**
 * Preemption: a leader that the strategy no longer prefers hands its claim over (docs/design-
 * choices.md, "Preemption with hold-down"). This module keeps what that decision needs beyond
 * the pool view: the strategy's choice, memoised per view revision; since when a better
 * member has been preferred (the hold-down), with a timer that says when to look again; and
 * the gate that lets one pool of a process hand over per hold-down. Whether to hand over is
 * decided in decision.ts; the release is a claim transaction (claimPursuit.ts).
 *
 * Nothing here blocks or touches etcd. Times are monotonic milliseconds on the injected
 * `Clock`, whose timers never keep the process alive; `clear()` cancels the hold-down and its
 * timer. When a hold-down timer fires it emits `due`, and the campaign decides again.
 */
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { PoolMetrics } from '../metrics/metrics.js';
import { asError } from '../util/errors.js';
import { systemClock, type Clock, type ClockTimer } from '../util/time.js';
import { candidates } from './candidates.js';
import type { HoldDown } from './decision.js';
import type { MemberView } from './poolView.js';
import { FALLBACK_REASONS, oldest, StrategyFallback, type LeaderStrategy } from './strategy.js';

/** Allows one handover per hold-down across the pools of a process (see ElectionOptions). */
export class HandoverGate {
  private last = -Infinity;

  /** When (monotonic ms) the next handover may be, `holdMs` after the last one. */
  opensAt(holdMs: number): number {
    return this.last + holdMs;
  }

  /** A pool of the process hands over at `now` (monotonic ms). */
  record(now: number): void {
    this.last = now;
  }
}

export interface PreemptionEvents {
  /** A hold-down timer ran out: decide again. */
  due: [];
}

export interface PreemptionOptions {
  pool: string;
  strategy: LeaderStrategy;
  /** How long (milliseconds) a better member must stay preferred; default 5000. */
  preemptAfterMs?: number | undefined;
  /** Shared by the pools of one process: at most one of them hands over per hold-down. */
  handovers?: HandoverGate | undefined;
  logger: Logger;
  metrics: PoolMetrics;
  /** Default: the monotonic clock and real timers. */
  clock?: Clock;
  /** Uniform in [0, 1): the hold-down's jitter. Default `Math.random`. */
  random?: () => number;
}

export class Preemption extends EventEmitter<PreemptionEvents> {
  /** The strategy's choice, remembered per view revision: a tick does not re-run it. */
  private preference:
    | { revision: bigint; self: string; member: MemberView | undefined }
    | undefined;
  private lastFallback: { reason: string; at: number } | undefined;
  /** Since when (monotonic) the strategy has preferred another member while we lead. */
  private outranked: { since: number; timer: ClockTimer | undefined } | undefined;
  private readonly gate: HandoverGate;
  private readonly clock: Clock;

  constructor(private readonly options: PreemptionOptions) {
    super();
    this.gate = options.handovers ?? new HandoverGate();
    this.clock = options.clock ?? systemClock;
    // Series exist from the start at 0, so that rate() and increase() see the first event.
    const { metrics, pool } = options;
    for (const reason of FALLBACK_REASONS) metrics.strategyFallbacks.inc({ pool, reason }, 0);
  }

  /** Whether the strategy hands leadership over to a better member at all. */
  get preempts(): boolean {
    return this.options.strategy.preempt;
  }

  /** The hold-down as the decision (decision.ts) reads it. */
  get holdDown(): HoldDown {
    const holdMs = this.options.preemptAfterMs ?? 5000;
    return { since: this.outranked?.since, holdMs, gateOpensAt: this.gate.opensAt(holdMs) };
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
    const chosen = this.choose(candidates(view.members), self);
    // Not remembered when the strategy failed: a slow module may answer in time on the next
    // evaluation, and every member must end up with the same answer.
    if (!chosen.fellBack) this.preference = { revision, self, member: chosen.member };
    return chosen.member;
  }

  /**
   * Whom we hand the claim to when we leave the pool (stop, resign): the strategy's choice
   * among the members that may lead other than us (`self`, our member key), with the same
   * fallback as `preferred`. Undefined when no other member may lead.
   */
  successor(view: { members: readonly MemberView[] }, self: string): MemberView | undefined {
    const others = candidates(view.members).filter((member) => member.key !== self);
    if (others.length === 0) return undefined;
    const chosen = this.choose(others, self).member;
    return others.find((member) => member.key === chosen?.key);
  }

  /** The strategy's choice among `members`, or `oldest`'s when it failed (then `fellBack`). */
  private choose(
    members: readonly MemberView[],
    self: string,
  ): { member: MemberView | undefined; fellBack: boolean } {
    const context = { pool: this.options.pool, self };
    try {
      return { member: this.options.strategy.select(members, context), fellBack: false };
    } catch (error) {
      const reason = error instanceof StrategyFallback ? error.reason : 'threw';
      this.options.metrics.strategyFallbacks.inc({ pool: this.options.pool, reason });
      const now = this.clock.now();
      if (this.lastFallback?.reason !== reason || now - this.lastFallback.at > 60_000) {
        this.lastFallback = { reason, at: now };
        this.options.logger.error(
          { err: asError(error).message, reason },
          'leader strategy failed; using oldest',
        );
      }
      return { member: oldest.select(members, context), fellBack: true };
    }
  }

  /**
   * A better member, `successor`, is preferred while we lead, and the handover is due in
   * `dueInMs`. The first call starts the hold-down (hence `holdDown.since`, so leadership
   * never flaps on a member that comes and goes). Unless a timer is pending, sets one that
   * emits `due` then, plus jitter (up to a fifth of the hold-down, and 10 ms), so that the
   * pools of one process do not all decide in the same millisecond.
   */
  holdDownFor(successor: MemberView, dueInMs: number): void {
    const holdMs = this.holdDown.holdMs;
    if (!this.outranked) {
      this.outranked = { since: this.clock.now(), timer: undefined };
      this.options.logger.info(
        { preferred: successor.record.id, holdMs },
        'a better member is preferred; handing over after the hold-down',
      );
    }
    const outranked = this.outranked;
    if (outranked.timer) return;
    const random = this.options.random ?? Math.random;
    outranked.timer = this.clock.schedule(dueInMs + (holdMs * random()) / 5 + 10, () => {
      outranked.timer = undefined;
      this.emit('due');
    });
  }

  /** We hand over now: the hold-down ends, and the gate closes for the process's other pools. */
  handingOver(): void {
    this.clear();
    this.gate.record(this.clock.now());
  }

  /** We are preferred again, or no longer lead: the hold-down starts over. */
  clear(): void {
    this.outranked?.timer?.cancel();
    this.outranked = undefined;
  }
}
