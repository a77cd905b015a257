/**
 * One member's election in one pool (docs/design.md, "Election"), in the manner of etcd's
 * `concurrency.Election`: claim, hold, release. What it builds on has its own module:
 * registration (lease and member key) in membership/registration.ts, the strategy's choice
 * and handovers in preemption.ts, the leaders seen in leaderLog.ts.
 *
 * - `start()` registers and syncs the pool view; it blocks until both are done or closed.
 * - On every view change, lease renewal and a short tick, `evaluate()` asks the strategy who
 *   should lead. The preferred member claims the absent leader key in one compare-and-swap
 *   bound to its lease; a holder that is no longer preferred releases it.
 * - `isLeader()` is synchronous and local: the claim is ours AND the lease deadline, minus a
 *   safety margin, is in the future. A paused or partitioned leader stops acting as leader
 *   before etcd can expire its lease and let another member claim.
 * - `fenced()` starts a transaction that only commits while our claim is unchanged: a stale
 *   leader's write fails.
 * - `leave()` (graceful shutdown) deletes the claim and our member key in one transaction, so
 *   the successor sees the pool without us and claims within milliseconds. `close()` cancels
 *   everything: timers, the view's watch and the lease.
 */
import { EventEmitter } from 'node:events';
import type { ComparatorBuilder, Etcd3 } from 'etcd3';
import type { Logger } from 'pino';
import type { MemberRecord } from '../membership/memberRecord.js';
import { MemberRegistration, type Registered } from '../membership/registration.js';
import { ABORTED, unlessAborted } from '../util/abortable.js';
import { monotonicNow } from '../util/time.js';
import { waitUntil } from '../util/waitUntil.js';
import { fencedOn, leaderOf } from './claim.js';
import { ClaimPursuit } from './claimPursuit.js';
import { decide, leads, type ElectionState, type Step } from './decision.js';
import type { ElectionEvents, ElectionOptions } from './electionTypes.js';
import { putReleaseNote, type ReleaseReason } from './failover.js';
import { LeaderLog, type LeaderChange, type LeaderInfo } from './leaderLog.js';
import type { LeadershipEndReason } from './leadershipEnd.js';
import { serviceConflict, type ServiceConflictError } from './poolIdentity.js';
import { PoolView, type MemberView } from './poolView.js';
import { Preemption } from './preemption.js';
import { oldest } from './strategy.js';

export class PoolElection extends EventEmitter<ElectionEvents> {
  readonly view: PoolView;
  private readonly registration: MemberRegistration;
  private readonly preemption: Preemption;
  private readonly leaders: LeaderLog;
  private readonly claims: ClaimPursuit;
  private heldTerm: bigint | undefined;
  private tick: NodeJS.Timeout | undefined;
  /** What the last `change` event reflected (see `emitIfChanged`). */
  private lastObserved = '';
  private readonly logger: Logger;

  constructor(
    private readonly etcd: Etcd3,
    private readonly options: ElectionOptions,
  ) {
    super();
    this.setMaxListeners(0);
    const { pool, keys, logger, metrics } = options;
    this.logger = logger;
    this.view = new PoolView(etcd, {
      pool,
      keys,
      reconcileIntervalMs: options.reconcileIntervalMs,
      watchCreateTimeoutMs: Math.max(1000, options.callTimeoutMs * 2),
      logger,
      metrics,
    });
    this.registration = new MemberRegistration(etcd, options);
    this.preemption = new Preemption({
      pool,
      strategy: options.strategy ?? oldest,
      preemptAfterMs: options.preemptAfterMs,
      handovers: options.handovers,
      logger,
      metrics,
    });
    const { readOnClaim } = options;
    this.claims = new ClaimPursuit(etcd, {
      keys,
      memberId: options.record.id,
      readOnClaim,
      logger,
    });
    this.leaders = new LeaderLog({
      pool,
      leaseTtlSeconds: options.leaseTtlSeconds,
      metrics,
      logger,
    });
    // Series exist from the start at 0, so that rate() and increase() see the first event.
    metrics.ticketBlocks.inc({ pool }, 0);
    this.view.on('change', () => this.evaluate());
    this.view.on('reachability', () => this.evaluate());
    this.view.on('rollback', () => this.startOver());
    this.registration.on('change', () => this.evaluate());
    this.registration.on('dropped', () => {
      this.endTerm('claim lost');
      this.emit('change');
    });
    this.registration.on('superseded', (other) => {
      void this.close().then(() => this.emit('superseded', other));
    });
    this.preemption.on('due', () => this.evaluate());
    this.claims.on('retry', () => this.evaluate());
  }

