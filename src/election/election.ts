/**
 * One member's election in one pool (docs/design.md, "Election").
 *
 * - `start()` grants a lease, takes over the registration of a previous incarnation with the
 *   same id (start-up only), puts the member key create-if-absent, and syncs the pool view.
 * - On every view change, lease renewal and a short tick, `evaluate()` asks the strategy who
 *   should lead. The preferred member claims the absent leader key in one compare-and-swap
 *   bound to its lease; a holder that is no longer preferred releases it.
 * - `isLeader()` is synchronous and local: the claim is ours AND the lease deadline, minus a
 *   safety margin, is in the future. A paused or partitioned leader stops acting as leader
 *   before etcd can expire its lease and let another member claim.
 * - `fenced()` starts a transaction that only commits while our claim is unchanged: a stale
 *   leader's write fails.
 * - `leave()` (graceful shutdown) deletes the claim and our member key in one transaction, so
 *   the successor sees the pool without us and claims within milliseconds.
 */
import { EventEmitter } from 'node:events';
import type { ComparatorBuilder, Etcd3, IKeyValue } from 'etcd3';
import type { Logger } from 'pino';
import { describeEtcdError } from '../etcd/access.js';
import type { PoolKeys } from '../etcd/keys.js';
import { MemberLease, type KeptLease, type LeaseGrantor } from '../membership/lease.js';
import {
  memberRecordSchema,
  type LeaderClaim,
  type MemberRecord,
} from '../membership/memberRecord.js';
import type { PoolMetrics } from '../metrics/metrics.js';
import { candidates } from './candidates.js';
import {
  FAILOVER_CAUSES,
  FailoverClock,
  type FailoverCause,
  type ReleaseNote,
  type ReleaseReason,
} from './failover.js';
import { settleIncarnations } from './incarnations.js';
import { runsService, serviceConflict, type ServiceConflictError } from './poolIdentity.js';
import { PoolView, type MemberView } from './poolView.js';
import { FALLBACK_REASONS, oldest, StrategyFallback, type LeaderStrategy } from './strategy.js';
import { asError } from '../util/errors.js';
import { monotonicNow, sleep } from '../util/time.js';

export interface LeaderInfo {
  id: string;
  url: string;
  memberKey: string;
  term: bigint;
  self: boolean;
}

/** Allows one handover per hold-down across the pools of a process (see ElectionOptions). */
export class HandoverGate {
  private last = -Infinity;

  mayHandOver(holdMs: number, now = monotonicNow()): boolean {
    return now - this.last >= holdMs;
  }

