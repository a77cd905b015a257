/**
 * The leader claim: the value at the pool's leader key, bound to its holder's lease, whose mod
 * revision is the term (docs/design-choices.md, "Election"). This module says which claim
 * counts (`verifiedClaim`, pure) and makes claims (`ClaimAttempts`): one compare-and-swap
 * transaction at a time, with backoff after a failure.
 *
 * `ClaimAttempts.claim` awaits one or two etcd transactions (each bounded by the client's call
 * timeout) and never throws. After a failure no attempt is made before the backoff ends
 * (50 ms doubling to 1 s, jittered); then `retry` is emitted. `stop()` cancels that timer.
 */
import { EventEmitter } from 'node:events';
import type { ComparatorBuilder, Etcd3, IKeyValue } from 'etcd3';
import type { Logger } from 'pino';
import { describeEtcdError } from '../etcd/access.js';
import type { PoolKeys } from '../etcd/keys.js';
import type { LeaderClaim, MemberRecord } from '../membership/memberRecord.js';
import type { Registered } from '../membership/registration.js';
import { monotonicNow } from '../util/time.js';
import { runsService } from './poolIdentity.js';
import type { PoolView } from './poolView.js';

/**
 * The claim, if it is valid and names a registered member under the claim's own lease with
 * the URL that member registered, of `service` (or of none named). Work is only ever
 * forwarded to such a URL: a forged claim cannot redirect it, nor can another service's
 * leader get our work in the moment before we find the pool is not ours.
 */
export function verifiedClaim(
  view: Pick<PoolView, 'claim' | 'member'>,
  service: MemberRecord['service'],
): LeaderClaim | undefined {
  const claimView = view.claim;
  const claim = claimView?.claim;
  if (!claimView || !claim) return undefined;
  const member = view.member(claim.memberKey);
  const genuine =
    member !== undefined &&
    member.leaseId === claimView.leaseId &&
    member.record.url === claim.url &&
    member.record.id === claim.id &&
    runsService(member, service);
  return genuine ? claim : undefined;
}

export interface ClaimOptions {
  keys: PoolKeys;
  /** Keys read in the claim's own transaction (see ElectionOptions). */
  readOnClaim?: string[] | undefined;
  /** A transaction that commits only while `term` is still the claim's revision. */
  fenced: (term: bigint) => ComparatorBuilder;
  logger: Logger;
}

export class ClaimAttempts extends EventEmitter<{ retry: [] }> {
  private inFlight = false;
  /** After a failed claim, no new attempt before this (monotonic) time. */
  private notBefore = 0;
  private backoffMs = 0;
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly etcd: Etcd3,
    private readonly options: ClaimOptions,
  ) {
    super();
  }

  /** True while a claim transaction is in flight. */
  get claiming(): boolean {
    return this.inFlight;
  }

  /** Whether the backoff after a failed claim is over at `now` (monotonic milliseconds). */
  mayClaim(now = monotonicNow()): boolean {
    return now >= this.notBefore;
  }

  /**
   * Claims the leader key for `registered` in one transaction: it must be absent (or still
   * hold the invalid value at `replaceTerm`), and the member key must still be ours. When it
   * commits, `won(term, reads)` says whether we still want it (the values of `readOnClaim` as
   * of the claim); if not (we left or re-registered meanwhile), the claim is deleted again.
   * Resolves false at once, without trying, while another claim is in flight or the lease
   * is not alive; else true when the attempt is over.
   */
  async claim(
    registered: Registered,
    self: Pick<MemberRecord, 'id' | 'url'>,
    replaceTerm: bigint | undefined,
    won: (term: bigint, reads: (IKeyValue | undefined)[]) => boolean,
  ): Promise<boolean> {
    if (this.inFlight || !registered.lease.isAlive) return false;
    this.inFlight = true;
    const { keys, logger } = this.options;
    const claim: LeaderClaim = {
      memberKey: registered.memberKey,
      id: self.id,
      url: self.url,
      claimedAt: new Date().toISOString(),
    };
    const reads = this.options.readOnClaim ?? [];
    let failed = false;
    try {
      const guard =
        replaceTerm === undefined
          ? this.etcd.if(keys.leader, 'Version', '==', 0)
          : this.etcd.if(keys.leader, 'Mod', '==', replaceTerm.toString());
      const result = await guard
        .and(registered.memberKey, 'Create', '==', registered.createRevision.toString())
        .then(
          this.etcd.put(keys.leader).value(JSON.stringify(claim)).lease(registered.lease.id),
          ...reads.map((key) => this.etcd.get(key)),
        )
        .commit();
      failed = !result.succeeded;
      if (result.succeeded) {
        const term = BigInt(result.header.revision);
        const values = reads.map((_, i) => result.responses[i + 1]?.response_range?.kvs[0]);
        if (!won(term, values)) {
          // We left (or re-registered) while the claim was in flight: take it back.
          await this.options.fenced(term).then(this.etcd.delete().key(keys.leader)).commit();
        }
      }
    } catch (error) {
      failed = true;
      if (this.backoffMs === 0)
        logger.warn(
          { err: describeEtcdError(error) },
          'leader claim failed; retrying with backoff',
        );
    } finally {
      this.inFlight = false;
    }
    if (failed) {
      // Never retry straight from here: when etcd fails fast (an open circuit breaker) that
      // would spin and starve the event loop. Back off, with jitter, and re-evaluate.
      this.backoffMs = Math.min(Math.max(this.backoffMs * 2, 50), 1000);
      const delayMs = this.backoffMs * (0.5 + Math.random() / 2);
      this.notBefore = monotonicNow() + delayMs;
      clearTimeout(this.retryTimer);
      this.retryTimer = setTimeout(() => this.emit('retry'), delayMs);
      this.retryTimer.unref();
    } else {
      this.backoffMs = 0;
      this.notBefore = 0;
    }
    return true;
  }

  /** Cancels the retry after a failed claim. */
  stop(): void {
    clearTimeout(this.retryTimer);
  }
}
