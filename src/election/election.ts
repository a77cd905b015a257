/**
 * One member's election in one pool (docs/design.md, "Election"), in the manner of etcd's
 * `concurrency.Election`: claim, hold, release. What it builds on has its own module:
 * registration (lease and member key) in membership/registration.ts, the pool view in
 * poolView.ts, the campaign for the claim in campaign.ts (what to do: decision.ts; the claim
 * transactions: claimPursuit.ts; the strategy's choice and the hold-down: preemption.ts), the
 * leaders seen in leaderLog.ts.
 *
 * - `start()` registers and syncs the pool view; it blocks until both are done or closed.
 * - On every view change, lease renewal and a short tick, the campaign decides anew. The
 *   member the strategy prefers claims the absent leader key in one compare-and-swap bound to
 *   its lease; a holder that is no longer preferred releases it after a hold-down.
 * - `isLeader()` is synchronous and local: the claim is ours AND the lease deadline, minus a
 *   safety margin, is in the future. A paused or partitioned leader stops acting as leader
 *   before etcd can expire its lease and let another member claim.
 * - `fenced()` starts a transaction that only commits while our claim is unchanged: a stale
 *   leader's write fails.
 * - `leave()` (graceful shutdown) hands the claim to the successor and deletes our member key
 *   in one transaction, so the successor leads on its watch event (or, when that fails,
 *   deletes both, and the successor claims within milliseconds). `close()` cancels
 *   everything: timers, the view's watch and the lease.
 */
import { EventEmitter } from 'node:events';
import type { ComparatorBuilder, Etcd3 } from 'etcd3';
import type { Logger } from 'pino';
import type { MemberAddress } from '../errors.js';
import type { MemberRecord } from '../membership/memberRecord.js';
import { MemberRegistration, type Registered } from '../membership/registration.js';
import { ABORTED, unlessAborted } from '../util/abortable.js';
import { monotonicNow } from '../util/time.js';
import { waitUntil } from '../util/waitUntil.js';
import { Campaign } from './campaign.js';
import { fencedOn, leaderOf } from './claim.js';
import { leads } from './decision.js';
import type { ElectionEvents, ElectionOptions } from './electionTypes.js';
import { putReleaseNote, type ReleaseReason } from './failover.js';
import { LeaderLog, type LeaderChange, type LeaderInfo } from './leaderLog.js';
import { serviceConflict, type ServiceConflictError } from './poolIdentity.js';
import { PoolView, type MemberView } from './poolView.js';