  record(now = monotonicNow()): void {
    this.last = now;
  }
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

/** How long a released claim may still name us before we delete it again (milliseconds). */
const RELEASE_SETTLE_MS = 1000;

export interface ElectionEvents {
  /** Anything that may change `isLeader()`, `leader()` or readiness. */
  change: [];
  leaderChanged: [leader: LeaderInfo | undefined, previous: LeaderInfo | undefined];
  /**
   * We hold the claim under `term`: `reads` are the `readOnClaim` keys as of the claim, or
   * undefined when we adopted a claim whose answer we never saw.
   */
  claimed: [term: bigint, reads: (IKeyValue | undefined)[] | undefined];
  /**
   * Another process with our MEMBER_ID holds a registration while ours is gone (it took ours
   * over while we were frozen or cut off). We do not register again: two members with one id
   * cannot be told apart. The election stops; the owner should exit.
   */
  superseded: [other: { memberKey: string; url: string; pid: number; startedAt: string }];
  /**
   * The pool belongs to another service, whose member registered before ours (two services
   * registering at once: the later withdraws). We revoked our registration; the election
   * stops. The owner should exit with the error's message.
   */
  refused: [error: ServiceConflictError];
}

export interface ElectionOptions {
  pool: string;
  keys: PoolKeys;
  record: Omit<MemberRecord, 'pool'>;
  leaseTtlSeconds: number;
  safetyMarginMs: number;
  callTimeoutMs: number;
  reconcileIntervalMs: number;
  strategy?: LeaderStrategy;
  /** How long a better member must stay preferred before the leader hands over to it. */
  preemptAfterMs?: number;
  /**
   * Shared by the pools of one process: at most one of them hands over per hold-down, so
   * that pools whose preferences depend on each other (`avoid` with AVOID_POOLS) settle one
   * change at a time instead of swapping leaders back and forth.
   */
  handovers?: HandoverGate;
  /**
   * Keys read in the claim's own transaction. Their values as of the claim come with the
   * `claimed` event, so leader-owned state (the ticket mark) costs no extra read on the path
   * of the first request after a failover.
   */
  readOnClaim?: string[];
  /**
   * Grants the member's leases and keeps them alive. Default: keep-alives on this thread, on
   * the election's etcd client. The member passes a `LeaseThread`, so that load on this
   * thread cannot delay them.
   */
  leases?: LeaseGrantor;
  logger: Logger;
  metrics: PoolMetrics;
}

interface Registration {
  lease: KeptLease;
  memberKey: string;
  createRevision: bigint;
}

export class PoolElection extends EventEmitter<ElectionEvents> {
  readonly view: PoolView;
  private registration: Registration | undefined;
  private registering: Promise<void> | undefined;
  private heldTerm: bigint | undefined;
  private claiming = false;
  /** After a failed claim, no new attempt before this (monotonic) time. */
  private claimNotBefore = 0;
  private claimBackoffMs = 0;
  private claimRetry: NodeJS.Timeout | undefined;
  private leaving = false;
  private stopped = false;
  private tick: NodeJS.Timeout | undefined;
  private lastLeader: LeaderInfo | undefined;
  private readonly changes: LeaderChange[] = [];
  /** The last leader there was, kept across a leaderless gap for logs and events. */
  private lastKnownLeader: LeaderInfo | undefined;
  private leaderlessSince: number | undefined;
  private readonly failovers: FailoverClock;
  private readonly strategy: LeaderStrategy;
  private readonly leases: LeaseGrantor;
  /** Our record as we register it; `leads` changes as we win and lose pools. */
  private record: Omit<MemberRecord, 'pool'>;
  /** The strategy's choice, remembered per view revision: a tick does not re-run it. */
  private preference:
    | { revision: bigint; self: string; member: MemberView | undefined }
    | undefined;
  /** Since when (monotonic) the strategy has preferred another member while we lead. */
  private outranked: { since: number; timer: NodeJS.Timeout } | undefined;
  private lastFallback: { reason: string; at: number } | undefined;
  private releasedTerm: bigint | undefined;
  /** When (monotonic) we released `releasedTerm`, and a repeat of that delete in flight. */
  private releasedAt = 0;
  private releaseRetry: Promise<unknown> | undefined;
  /** What the last `change` event reflected (see `emitIfChanged`). */
  private lastObserved = '';
  private readonly logger: Logger;

  constructor(
    private readonly etcd: Etcd3,
    private readonly options: ElectionOptions,
  ) {
    super();
    this.setMaxListeners(0);
    this.strategy = options.strategy ?? oldest;
    this.leases = options.leases ?? {
      grant: (ttlSeconds, callTimeoutMs) => MemberLease.grant(etcd, ttlSeconds, callTimeoutMs),
    };
    this.record = options.record;
    this.logger = options.logger;
    this.failovers = new FailoverClock(options.leaseTtlSeconds * 1000);
    this.view = new PoolView(etcd, {
      pool: options.pool,
      keys: options.keys,
      reconcileIntervalMs: options.reconcileIntervalMs,
      watchCreateTimeoutMs: Math.max(1000, options.callTimeoutMs * 2),
      logger: options.logger,
      metrics: options.metrics,
    });
    // Series exist from the start at 0, so that rate() and increase() see the first event.
    const { metrics, pool } = options;
    metrics.leaderChanges.inc({ pool }, 0);
    metrics.keepAliveFailures.inc({ pool }, 0);
    for (const cause of FAILOVER_CAUSES) metrics.failoverDuration.zero({ pool, cause });
    metrics.leaderlessDuration.zero({ pool });
    metrics.leaseRenewalTimeLeft.zero({ pool });
    for (const reason of FALLBACK_REASONS) metrics.strategyFallbacks.inc({ pool, reason }, 0);
    metrics.ticketBlocks.inc({ pool }, 0);
    this.view.on('change', () => this.evaluate());
    this.view.on('reachability', () => this.evaluate());
    this.view.on('rollback', () => this.startOver());
  }

  get pool(): string {
    return this.options.pool;
  }

  get memberId(): string {
    return this.record.id;
  }

  /**
   * Whether `members` (default: the view's) belong to another service than ours, the rule of
   * poolIdentity.ts: the member checks the pool with it before it joins.
   */
  serviceConflict(
    members: readonly MemberView[] = this.view.members,
  ): ServiceConflictError | undefined {
    const { pool, keys } = this.options;
    return serviceConflict(members, { service: this.record.service, pool, prefix: keys.prefix });
  }