  get pool(): string {
    return this.options.pool;
  }

  get memberId(): string {
    return this.registration.record.id;
  }

  /**
   * Whether `members` (default: the view's) belong to another service than ours, the rule of
   * poolIdentity.ts: the member checks the pool with it before it joins.
   */
  serviceConflict(
    members: readonly MemberView[] = this.view.members,
  ): ServiceConflictError | undefined {
    const { pool, keys } = this.options;
    const service = this.registration.record.service;
    return serviceConflict(members, { service, pool, prefix: keys.prefix });
  }

  /** Our record as we register it (the pool's name aside). */
  get memberRecord(): Readonly<Omit<MemberRecord, 'pool'>> {
    return this.registration.record;
  }

  /** True once `close()` ran: nothing of this election acts any more. */
  get closed(): boolean {
    return this.registration.closed;
  }

  get memberKey(): string | undefined {
    return this.registration.current?.memberKey;
  }

  /**
   * Registers and syncs. Retries etcd failures with backoff until it succeeds or closes;
   * resolves then (also when closed meanwhile).
   */
  async start(): Promise<void> {
    const tickMs = Math.min(250, (this.options.leaseTtlSeconds * 1000) / 10);
    this.tick = setInterval(() => this.evaluate(), tickMs);
    this.tick.unref();
    await Promise.all([this.registration.register(true), this.view.start()]);
    this.evaluate();
  }

  /**
   * Am I leader? The claim is mine and my lease deadline, minus the safety margin, is ahead.
   * Synchronous and local, so it can be asked on every request.
   */
  isLeader(now = monotonicNow()): boolean {
    return leads(this.heldTerm, this.registration.current, this.options.safetyMarginMs, now);
  }

  /** The term (fencing token) while `isLeader()`, else undefined. */
  get term(): bigint | undefined {
    return this.isLeader() ? this.heldTerm : undefined;
  }

  /**
   * Milliseconds until `isLeader()` turns false unless the lease is renewed first (the lease
   * deadline minus the safety margin); 0 when not leading.
   */
  leadershipTimeLeftMs(now = monotonicNow()): number {
    const registered = this.registration.current;
    if (!registered || !this.isLeader(now)) return 0;
    return registered.lease.leaseDeadline - this.options.safetyMarginMs - now;
  }

  /** The leader as the local view sees it, or undefined while the pool has none. */
  leader(): LeaderInfo | undefined {
    const { service } = this.registration.record;
    return leaderOf(this.view, service, this.registration.current?.memberKey);
  }

  /**
   * Ready: registered, synced, etcd reachable, lease safely alive, not leaving — and our own
   * key in the view: until its watch event arrives (a few ms after the put) this member does
   * not know its own rank, and its /pool would list the pool without it.
   */
  isReady(now = monotonicNow()): boolean {
    const registered = this.registration.current;
    return (
      !this.registration.leaving &&
      registered !== undefined &&
      registered.lease.isAlive &&
      registered.lease.leaseDeadline - this.options.safetyMarginMs > now &&
      this.view.synced &&
      this.view.reachable &&
      this.view.member(registered.memberKey) !== undefined
    );
  }

  /** Milliseconds until the local lease deadline; 0 when unregistered. */
  leaseTimeLeftMs(now = monotonicNow()): number {
    return this.registration.current?.lease.timeLeftMs(now) ?? 0;
  }

  /**
   * A transaction that commits only while `term` is still the claim's revision. Pass all the
   * guarded operations to one `.then(...)` (a second call replaces them) and `.commit()`;
   * `succeeded === false` means leadership was lost and nothing was written.
   */
  fenced(term: bigint): ComparatorBuilder {
    return fencedOn(this.etcd, this.options.keys, term);
  }

