/**
 * The claim pursuit: the etcd transactions by which a member takes the pool's leader claim,
 * takes back one it no longer wants, hands one to a successor in one write (`handOff`) or
 * releases it for the successor to claim (`release`) — with the claims it released, which are
 * never adopted again. What a claim is: claim.ts; when to make
 * or release one: decision.ts. This module knows nothing of the election: its methods return
 * what happened, `retry` says when a claim may be tried again, and the campaign listens.
 *
 * Every method awaits at most two etcd transactions, each bounded by the client's call
 * timeout, and never throws. One claim transaction runs at a time. After a failed claim no
 * attempt is made before the backoff ends (50 ms doubling to 1 s, jittered); then `retry` is
 * emitted. `stop()` cancels that timer.
 */
import { EventEmitter } from 'node:events';
import type { ComparatorBuilder, Etcd3, IKeyValue } from 'etcd3';
import type { Logger } from 'pino';
import type { MemberAddress } from '../errors.js';
import { describeEtcdError } from '../etcd/access.js';
import type { PoolKeys } from '../etcd/keys.js';
import type { LeaderClaim, MemberRecord } from '../membership/memberRecord.js';
import type { Registered } from '../membership/registration.js';
import { backoffDelayMs, type BackoffSchedule } from '../util/backoff.js';
import { systemClock, type Clock, type ClockTimer } from '../util/time.js';
import { fencedOn, type TicketBlock } from './claim.js';
import type { ClaimsState } from './decision.js';
import { putReleaseNote, type ReleaseReason } from './failover.js';
import type { MemberView, SeenTicketMark } from './poolView.js';

export interface ClaimPursuitOptions {
  keys: PoolKeys;
  /** Our MEMBER_ID, named in the release note of a handover. */
  memberId: string;
  /** Keys read in the claim's own transaction (see ElectionOptions). */
  readOnClaim?: string[] | undefined;
  logger: Logger;
  /** Default: the monotonic clock and real timers. */
  clock?: Clock;
}

/** A claim that committed: its term, and the `readOnClaim` values as of the claim. */
export interface Claimed {
  term: bigint;
  reads: (IKeyValue | undefined)[];
}

/** A handoff of the claim of `term` to `successor` (`ClaimPursuit.handOff`). */
export interface Handoff {
  term: bigint;
  successor: MemberView;
  /** Why, for the release note: `stop` and `resign` leave the pool, `handover` stays. */
  reason: ReleaseReason;
  /** Our member key, deleted in the same transaction, when we leave the pool. */
  leaving?: string | undefined;
  /**
   * The ticket mark as our view saw it, the highest mark this process has seen (`floor`) and
   * how many tickets to reserve for the successor; undefined: reserve none.
   */
  tickets?: { mark: SeenTicketMark; floor: bigint; size: number } | undefined;
}

/** How a handoff went: committed, refused by a guard, or unknown (etcd did not answer). */
export type HandoffOutcome = 'handed' | 'refused' | 'unknown';

/** A claim we released: its term, when (monotonic ms), and for a handoff not refused, to whom. */
interface Release {
  term: bigint;
  at: number;
  successor?: MemberAddress;
}

/** Between failed claims: 50 ms doubling to 1 s. */
const CLAIM_BACKOFF: BackoffSchedule = { initialMs: 50, maxMs: 1000 };

export class ClaimPursuit extends EventEmitter<{ retry: [] }> {
  private inFlight = false;
  /** After a failed claim, no new attempt before this (monotonic) time. */
  private notBefore = 0;
  /** Failed claims in a row: the backoff's attempt number. */
  private failures = 0;
  private retryTimer: ClockTimer | undefined;
  /** The claim we released last. */
  private lastRelease: Release | undefined;
  /** A repeat of that release's delete, in flight. */
  private releaseRetry: Promise<unknown> | undefined;
  private readonly clock: Clock;

  constructor(
    private readonly etcd: Etcd3,
    private readonly options: ClaimPursuitOptions,
  ) {
    super();
    this.clock = options.clock ?? systemClock;
  }

  /**
   * The member we are handing the claim of `term` to, from the moment the handoff is sent
   * (and after it committed); undefined when we hand nothing of `term` or a guard refused it.
   */
  successorOf(term: bigint): MemberAddress | undefined {
    return this.lastRelease?.term === term ? this.lastRelease.successor : undefined;
  }

  /** Whether the claim we released last (a handoff or a release) is that of `term`. */
  released(term: bigint): boolean {
    return this.lastRelease?.term === term;
  }

  /** What the decision (decision.ts) needs to know of the claims in flight and released. */
  get state(): ClaimsState {
    return { inFlight: this.inFlight, notBefore: this.notBefore, released: this.lastRelease };
  }