  /** Our record as we register it (the pool's name aside). */
  get memberRecord(): Readonly<Omit<MemberRecord, 'pool'>> {
    return this.record;
  }

  /** True once `close()` ran: nothing of this election acts any more. */
  get closed(): boolean {
    return this.stopped;
  }

  get memberKey(): string | undefined {
    return this.registration?.memberKey;
  }

  /** Registers and syncs. Retries etcd failures with backoff until it succeeds or stops. */
  async start(): Promise<void> {
    const tickMs = Math.min(250, (this.options.leaseTtlSeconds * 1000) / 10);
    this.tick = setInterval(() => this.evaluate(), tickMs);
    this.tick.unref();
    await Promise.all([this.register(true), this.view.start()]);
    this.evaluate();
  }

  /**
   * Am I leader? The claim is mine and my lease deadline, minus the safety margin, is ahead.
   * Synchronous and local, so it can be asked on every request.
   */
  isLeader(now = monotonicNow()): boolean {
    const registration = this.registration;
    return (
      this.heldTerm !== undefined &&
      registration !== undefined &&
      registration.lease.isAlive &&
      now < registration.lease.leaseDeadline - this.options.safetyMarginMs
    );
  }

  /** The term (fencing token) while `isLeader()`, else undefined. */
  get term(): bigint | undefined {
    return this.isLeader() ? this.heldTerm : undefined;
  }

  /** The leader as the local view sees it, or undefined while the pool has none. */
  leader(): LeaderInfo | undefined {
    const claimView = this.view.claim;
    const claim = this.verifiedClaim();
    if (!claimView || !claim) return undefined;
    return {
      id: claim.id,
      url: claim.url,
      memberKey: claim.memberKey,
      term: claimView.term,
      self: claim.memberKey === this.registration?.memberKey,
    };
  }

  /**
   * The claim, if it is valid and names a registered member under the claim's own lease with
   * the URL that member registered, of our service (or of none named). Work is only ever
   * forwarded to such a URL: a forged claim cannot redirect it, nor can another service's
   * leader get our work in the moment before we find the pool is not ours.
   */
  private verifiedClaim(): LeaderClaim | undefined {
    const claimView = this.view.claim;
    const claim = claimView?.claim;
    if (!claimView || !claim) return undefined;
    const member = this.view.member(claim.memberKey);
    const genuine =
      member !== undefined &&
      member.leaseId === claimView.leaseId &&
      member.record.url === claim.url &&
      member.record.id === claim.id &&
      runsService(member, this.record.service);
    return genuine ? claim : undefined;
  }

  /**
   * Ready: registered, synced, etcd reachable, lease safely alive, not leaving — and our own
   * key in the view: until its watch event arrives (a few ms after the put) this member does
   * not know its own rank, and its /pool would list the pool without it.
   */
  isReady(now = monotonicNow()): boolean {
    const registration = this.registration;
    return (
      !this.leaving &&
      registration !== undefined &&
      registration.lease.isAlive &&
      registration.lease.leaseDeadline - this.options.safetyMarginMs > now &&
      this.view.synced &&
      this.view.reachable &&
      this.view.member(registration.memberKey) !== undefined
    );
  }

  /** Milliseconds until the local lease deadline; 0 when unregistered. */
  leaseTimeLeftMs(now = monotonicNow()): number {
    return this.registration?.lease.timeLeftMs(now) ?? 0;
  }

  /**
   * A transaction that commits only while `term` is still the claim's revision. Pass all the
   * guarded operations to one `.then(...)` (a second call replaces them) and `.commit()`; `succeeded === false` means
   * leadership was lost and nothing was written.
   */
  fenced(term: bigint): ComparatorBuilder {
    return this.etcd.if(this.options.keys.leader, 'Mod', '==', term.toString());
  }