export class PoolElection extends EventEmitter<ElectionEvents> {
  readonly view: PoolView;
  private readonly registration: MemberRegistration;
  private readonly campaign: Campaign;
  private readonly leaders: LeaderLog;
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
    this.campaign = new Campaign(etcd, this.view, this.registration, options);
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
    this.view.on('rollback', () => {
      if (!this.closed) this.campaign.startOver();
    });
    this.registration.on('change', () => this.evaluate());
    this.registration.on('dropped', () => {
      this.campaign.endTerm('claim lost');
      this.emit('change');
    });
    this.registration.on('superseded', (other) => {
      void this.close().then(() => this.emit('superseded', other));
    });
    this.campaign.on('due', () => this.evaluate());
    this.campaign.on('claimed', (term, reads, tickets) =>
      this.emit('claimed', term, reads, tickets),
    );
    this.campaign.on('released', (term, reason) => this.emit('released', term, reason));
    this.campaign.on('conflict', (conflict) => this.withdraw(conflict));
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
    // Off every critical path: once registered, before this member can lead and leave.
    this.campaign.rehearseHandOff();
  }

  /**
   * Am I leader? The claim is mine and my lease deadline, minus the safety margin, is ahead.
   * Synchronous and local, so it can be asked on every request.
   */
  isLeader(now = monotonicNow()): boolean {
    const { heldTerm } = this.campaign;
    return leads(heldTerm, this.registration.current, this.options.safetyMarginMs, now);
  }

  /** The term (fencing token) while `isLeader()`, else undefined. */
  get term(): bigint | undefined {
    return this.isLeader() ? this.campaign.heldTerm : undefined;
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

  /**
   * The claim in our view is our own, at `term`, and we do not lead under it yet but will:
   * the answer to our claim's transaction is still on its way (a restart takeover sees its
   * claim on the watch first). False once we let the claim go — leaving (shutdown hands it
   * over), resigned, no longer registered — though the view still shows it until the watch
   * says otherwise. Synchronous.
   */
  awaitsOwnClaim(term: bigint): boolean {
    if (this.registration.leaving || this.term !== undefined) return false;
    const claim = this.leader();
    return claim?.self === true && claim.term === term;
  }

  /**
   * Whether we let the claim of `term` go — handed it over (leaving, resigning, a preemption
   * handover) or released it — though the view may still show it as ours. Synchronous.
   */
  released(term: bigint): boolean {
    return this.campaign.released(term);
  }

  /**
   * The member we are handing the claim of `term` to (leaving, resigning, a preemption
   * handover), from the moment the handoff is sent: a forward naming that term is answered
   * "not leader" with it, so that its sender forwards there at once (router.ts). Undefined
   * when we hand nothing of `term`.
   */
  successorOf(term: bigint): MemberAddress | undefined {
    return this.campaign.successorOf(term);
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
   * Graceful departure: stop claiming, hand the claim (if held) to the successor and delete
   * the member key in one transaction, or else delete both, so the next member in line claims
   * at once. The lease stays until `close()` so that in-flight work can still be forwarded.
   * Awaits one etcd transaction, two when the handoff fails.
   */
  async leave(): Promise<void> {
    if (this.registration.leaving) return;
    const registered = this.registration.leave();
    const held = this.campaign.endTerm('shutdown');
    this.emit('change');
    if (registered) await this.deregister(registered, 'stop', held);
    this.evaluate();
  }

  /**
   * Hands leadership over (the admin `resign`): hand the claim on and delete our member key
   * (as `leave()` does), then register again under a new lease. We rejoin as the youngest member, so every strategy
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
    const held = this.campaign.endTerm('resigned');
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
   * Hands the claim of `held` (if any) to the successor and deletes our member key in one
   * transaction (campaign.ts, `handOffOnLeave`); when that did not commit, deletes our claim
   * and member key with a release note naming `reason` (registration.ts) — guarded on the
   * claim's lease, so it deletes only our key should the handoff have committed unseen.
   */
  private async deregister(
    registered: Registered,
    reason: Exclude<ReleaseReason, 'handover'>,
    held: bigint | undefined,
  ): Promise<void> {
    if (held !== undefined) {
      const outcome = await this.campaign.handOffOnLeave(held, reason, registered.memberKey);
      if (outcome === 'handed') return;
    }
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
    this.campaign.stop();
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
   * Advances the campaign (campaign.ts) from the local view, then records and publishes what
   * changed: the leader seen, the metrics, a `change` event. Cheap and synchronous; never
   * throws.
   */
  private evaluate(): void {
    if (this.closed) return;
    this.campaign.advance();
    if (this.closed) return;
    const leader = this.leader();
    const claimedAt = leader && this.view.claim?.claim?.claimedAt;
    const change = this.leaders.observe(leader, claimedAt, this.view);
    if (change) this.emit('leaderChanged', leader, change.previous);
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
      this.registration.current?.memberKey,
    ].join('|');
    if (observed === this.lastObserved) return;
    this.lastObserved = observed;
    this.emit('change');
  }

  private updateMetrics(): void {
    const { metrics, pool } = this.options;
    metrics.isLeader.set({ pool }, this.isLeader() ? 1 : 0);
    metrics.members.set({ pool }, this.view.members.length);
    metrics.term.set({ pool }, Number(this.view.claim?.term ?? 0n));
    metrics.leaseTimeLeft.set({ pool }, this.leaseTimeLeftMs() / 1000);
  }
}