  /**
   * Claims the leader key for `registered` in one transaction: it must be absent (or still
   * hold the invalid value at `replaceTerm`), and the member key must still be ours. Resolves
   * with the term when it committed; undefined when it did not, failed (then the backoff
   * runs), or another claim was in flight.
   */
  async claim(
    registered: Registered,
    self: Pick<MemberRecord, 'id' | 'url'>,
    replaceTerm: bigint | undefined,
  ): Promise<Claimed | undefined> {
    if (this.inFlight) return undefined;
    this.inFlight = true;
    const { keys, logger } = this.options;
    const claim: LeaderClaim = {
      memberKey: registered.memberKey,
      id: self.id,
      url: self.url,
      claimedAt: new Date().toISOString(),
    };
    const reads = this.options.readOnClaim ?? [];
    let claimed: Claimed | undefined;
    try {
      const guard =
        replaceTerm === undefined
          ? this.etcd.if(keys.leader, 'Version', '==', 0)
          : fencedOn(this.etcd, keys, replaceTerm);
      const result = await guard
        .and(registered.memberKey, 'Create', '==', registered.createRevision.toString())
        .then(
          this.etcd.put(keys.leader).value(JSON.stringify(claim)).lease(registered.lease.id),
          ...reads.map((key) => this.etcd.get(key)),
        )
        .commit();
      if (result.succeeded) {
        const values = reads.map((_, i) => result.responses[i + 1]?.response_range?.kvs[0]);
        claimed = { term: BigInt(result.header.revision), reads: values };
      }
    } catch (error) {
      if (this.failures === 0)
        logger.warn(
          { err: describeEtcdError(error) },
          'leader claim failed; retrying with backoff',
        );
    } finally {
      this.inFlight = false;
    }
    if (claimed) {
      this.failures = 0;
      this.notBefore = 0;
    } else this.backOff();
    return claimed;
  }

  /**
   * Never retry straight after a failure: when etcd fails fast (an open circuit breaker) that
   * would spin and starve the event loop. Back off, with jitter, and say when to try again.
   */
  private backOff(): void {
    // Jitter below the schedule only: never later than its delay.
    const delayMs = backoffDelayMs(CLAIM_BACKOFF, this.failures++) * (0.5 + Math.random() / 2);
    this.notBefore = this.clock.now() + delayMs;
    this.retryTimer?.cancel();
    this.retryTimer = this.clock.schedule(delayMs, () => this.emit('retry'));
  }

  /**
   * Deletes the claim of `term`, fenced on it: we won it but no longer want it (we left or
   * registered again while it was in flight). Counts as a claim in flight until answered.
   */
  async takeBack(term: bigint): Promise<void> {
    this.inFlight = true;
    try {
      await fencedOn(this.etcd, this.options.keys, term)
        .then(this.etcd.delete().key(this.options.keys.leader))
        .commit();
    } catch (error) {
      this.options.logger.warn(
        { err: describeEtcdError(error) },
        'taking back our unwanted claim failed; our lease ends it',
      );
    } finally {
      this.inFlight = false;
    }
  }

  /**
   * Hands our claim over to its successor in ONE transaction (docs/design-choices.md,
   * "Handoff in one write"): while the claim is still at `term`, the successor's member key
   * still has the create revision we saw (so its lease is alive) and the ticket mark is still
   * the one we saw, it rewrites the claim to name the successor, bound to the successor's
   * lease, puts the release note, deletes our member key when we leave, and raises the mark by
   * one block that the claim carries. The successor leads on the watch event of that put,
   * under its revision. `term` counts as released from now on. Awaits one transaction,
   * bounded by the client's call timeout; never throws. Not 'handed': the caller falls back to
   * deleting the claim, whose guards make it harmless should the handoff have committed after
   * all.
   */
  async handOff(handoff: Handoff): Promise<HandoffOutcome> {
    const { term, successor, reason } = handoff;
    const { id, url } = successor.record;
    const release: Release = { term, at: this.clock.now(), successor: { id, url } };
    this.lastRelease = release;
    const { logger } = this.options;
    const transaction = this.handoffTransaction(handoff);
    try {
      const result = await transaction.commit();
      const context = { term: term.toString(), successor: successor.record.id, reason };
      if (!result.succeeded) {
        logger.info(context, 'the claim, the successor or the ticket mark changed; not handed');
        // Not handed: no successor to name (still released: we stopped acting under it).
        delete release.successor;
        return 'refused';
      }
      logger.info({ ...context, newTerm: result.header.revision }, 'handed leadership over');
      return 'handed';
    } catch (error) {
      logger.warn({ err: describeEtcdError(error) }, 'handing the claim over failed');
      return 'unknown';
    }
  }