  /**
   * Resolves once `ready(this)` holds, or with false after `timeoutMs`. Event-driven: it
   * re-checks on every election change, not on a timer.
   */
  waitFor(ready: (election: this) => boolean, timeoutMs: number): Promise<boolean> {
    if (ready(this)) return Promise.resolve(true);
    return new Promise((resolve) => {
      const onChange = () => {
        if (!ready(this)) return;
        cleanup();
        resolve(true);
      };
      const timer = setTimeout(() => {
        cleanup();
        resolve(ready(this));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.off('change', onChange);
      };
      this.on('change', onChange);
    });
  }

  /**
   * Graceful departure: stop claiming, and delete the claim (if held) together with the member
   * key, so the next member in line claims at once. The lease stays until `close()` so that
   * in-flight work can still be forwarded.
   */
  async leave(): Promise<void> {
    if (this.leaving) return;
    this.leaving = true;
    this.emit('change');
    const registration = this.registration;
    if (registration) await this.deregister(registration, 'stop');
    this.evaluate();
  }

  /**
   * Hands leadership over (the admin `resign`): delete the claim and our member key, then
   * register again under a new lease. We rejoin as the youngest member, so every strategy
   * that ties to the oldest picks someone else at once, and nothing has to remember that we
   * resigned. Resolves whether we were the leader.
   */
  async resign(): Promise<boolean> {
    const registration = this.registration;
    if (!registration || this.leaving || !this.isLeader()) return false;
    // Without a registration isLeader() is false at once; deregister() clears the term.
    this.registration = undefined;
    await this.deregister(registration, 'resign');
    registration.lease.abandon();
    void this.etcd.leaseClient.leaseRevoke({ ID: registration.lease.id }).catch(() => undefined);
    this.emit('change');
    await this.register(false);
    return true;
  }

  /**
   * Deletes the claim (if it is bound to this registration's lease) and the member key in one
   * transaction, with a release note saying why. The guard is the claim's lease, not our
   * term: it also removes a claim whose answer we never saw (committed, then the response was
   * lost).
   */
  private async deregister(registration: Registration, reason: ReleaseReason): Promise<void> {
    const held = this.heldTerm;
    this.heldTerm = undefined;
    const { keys } = this.options;
    const claim = this.view.claim;
    const term = claim?.leaseId === registration.lease.id ? claim.term : held;
    try {
      const result = await this.etcd
        .if(keys.leader, 'Lease', '==', registration.lease.id)
        .then(
          this.etcd.delete().key(keys.leader),
          this.etcd.delete().key(registration.memberKey),
          this.releaseNote(term ?? 0n, reason),
        )
        .else(this.etcd.delete().key(registration.memberKey))
        .commit();
      if (result.succeeded) {
        this.logger.info({ term: held?.toString() ?? null }, 'released leadership');
      } else this.logger.info('deregistered');
    } catch (error) {
      this.logger.warn(
        { err: describeEtcdError(error) },
        'could not deregister; the lease revoke will',
      );
    }
  }

  /** Revokes the lease (etcd deletes our keys at once) and stops watching. */
  async close(): Promise<void> {
    this.stopped = true;
    this.leaving = true;
    clearInterval(this.tick);
    clearTimeout(this.claimRetry);
    this.clearOutranked();
    this.heldTerm = undefined;
    const registration = this.registration;
    this.registration = undefined;
    this.view.stop();
    if (registration) {
      await registration.lease.revoke().catch((error: unknown) => {
        this.logger.warn(
          { err: describeEtcdError(error) },
          'lease revoke failed; it expires after its TTL',
        );
      });
    }
    this.updateMetrics();
    this.emit('change');
  }

  /**
   * Grants a lease and puts our member key, after settling other registrations with our id
   * (`settleIncarnations`; `takeover` at start-up, else a registration lost and made again).
   * Retries etcd failures with backoff until registered, closed or superseded.
   */
  private register(takeover: boolean): Promise<void> {
    this.registering ??= this.runRegister(takeover).finally(() => (this.registering = undefined));
    return this.registering;
  }

  private async runRegister(takeover: boolean): Promise<void> {
    let delayMs = 100;
    while (!this.stopped && !this.leaving) {
      let lease: KeptLease | undefined;
      try {
        lease = await this.leases.grant(this.options.leaseTtlSeconds, this.options.callTimeoutMs);
        const successor = await settleIncarnations(
          {
            etcd: this.etcd,
            membersPrefix: this.options.keys.membersPrefix,
            record: this.record,
            logger: this.logger,
          },
          lease.id,
          !takeover,
        );
        if (successor) {
          lease.abandon();
          await this.etcd.leaseClient.leaseRevoke({ ID: lease.id }).catch(() => undefined);
          this.logger.error(
            successor,
            'another process with our MEMBER_ID took over our registration; yielding to it',
          );
          await this.close();
          this.emit('superseded', successor);
          return;
        }
        const memberKey = this.options.keys.member(lease.id);
        const record = memberRecordSchema.parse({
          ...this.record,
          pool: this.options.pool,
        });
        const result = await this.etcd
          .if(memberKey, 'Create', '==', 0)
          .then(this.etcd.put(memberKey).value(JSON.stringify(record)).lease(lease.id))
          .commit();
        if (!result.succeeded) throw new Error(`member key ${memberKey} already exists`);
        if (this.stopped || this.leaving) {
          // close() or leave() ran while we registered: take the registration back at once.
          lease.abandon();
          await this.etcd.leaseClient.leaseRevoke({ ID: lease.id }).catch(() => undefined);
          return;
        }
        this.watchLease(lease);
        this.registration = { lease, memberKey, createRevision: BigInt(result.header.revision) };
        this.logger.info(
          {
            memberKey,
            leaseId: lease.id,
            ttlMs: lease.ttlMs,
            createRevision: result.header.revision,
          },
          'registered in the pool',
        );
        this.evaluate();
        return;
      } catch (error) {
        lease?.abandon();
        if (lease) void this.etcd.leaseClient.leaseRevoke({ ID: lease.id }).catch(() => undefined);
        this.logger.warn(
          { err: describeEtcdError(error), retryInMs: delayMs },
          'cannot register in the pool; retrying',
        );
        await sleep(delayMs * (0.5 + Math.random()));
        delayMs = Math.min(delayMs * 2, 2000);
      }
    }
  }

  private watchLease(lease: KeptLease): void {
    lease.on('renewed', (_deadline, timeLeftMs) => {
      this.options.metrics.leaseRenewalTimeLeft.observe(
        { pool: this.options.pool },
        timeLeftMs / 1000,
      );
      this.evaluate();
    });
    lease.on('keepAliveFailed', (error) => {
      this.options.metrics.keepAliveFailures.inc({ pool: this.options.pool });
      this.logger.warn(
        { err: error.message, leaseTimeLeftMs: lease.timeLeftMs() },
        'lease keep-alive failed',
      );
      this.evaluate();
    });
    lease.on('lost', (reason) => {
      if (this.registration?.lease !== lease) return;
      this.logger.warn({ reason }, 'lease lost; registering again');
      this.dropRegistration();
    });
  }

  /**
   * etcd went back in time (restored from an older backup): our term, our key's create
   * revision and our lease may all belong to a history etcd no longer has, and a claim or a
   * key with the same revision may now mean something else. So nothing of it is trusted: stop
   * acting as leader at once, drop the registration and register anew in the etcd that is.
   */
  private startOver(): void {
    if (this.stopped) return;
    if (this.heldTerm !== undefined) {
      this.logger.warn(
        { term: this.heldTerm.toString() },
        'leadership dropped: etcd went back in time',
      );
    }
    this.heldTerm = undefined;
    this.releasedTerm = undefined;
    this.dropRegistration();
  }

  /** Our registration is gone (lease expired or member key deleted): register anew. */
  private dropRegistration(): void {
    const old = this.registration;
    this.registration = undefined;
    this.heldTerm = undefined;
    if (old) {
      old.lease.abandon();
      void this.etcd.leaseClient.leaseRevoke({ ID: old.lease.id }).catch(() => undefined);
    }
    this.emit('change');
    if (!this.stopped && !this.leaving) void this.register(false);
  }

  /** Re-evaluates the election from the local view. Cheap and synchronous; never throws. */
  private evaluate(): void {
    if (this.stopped) return;
    const view = this.view;
    const claimView = view.claim;
    const registration = this.registration;

    if (
      this.heldTerm !== undefined &&
      claimView?.term !== this.heldTerm &&
      view.revision >= this.heldTerm
    ) {
      this.logger.warn(
        { term: this.heldTerm.toString() },
        'leadership lost: the claim changed in etcd',
      );
      this.heldTerm = undefined;
    }

    // A view in the middle of a resync still holds a recent snapshot: acting on it is safe,
    // because every claim and release is a compare-and-swap in etcd.
    // Registered or registering, always: a re-registration asked for while another was
    // finishing (an evaluate inside it) would otherwise be absorbed by it and never happen.
    if (!registration && !this.registering && !this.leaving) {
      void this.register(false);
    }
    if (registration && view.revision >= registration.createRevision) {
      if (!view.member(registration.memberKey) && !this.leaving) {
        this.logger.warn(
          { memberKey: registration.memberKey },
          'our member key vanished; registering again',
        );
        this.dropRegistration();
        return;
      }
      const conflict = this.leaving ? undefined : this.serviceConflict();
      if (conflict) {
        this.withdraw(conflict);
        return;
      }
      if (!this.leaving) this.pursueLeadership(registration);
    }
    this.observeLeader();
    this.updateMetrics();
    this.emitIfChanged();
  }

  /** Our pool belongs to another service: leave it (the lease revoke deletes our key) and stop. */
  private withdraw(conflict: ServiceConflictError): void {
    const { service, poolService, member, createRevision } = conflict.conflict;
    this.logger.error(
      { service, poolService, member, createRevision: createRevision.toString() },
      conflict.message,
    );
    void this.close().then(() => this.emit('refused', conflict));
  }

  /**
   * Emits `change` only when something a listener can observe moved: leadership, the leader,
   * readiness or the view. The 250 ms tick re-evaluates (a lease deadline passes without any
   * event), but must not wake every waiting request and forward four times a second.
   */
  private emitIfChanged(): void {
    const leader = this.leader();
    const observed = [
      this.isLeader(),
      this.isReady(),
      leader?.memberKey,
      leader?.term,
      this.view.revision,
      this.registration?.memberKey,
    ].join('|');
    if (observed === this.lastObserved) return;
    this.lastObserved = observed;
    this.emit('change');
  }

  private pursueLeadership(registration: Registration): void {
    const claimView = this.view.claim;
    const preferred = this.preferredMember(registration);
    const preferredIsMe = preferred?.key === registration.memberKey;
    const mayClaim = preferredIsMe && monotonicNow() >= this.claimNotBefore;
    if (!claimView) {
      if (mayClaim) void this.claimLeadership(registration, undefined);
      return;
    }
    const claim = this.verifiedClaim();
    if (!claim) {
      // A foreign or forged value sits at the claim key. The member the strategy prefers
      // replaces it, compare-and-swap on its revision, rather than leaving the pool
      // leaderless forever.
      if (mayClaim) void this.claimLeadership(registration, claimView.term);
      return;
    }
    const claimIsMine =
      claim.memberKey === registration.memberKey && claimView.leaseId === registration.lease.id;
    if (
      claimIsMine &&
      this.heldTerm === undefined &&
      !this.claiming &&
      claimView.term !== this.releasedTerm
    ) {
      // Our claim committed but its answer was lost (a timeout): adopt it.
      this.heldTerm = claimView.term;
      this.logger.info({ term: claimView.term.toString() }, 'adopted our own leader claim');
      this.emit('claimed', claimView.term, undefined);
    }
    if (
      claimIsMine &&
      this.heldTerm === undefined &&
      claimView.term === this.releasedTerm &&
      monotonicNow() - this.releasedAt > RELEASE_SETTLE_MS
    ) {
      this.repeatRelease(claimView.term);
    }
    if (claimIsMine && preferred && !preferredIsMe && this.isLeader() && this.strategy.preempt) {
      this.considerPreemption(claimView.term, preferred);
    } else {
      this.clearOutranked();
    }
  }

  /**
   * A better member is preferred while we lead. Hand over only once it has stayed preferred
   * for `preemptAfterMs` (hold-down), so leadership never flaps on a member that comes and
   * goes.
   */
  private considerPreemption(term: bigint, preferred: MemberView): void {
    const holdMs = this.options.preemptAfterMs ?? 5000;
    const now = monotonicNow();
    if (!this.outranked) {
      // Jitter, so that two pools of one process do not decide in the same millisecond.
      const timer = setTimeout(() => this.evaluate(), holdMs * (1 + Math.random() / 5) + 10);
      timer.unref();
      this.outranked = { since: now, timer };
      this.logger.info(
        { preferred: preferred.record.id, holdMs },
        'a better member is preferred; handing over after the hold-down',
      );
      return;
    }
    if (now - this.outranked.since < holdMs) return;
    const gate = this.options.handovers;
    if (gate && !gate.mayHandOver(holdMs)) {
      clearTimeout(this.outranked.timer);
      this.outranked.timer = setTimeout(() => this.evaluate(), holdMs * Math.random() + 50);
      this.outranked.timer.unref();
      return;
    }
    this.clearOutranked();
    void this.releaseLeadership(term, preferred);
  }

  private clearOutranked(): void {
    if (!this.outranked) return;
    clearTimeout(this.outranked.timer);
    this.outranked = undefined;
  }

  /**
   * Rewrites our member record (same key, same lease, so the create revision — our place in
   * line — stays), guarded so that a deleted key is not brought back.
   */
  async updateRecord(
    patch: Partial<Pick<MemberRecord, 'leads' | 'weight' | 'labels'>>,
  ): Promise<boolean> {
    this.record = { ...this.record, ...patch };
    const registration = this.registration;
    if (!registration || this.leaving) return true; // the next registration writes it
    try {
      const record = memberRecordSchema.parse({ ...this.record, pool: this.options.pool });
      const result = await this.etcd
        .if(registration.memberKey, 'Create', '==', registration.createRevision.toString())
        .then(
          this.etcd
            .put(registration.memberKey)
            .value(JSON.stringify(record))
            .lease(registration.lease.id),
        )
        .commit();
      return result.succeeded;
    } catch (error) {
      this.logger.warn({ err: describeEtcdError(error) }, 'could not update our member record');
      return false;
    }
  }

  /**
   * Claims the leader key in one transaction: it must be absent (or still hold the invalid
   * value at `replaceTerm`), and our member key must still be ours.
   */
  private async claimLeadership(
    registration: Registration,
    replaceTerm: bigint | undefined,
  ): Promise<void> {
    if (this.claiming || !registration.lease.isAlive) return;
    this.claiming = true;
    const { keys } = this.options;
    const claim: LeaderClaim = {
      memberKey: registration.memberKey,
      id: this.record.id,
      url: this.record.url,
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
        .and(registration.memberKey, 'Create', '==', registration.createRevision.toString())
        .then(
          this.etcd.put(keys.leader).value(JSON.stringify(claim)).lease(registration.lease.id),
          ...reads.map((key) => this.etcd.get(key)),
        )
        .commit();
      failed = !result.succeeded;
      if (result.succeeded) {
        const term = BigInt(result.header.revision);
        if (this.registration === registration && !this.leaving) {
          this.heldTerm = term;
          this.logger.info({ term: term.toString() }, 'claimed leadership');
          const values = reads.map((_, i) => result.responses[i + 1]?.response_range?.kvs[0]);
          this.emit('claimed', term, values);
        } else {
          // We left (or re-registered) while the claim was in flight: take it back.
          await this.fenced(term).then(this.etcd.delete().key(keys.leader)).commit();
        }
      }
    } catch (error) {
      failed = true;
      if (this.claimBackoffMs === 0)
        this.logger.warn(
          { err: describeEtcdError(error) },
          'leader claim failed; retrying with backoff',
        );
    } finally {
      this.claiming = false;
    }
    if (failed) {
      // Never retry straight from here: when etcd fails fast (an open circuit breaker) that
      // would spin and starve the event loop. Back off, with jitter, and re-evaluate.
      this.claimBackoffMs = Math.min(Math.max(this.claimBackoffMs * 2, 50), 1000);
      const delayMs = this.claimBackoffMs * (0.5 + Math.random() / 2);
      this.claimNotBefore = monotonicNow() + delayMs;
      clearTimeout(this.claimRetry);
      this.claimRetry = setTimeout(() => this.evaluate(), delayMs);
      this.claimRetry.unref();
    } else {
      this.claimBackoffMs = 0;
      this.claimNotBefore = 0;
    }
    this.evaluate();
  }

  /**
   * The strategy's choice for the current view, among the members that may lead
   * (`candidates`). A strategy that throws, is too slow or names no member is logged (once
   * per reason and minute), counted, and `oldest` decides instead.
   */
  private preferredMember(registration: Registration): MemberView | undefined {
    const revision = this.view.revision;
    const self = registration.memberKey;
    if (this.preference?.revision === revision && this.preference.self === self) {
      return this.preference.member;
    }
    const members = candidates(this.view.members);
    const context = { pool: this.options.pool, self };
    let member: MemberView | undefined;
    try {
      member = this.strategy.select(members, context);
    } catch (error) {
      const reason = error instanceof StrategyFallback ? error.reason : 'threw';
      this.options.metrics.strategyFallbacks.inc({ pool: this.options.pool, reason });
      const now = monotonicNow();
      if (this.lastFallback?.reason !== reason || now - this.lastFallback.at > 60_000) {
        this.lastFallback = { reason, at: now };
        this.logger.error(
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
   * The claim we released still names us well after the release: its delete failed, or a
   * restore of etcd brought it back. No one acts on it (we never adopt a released term), so
   * the pool would wait for our lease to end: delete it again, only if it is still that claim.
   */
  private repeatRelease(term: bigint): void {
    if (this.releaseRetry) return;
    this.releaseRetry = this.etcd
      .if(this.options.keys.leader, 'Mod', '==', term.toString())
      .then(this.etcd.delete().key(this.options.keys.leader))
      .commit()
      .then((result) => {
        if (result.succeeded)
          this.logger.info({ term: term.toString() }, 'deleted our released claim again');
      })
      .catch((error: unknown) => {
        this.logger.warn({ err: describeEtcdError(error) }, 'deleting our released claim failed');
      })
      .finally(() => (this.releaseRetry = undefined));
  }

  /**
   * The put of a release note, for the transaction that deletes our claim of `term`: every
   * member sees why the claim ended in the same revision as the delete (failover.ts).
   */
  private releaseNote(term: bigint, reason: ReleaseReason) {
    const note: ReleaseNote = {
      term: term.toString(),
      id: this.options.record.id,
      reason,
      at: new Date().toISOString(),
    };
    return this.etcd.put(this.options.keys.released).value(JSON.stringify(note));
  }

  /** Hands the claim over: delete it only if it is still the one we wrote. */
  private async releaseLeadership(term: bigint, successor: MemberView): Promise<void> {
    if (this.heldTerm !== term) return;
    this.heldTerm = undefined;
    // Until the watch shows the delete, the view still names us: never adopt this term again.
    this.releasedTerm = term;
    this.releasedAt = monotonicNow();
    this.options.handovers?.record();
    this.logger.info(
      { term: term.toString(), successor: successor.record.id },
      'handing leadership over',
    );
    try {
      await this.fenced(term)
        .then(this.etcd.delete().key(this.options.keys.leader), this.releaseNote(term, 'handover'))
        .commit();
    } catch (error) {
      this.logger.warn({ err: describeEtcdError(error) }, 'releasing the claim failed');
    }
    this.evaluate();
  }

  /**
   * Leader change bookkeeping: events, logs and the leader metrics. A change is a new term
   * after one this member knew: the leader it finds at start-up is not one, or every restart
   * of any member would count as a change of the pool's leader.
   */
  private observeLeader(): void {
    const leader = this.leader();
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
    const ended = previous && this.view.claimEnded(previous.term);
    let outageMs: number | null = null;
    // The claim's own time, which every member reads alike, not when this one saw it.
    const claimedAt = leader ? Date.parse(this.verifiedClaim()?.claimedAt ?? '') : NaN;
    if (!leader) {
      this.leaderlessSince = now;
    } else {
      if (leaderlessSince !== undefined) {
        metrics.leaderlessDuration.observe({ pool }, (now - leaderlessSince) / 1000);
      }
      this.leaderlessSince = undefined;
      if (previous && previous.term !== leader.term) {
        metrics.leaderChanges.inc({ pool });
        const since = ended ? this.failovers.lastSignOfLife(ended) : leaderlessSince;
        if (since !== undefined) {
          outageMs = Math.round(now - since);
          metrics.failoverDuration.observe(
            { pool, cause: ended?.cause ?? 'unknown' },
            (now - since) / 1000,
          );
        }
      }
      if (Number.isFinite(claimedAt)) metrics.lastLeaderChange.set({ pool }, claimedAt / 1000);
    }
    if (current) metrics.leaderInfo.remove({ pool, leader_id: current.id });
    if (leader) metrics.leaderInfo.set({ pool, leader_id: leader.id }, 1);
    // The leader found on joining is shown from its claim, which came before we did.
    const found = leader && !previous && claimedAt <= wallNow;
    this.recordChange({
      at: new Date(found ? claimedAt : wallNow).toISOString(),
      leader: leader?.id ?? null,
      term: leader ? Number(leader.term) : null,
      previous: previous?.id ?? null,
      cause: ended?.cause ?? null,
      leaderlessMs:
        leader && leaderlessSince !== undefined ? Math.round(now - leaderlessSince) : null,
      outageMs,
    });
    this.logger.info(
      {
        leader: leader?.id ?? null,
        term: leader?.term.toString() ?? null,
        previous: previous?.id ?? null,
      },
      leader ? 'leader changed' : 'pool has no leader',
    );
    this.emit('leaderChanged', leader, previous);
  }

  /**
   * The leader of `term` answered a forward: a sign of life that dates a crash failover's
   * outage (failover.ts). Called by the router; never blocks.
   */
  leaderAnswered(term: bigint): void {
    this.failovers.answered(term);
  }

  /** The last `HISTORY_LENGTH` leader changes this member observed, oldest first. */
  get history(): readonly LeaderChange[] {
    return this.changes;
  }

  private recordChange(change: LeaderChange): void {
    this.changes.push(change);
    if (this.changes.length > HISTORY_LENGTH) this.changes.shift();
  }

  private updateMetrics(): void {
    const { metrics, pool } = this.options;
    metrics.isLeader.set({ pool }, this.isLeader() ? 1 : 0);
    metrics.members.set({ pool }, this.view.members.length);
    metrics.term.set({ pool }, Number(this.view.claim?.term ?? 0n));
    metrics.leaseTimeLeft.set({ pool }, this.leaseTimeLeftMs() / 1000);
  }
}

/** Whether a member URL answers /healthz within half a second. */