  /**
   * Resolves once `ready(this)` holds, or with false after `timeoutMs`. Event-driven: it
   * re-checks on every election change, not on a timer.
   */
  waitFor(ready: (election: this) => boolean, timeoutMs: number): Promise<boolean> {
    return waitUntil(this, 'change', () => ready(this), timeoutMs);
  }

  /**
   * Rewrites our member record (same key, same lease, so the create revision — our place in
   * line — stays), guarded so that a deleted key is not brought back.
   */
  updateRecord(
    patch: Partial<Pick<MemberRecord, 'leads' | 'weight' | 'labels'>>,
  ): Promise<boolean> {
    return this.registration.updateRecord(patch);
  }

  /**
   * Graceful departure: stop claiming, and delete the claim (if held) together with the member
   * key, so the next member in line claims at once. The lease stays until `close()` so that
   * in-flight work can still be forwarded. Awaits one etcd transaction.
   */
  async leave(): Promise<void> {
    if (this.registration.leaving) return;
    const registered = this.registration.leave();
    const held = this.endTerm('shutdown');
    this.emit('change');
    if (registered) await this.deregister(registered, 'stop', held);
    this.evaluate();
  }

  /**
   * Hands leadership over (the admin `resign`): delete the claim and our member key, then
   * register again under a new lease. We rejoin as the youngest member, so every strategy
   * that ties to the oldest picks someone else at once, and nothing has to remember that we
   * resigned. `isLeader()` is false as soon as it is called.
   *
   * Blocks until registered again, or until `signal` aborts (default: 3 × the etcd call
   * timeout, `resignBoundMs`), whichever is first; then rejects with the signal's reason,
   * and the delete and the re-registration go on in the background (registration retries
   * until etcd answers). Resolves whether we were the leader.
   */
  async resign(signal: AbortSignal = AbortSignal.timeout(this.resignBoundMs)): Promise<boolean> {
    signal.throwIfAborted();
    const registered = this.registration.current;
    if (!registered || this.registration.leaving || !this.isLeader()) return false;
    const held = this.endTerm('resigned');
    // Without a registration isLeader() is false at once.
    this.registration.detach();
    const handover = (async () => {
      await this.deregister(registered, 'resign', held);
      void this.registration.endLease(registered.lease);
      this.emit('change');
      await this.registration.register(false);
    })();
    if ((await unlessAborted(handover, signal)) === ABORTED) throw signal.reason;
    return true;
  }

  /** How long `resign()` waits by default (milliseconds): 3 etcd calls' bounds. */
  get resignBoundMs(): number {
    return this.options.callTimeoutMs * 3;
  }

  /**
   * Gives up the term we hold, if any, and says why (`released`); returns it. Every path that
   * ends a term comes here, so that leadership.ts can tell its watchers why.
   */
  private endTerm(reason: LeadershipEndReason): bigint | undefined {
    const held = this.heldTerm;
    this.heldTerm = undefined;
    if (held !== undefined) this.emit('released', held, reason);
    return held;
  }

  /** Deletes our claim and member key with a release note naming `reason` (registration.ts). */
  private async deregister(
    registered: Registered,
    reason: ReleaseReason,
    held: bigint | undefined,
  ): Promise<void> {
    const claim = this.view.claim;
    const term = claim?.leaseId === registered.lease.id ? claim.term : held;
    const note = putReleaseNote(this.etcd, this.options.keys.released, {
      term: term ?? 0n,
      holder: this.memberId,
      reason,
    });
    await this.registration.deregister(registered, note, held);
  }

  /** Revokes the lease (etcd deletes our keys at once) and stops watching. */
  async close(): Promise<void> {
    clearInterval(this.tick);
    this.claims.stop();
    this.preemption.clear();
    this.endTerm('shutdown');
    this.view.stop();
    await this.registration.close();
    this.updateMetrics();
    this.emit('change');
  }

