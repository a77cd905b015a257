/**
 * One member's campaign for the leadership of one pool, as etcd's `Campaign`: it holds the
 * term it won until that ends, and on every `advance()` decides from the local view what to
 * do (decision.ts) and does it — claim (claimPursuit.ts), adopt, take over a claim handed to
 * us, hold down or hand over (preemption.ts), release again, register anew
 * (membership/registration.ts). When its member leaves, it hands the claim on (`handOffOnLeave`).
 *
 * `advance()` is synchronous and never throws; the etcd transactions it starts go on in the
 * background, each bounded by the client's call timeout. When one of them is over, a hold-down
 * runs out or a failed claim may be retried, it emits `due`: its owner (the election) should
 * advance it again, and look at what changed. It never calls its owner. `stop()` cancels its
 * timers and ends the term.
 */
import { EventEmitter } from 'node:events';
import type { Etcd3, IKeyValue } from 'etcd3';
import type { Logger } from 'pino';
import type { MemberAddress } from '../errors.js';
import type { PoolKeys } from '../etcd/keys.js';
import type { PoolMetrics } from '../metrics/metrics.js';
import type { MemberRegistration } from '../membership/registration.js';
import { monotonicNow } from '../util/time.js';
import type { TicketBlock } from './claim.js';
import { ClaimPursuit, type HandoffOutcome } from './claimPursuit.js';
import { decide, type ElectionState, type Step } from './decision.js';
import type { ReleaseReason } from './failover.js';
import type { LeadershipEndReason } from './leadershipEnd.js';
import type { ServiceConflictError } from './poolIdentity.js';
import type { MemberView, PoolView } from './poolView.js';
import { Preemption, type HandoverGate } from './preemption.js';
import { oldest, type LeaderStrategy } from './strategy.js';

export interface CampaignEvents {
  /** We hold the claim under `term` (see ElectionEvents). */
  claimed: [
    term: bigint,
    reads: (IKeyValue | undefined)[] | undefined,
    tickets: TicketBlock | undefined,
  ];
  /** We gave up the term we held, for `reason` (see ElectionEvents). */
  released: [term: bigint, reason: LeadershipEndReason];
  /** The pool belongs to another service: the owner should close and stop. */
  conflict: [error: ServiceConflictError];
  /** A claim or release is over, a hold-down ran out, or a claim may be retried: advance. */
  due: [];
}

/** What a campaign needs; see ElectionOptions for the meaning of each. */
export interface CampaignOptions {
  pool: string;
  keys: PoolKeys;
  safetyMarginMs: number;
  strategy?: LeaderStrategy | undefined;
  preemptAfterMs?: number | undefined;
  handovers?: HandoverGate | undefined;
  readOnClaim?: string[] | undefined;
  handoffTickets?: number | undefined;
  logger: Logger;
  metrics: PoolMetrics;
}

/** Whether this process has rehearsed a handoff (`Campaign.rehearseHandOff`). */
let rehearsed = false;

export class Campaign extends EventEmitter<CampaignEvents> {
  private held: bigint | undefined;
  private readonly preemption: Preemption;
  private readonly claims: ClaimPursuit;
  private readonly logger: Logger;

  constructor(
    etcd: Etcd3,
    private readonly view: PoolView,
    private readonly registration: MemberRegistration,
    private readonly options: CampaignOptions,
  ) {
    super();
    const { pool, keys, logger, metrics, preemptAfterMs, handovers, readOnClaim } = options;
    this.logger = logger;
    const strategy = options.strategy ?? oldest;
    this.preemption = new Preemption({
      pool,
      strategy,
      preemptAfterMs,
      handovers,
      logger,
      metrics,
    });
    const memberId = registration.record.id;
    this.claims = new ClaimPursuit(etcd, { keys, memberId, readOnClaim, logger });
    this.preemption.on('due', () => this.emit('due'));
    this.claims.on('retry', () => this.emit('due'));
  }

  /** The term we hold, if any — also after its lease deadline passed (decision.ts, `leads`). */
  get heldTerm(): bigint | undefined {
    return this.held;
  }

  /**
   * Sends a handoff-shaped transaction that cannot commit, so that the handoff of a leaving
   * leader pays no first-use costs in the etcd client (ClaimPursuit.rehearseHandOff): once
   * per process (the costs are the process's), by a member that may lead. Does not block; a
   * no-op while unregistered.
   */
  rehearseHandOff(): void {
    const registered = this.registration.current;
    const { record } = this.registration;
    if (rehearsed || !registered || !record.candidate) return;
    rehearsed = true;
    void this.claims.rehearseHandOff(registered, record);
  }

  /** Whether the claim we released last (a handoff or a release) is that of `term`. */
  released(term: bigint): boolean {
    return this.claims.released(term);
  }

  /** The member we hand (or handed) the claim of `term` to (ClaimPursuit.successorOf). */
  successorOf(term: bigint): MemberAddress | undefined {
    return this.claims.successorOf(term);
  }

  /** Decides what to do now and does it. Cheap and synchronous; never throws. */
  advance(): void {
    const steps = decide(this.state());
    for (const step of steps) this.carryOut(step);
    if (steps.at(-1)?.kind !== 'holdDown') this.preemption.clear();
  }

  /**
   * Gives up the term we hold, if any, and says why (`released`); returns it. Every path that
   * ends a term comes here, so that leadership.ts can tell its watchers why.
   */
  endTerm(reason: LeadershipEndReason): bigint | undefined {
    const held = this.held;
    this.held = undefined;
    if (held !== undefined) this.emit('released', held, reason);
    return held;
  }