  /**
   * Sends, once, a transaction shaped as `handOff`'s — the same guards and operations, to
   * ourselves as the successor — that cannot commit: a last guard (the claim's version below
   * 0) never holds, so etcd writes nothing and no revision passes. Its point is the client's
   * first use of those message types (encoders the protobuf library generates on first
   * encode, ~1–2 ms of a cold process here): paid now, at registration, not by the handoff of
   * a leaving leader, whose transaction is on the handover's critical path. Never throws; a
   * failure is only logged at debug level.
   */
  async rehearseHandOff(
    registered: Registered,
    self: Pick<MemberRecord, 'id' | 'url'>,
  ): Promise<void> {
    const successor = {
      key: registered.memberKey,
      leaseId: registered.lease.id,
      createRevision: registered.createRevision,
      record: self,
    };
    const mark = { value: 0n, modRevision: 0n };
    const rehearsal = this.handoffTransaction(
      {
        term: 0n,
        successor,
        reason: 'stop',
        leaving: registered.memberKey,
        tickets: { mark, floor: 0n, size: 1 },
      },
      (guard) => guard.and(this.options.keys.leader, 'Version', '<', 0),
    );
    try {
      const result = await rehearsal.commit();
      if (result.succeeded) {
        // Cannot happen (a key's version is never below 0); if it did, say so loudly.
        this.options.logger.error(
          { revision: result.header.revision },
          'the handoff rehearsal committed: our claim and member key may have been rewritten',
        );
      }
    } catch (error) {
      this.options.logger.debug({ err: describeEtcdError(error) }, 'handoff rehearsal failed');
    }
  }

  /**
   * `handoff`'s one transaction (see `handOff`), its guards narrowed by `narrow` if given;
   * built, not sent.
   */
  private handoffTransaction(
    handoff: Omit<Handoff, 'successor'> & {
      successor: Pick<MemberView, 'key' | 'leaseId' | 'createRevision'> & {
        record: Pick<MemberRecord, 'id' | 'url'>;
      };
    },
    narrow: (guard: ComparatorBuilder) => ComparatorBuilder = (guard) => guard,
  ): ComparatorBuilder {
    const { term, successor, reason, leaving, tickets } = handoff;
    const { keys, memberId } = this.options;
    const block = tickets && reserved(tickets);
    const claim: LeaderClaim = {
      memberKey: successor.key,
      id: successor.record.id,
      url: successor.record.url,
      claimedAt: new Date().toISOString(),
      handedBy: memberId,
      ...(block && { tickets: { first: block.first.toString(), last: block.last.toString() } }),
    };
    let guard = fencedOn(this.etcd, keys, term).and(
      successor.key,
      'Create',
      '==',
      successor.createRevision.toString(),
    );
    if (tickets)
      guard = guard.and(keys.ticketHighWater, 'Mod', '==', tickets.mark.modRevision.toString());
    return narrow(guard).then(
      this.etcd.put(keys.leader).value(JSON.stringify(claim)).lease(successor.leaseId),
      putReleaseNote(this.etcd, keys.released, { term, holder: memberId, reason }),
      ...(leaving === undefined ? [] : [this.etcd.delete().key(leaving)]),
      ...(block ? [this.etcd.put(keys.ticketHighWater).value(block.last.toString())] : []),
    );
  }

  /**
   * Hands our claim of `term` over to `successor`: deletes it, fenced on `term`, with a
   * release note. `term` counts as released from now on, even while the watch still shows
   * it. Awaits one transaction; a failure is logged, and `releaseAgain` deletes it again.
   */
  async release(term: bigint, successor: MemberView): Promise<void> {
    this.lastRelease = { term, at: this.clock.now() };
    const { keys, memberId, logger } = this.options;
    logger.info(
      { term: term.toString(), successor: successor.record.id },
      'handing leadership over',
    );
    try {
      await fencedOn(this.etcd, keys, term)
        .then(
          this.etcd.delete().key(keys.leader),
          putReleaseNote(this.etcd, keys.released, { term, holder: memberId, reason: 'handover' }),
        )
        .commit();
    } catch (error) {
      logger.warn({ err: describeEtcdError(error) }, 'releasing the claim failed');
    }
  }

  /**
   * The claim of `term` we released still names us, well after the release (its delete
   * failed, or a restore of etcd brought it back): delete it again, only if it is still that
   * claim. No one acts on it, so the pool would otherwise wait for our lease to end. Never
   * blocks; one repeat at a time.
   */
  releaseAgain(term: bigint): void {
    if (this.releaseRetry) return;
    const { keys, logger } = this.options;
    this.releaseRetry = fencedOn(this.etcd, keys, term)
      .then(this.etcd.delete().key(keys.leader))
      .commit()
      .then((result) => {
        if (result.succeeded)
          logger.info({ term: term.toString() }, 'deleted our released claim again');
      })
      .catch((error: unknown) => {
        logger.warn({ err: describeEtcdError(error) }, 'deleting our released claim failed');
      })
      .finally(() => (this.releaseRetry = undefined));
  }

  /** etcd went back in time: a term we released may now mean another claim. */
  forgetReleases(): void {
    this.lastRelease = undefined;
  }

  /** Cancels the retry after a failed claim. */
  stop(): void {
    this.retryTimer?.cancel();
  }
}

/**
 * The block of `size` above the mark — and above every mark this process has seen (`floor`),
 * lest a restore of etcd from an older backup make us hand out tickets already issued.
 */
function reserved(tickets: { mark: SeenTicketMark; floor: bigint; size: number }): TicketBlock {
  const { mark, floor, size } = tickets;
  const highWater = mark.value > floor ? mark.value : floor;
  return { first: highWater + 1n, last: highWater + BigInt(size) };
}