  /**
   * The leader of `term` answered a forward: a sign of life that dates a crash failover's
   * outage (failover.ts). Called by the router; never blocks.
   */
  leaderAnswered(term: bigint): void {
    this.leaders.answered(term);
  }

  /** The last leader changes this member observed, oldest first (leaderLog.ts). */
  get history(): readonly LeaderChange[] {
    return this.leaders.history;
  }

  /**
   * etcd went back in time (restored from an older backup): our term, our key's create
   * revision and our lease may all belong to a history etcd no longer has, and a claim or a
   * key with the same revision may now mean something else. So nothing of it is trusted: stop
   * acting as leader at once, drop the registration and register anew in the etcd that is.
   */
  private startOver(): void {
    if (this.closed) return;
    if (this.heldTerm !== undefined) {
      this.logger.warn(
        { term: this.heldTerm.toString() },
        'leadership dropped: etcd went back in time',
      );
    }
    this.endTerm('claim lost');
    this.claims.forgetReleases();
    this.registration.drop();
  }

  /**
   * Decides from the local view what to do now (decision.ts) and does it: claims and releases
   * go on in the background. Cheap and synchronous; never throws.
   */
  private evaluate(): void {
    if (this.closed) return;
    const steps = decide(this.state());
    for (const step of steps) this.carryOut(step);
    if (this.closed) return;
    if (steps.at(-1)?.kind !== 'holdDown') this.preemption.clear();
    const leader = this.leader();
    const claimedAt = leader && this.view.claim?.claim?.claimedAt;
    const change = this.leaders.observe(leader, claimedAt, this.view);
    if (change) this.emit('leaderChanged', leader, change.previous);
    this.updateMetrics();
    this.emitIfChanged();
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
        pool: this.pool,
        prefix: options.keys.prefix,
      },
      registration: {
        current: registered,
        pending: registration.pending,
        leaving: registration.leaving,
      },
      heldTerm: this.heldTerm,
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
        return this.withdraw(step.conflict);
      case 'claim':
        void this.claimLeadership(step.replaceTerm);
        return;
      case 'adopt':
        // Our claim committed but its answer was lost (a timeout).
        this.heldTerm = step.term;
        this.logger.info({ term: step.term.toString() }, 'adopted our own leader claim');
        this.emit('claimed', step.term, undefined);
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
      this.registration.current?.memberKey,
    ].join('|');
    if (observed === this.lastObserved) return;
    this.lastObserved = observed;
    this.emit('change');
  }

  /** Hands the claim of `term` over to `successor` (claimPursuit.ts), if we still hold it. */
  private async handOver(term: bigint, successor: MemberView): Promise<void> {
    if (this.heldTerm !== term) return;
    this.preemption.handingOver();
    this.endTerm('handed over');
    await this.claims.release(term, successor);
    this.evaluate();
  }

  /**
   * Claims the leader key (claimPursuit.ts): the term is ours if the claim commits while we
   * are still this registration and not leaving; else we take the claim back. Never throws;
   * evaluates again after the attempt.
   */
  private async claimLeadership(replaceTerm: bigint | undefined): Promise<void> {
    const registered = this.registration.current;
    if (!registered) return;
    const claimed = await this.claims.claim(registered, this.registration.record, replaceTerm);
    if (claimed && (this.registration.current !== registered || this.registration.leaving)) {
      // We left (or re-registered) while the claim was in flight: take it back.
      await this.claims.takeBack(claimed.term);
    } else if (claimed) {
      this.heldTerm = claimed.term;
      this.logger.info({ term: claimed.term.toString() }, 'claimed leadership');
      this.emit('claimed', claimed.term, claimed.reads);
    }
    this.evaluate();
  }

  private updateMetrics(): void {
    const { metrics, pool } = this.options;
    metrics.isLeader.set({ pool }, this.isLeader() ? 1 : 0);
    metrics.members.set({ pool }, this.view.members.length);
    metrics.term.set({ pool }, Number(this.view.claim?.term ?? 0n));
    metrics.leaseTimeLeft.set({ pool }, this.leaseTimeLeftMs() / 1000);
  }
}