  /**
   * etcd went back in time (restored from an older backup): our term, our key's create
   * revision and our lease may all belong to a history etcd no longer has, and a claim or a
   * key with the same revision may now mean something else. So nothing of it is trusted: stop
   * acting as leader at once, drop the registration and register anew in the etcd that is.
   */
  startOver(): void {
    if (this.held !== undefined) {
      this.logger.warn(
        { term: this.held.toString() },
        'leadership dropped: etcd went back in time',
      );
    }
    this.endTerm('claim lost');
    this.claims.forgetReleases();
    this.registration.drop();
  }

  /**
   * We leave the pool (`reason`: stop or resign) holding the claim of `term`: hand it to the
   * member the strategy prefers among the others, deleting our member key `leaving` in the
   * same transaction (claimPursuit.ts, `handOff`). The term must have ended already: we do not
   * act as leader from here on, whatever the outcome. Awaits at most one transaction; never
   * throws. Resolves 'refused' at once when no other member may lead.
   */
  async handOffOnLeave(
    term: bigint,
    reason: Exclude<ReleaseReason, 'handover'>,
    leaving: string,
  ): Promise<HandoffOutcome> {
    const successor = this.preemption.successor(this.view, leaving);
    if (!successor) return 'refused';
    return this.claims.handOff({ term, successor, reason, leaving, tickets: this.ticketsToHand() });
  }

  /**
   * The ticket block to reserve for a successor, from the mark as the view sees it; none
   * while the mark is damaged or etcd went back in time moments ago (etcdHistory.ts).
   */
  private ticketsToHand() {
    const size = this.options.handoffTickets;
    const { ticketMark: mark, history } = this.view;
    if (!size || !mark || !history.settled(monotonicNow())) return undefined;
    return { mark, floor: history.highestTicketMark, size };
  }

  /** Cancels the hold-down and the claim retry, and ends the term ('shutdown'). */
  stop(): void {
    this.claims.stop();
    this.preemption.clear();
    this.endTerm('shutdown');
  }

  /** What the decision reads, as of now. */
  private state(): ElectionState {
    const { registration, view, options } = this;
    const registered = registration.current;
    return {
      now: monotonicNow(),
      view,
      identity: {
        service: registration.record.service,
        pool: options.pool,
        prefix: options.keys.prefix,
      },
      registration: {
        current: registered,
        pending: registration.pending,
        leaving: registration.leaving,
      },
      heldTerm: this.held,
      safetyMarginMs: options.safetyMarginMs,
      preferred: registered && this.preemption.preferred(view, registered.memberKey),
      preempts: this.preemption.preempts,
      holdDown: this.preemption.holdDown,
      claims: this.claims.state,
    };
  }

  private carryOut(step: Step): void {
    switch (step.kind) {
      case 'stepDown':
        this.logger.warn(
          { term: step.term.toString() },
          'leadership lost: the claim changed in etcd',
        );
        this.endTerm('claim lost');
        return;
      case 'register':
        // Registered or registering, always: a re-registration asked for while another was
        // finishing would otherwise be absorbed by it and never happen.
        void this.registration.register(false);
        return;
      case 'reregister':
        this.logger.warn(
          { memberKey: step.memberKey },
          'our member key vanished; registering again',
        );
        this.registration.drop();
        return;
      case 'withdraw':
        this.emit('conflict', step.conflict);
        return;
      case 'claim':
        void this.claimLeadership(step.replaceTerm);
        return;
      case 'adopt':
        // Our claim committed but its answer was lost (a timeout).
        this.held = step.term;
        this.logger.info({ term: step.term.toString() }, 'adopted our own leader claim');
        this.emit('claimed', step.term, undefined, undefined);
        return;
      case 'takeOver':
        this.held = step.term;
        this.logger.info(
          { term: step.term.toString(), from: step.from },
          'took over the leadership handed to us',
        );
        this.emit('claimed', step.term, undefined, step.tickets);
        return;
      case 'holdDown':
        return this.preemption.holdDownFor(step.successor, step.dueInMs);
      case 'handOver':
        void this.handOver(step.term, step.successor);
        return;
      case 'releaseAgain':
        return this.claims.releaseAgain(step.term);
      case 'lead':
      case 'wait':
        return;
    }
  }

  /**
   * Hands the claim of `term` over to `successor` (claimPursuit.ts), if we still hold it: in
   * one transaction, or else by deleting it for the successor to claim.
   */
  private async handOver(term: bigint, successor: MemberView): Promise<void> {
    if (this.held !== term) return;
    this.preemption.handingOver();
    this.endTerm('handed over');
    const tickets = this.ticketsToHand();
    const outcome = await this.claims.handOff({ term, successor, reason: 'handover', tickets });
    if (outcome !== 'handed') await this.claims.release(term, successor);
    this.emit('due');
  }

  /**
   * Claims the leader key (claimPursuit.ts): the term is ours if the claim commits while we
   * are still this registration and not leaving; else we take the claim back. Never throws;
   * `due` after the attempt.
   */
  private async claimLeadership(replaceTerm: bigint | undefined): Promise<void> {
    const registered = this.registration.current;
    if (!registered) return;
    const claimed = await this.claims.claim(registered, this.registration.record, replaceTerm);
    if (claimed && (this.registration.current !== registered || this.registration.leaving)) {
      // We left (or re-registered) while the claim was in flight: take it back.
      await this.claims.takeBack(claimed.term);
    } else if (claimed) {
      this.held = claimed.term;
      this.logger.info({ term: claimed.term.toString() }, 'claimed leadership');
      this.emit('claimed', claimed.term, claimed.reads, undefined);
    }
    this.emit('due');
  }
}
