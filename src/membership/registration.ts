/**
 * One member's registration in one pool: a lease granted through the `LeaseGrantor`, and the
 * member key `<pool>/members/<lease id>` put create-if-absent under it, whose create revision
 * is the member's place in line (docs/design.md, "Election").
 *
 * - `register()` settles other registrations of our MEMBER_ID first (incarnations.ts), and
 *   retries etcd failures with backoff until registered, closed, leaving or superseded. It
 *   blocks only its caller; `close()` and `leave()` end the retries (a wait under way at once).
 * - A lost lease, or `drop()` (our key vanished, etcd went back in time), ends the
 *   registration: `dropped` is emitted and we register again under a new lease.
 * - `deregister()` deletes our claim (if bound to our lease) and our key in one transaction;
 *   `close()` revokes the lease, which deletes both in etcd at once.
 *
 * It knows nothing of who leads: it emits events and the election listens.
 */
import { EventEmitter } from 'node:events';
import type { Etcd3, PutBuilder } from 'etcd3';
import type { Logger } from 'pino';
import { describeEtcdError } from '../etcd/access.js';
import type { PoolKeys } from '../etcd/keys.js';
import type { PoolMetrics } from '../metrics/metrics.js';
import { retry, type BackoffSchedule } from '../util/backoff.js';
import { settleIncarnations, type Incarnation } from './incarnations.js';
import { MemberLease, type KeptLease, type LeaseGrantor } from './lease.js';
import { memberRecordSchema, type MemberRecord } from './memberRecord.js';

/** Between two registration attempts: 100 ms doubling to 2 s, each 0.5–1.5× that. */
const REGISTER_BACKOFF: BackoffSchedule = { initialMs: 100, maxMs: 2000, jitter: 0.5 };

/** A registration in place: our lease and the member key put under it. */
export interface Registered {
  lease: KeptLease;
  memberKey: string;
  /** The member key's create revision: our place in line. */
  createRevision: bigint;
}

export interface RegistrationEvents {
  /** We registered, or the lease was renewed or missed a keep-alive: re-evaluate. */
  change: [];
  /** The registration ended (lost lease or `drop()`); registering again unless leaving. */
  dropped: [];
  /**
   * Another process with our MEMBER_ID holds a registration while ours is gone (it took ours
   * over while we were frozen or cut off). We do not register again: two members with one id
   * cannot be told apart.
   */
  superseded: [other: Incarnation];
}

export interface RegistrationOptions {
  pool: string;
  keys: PoolKeys;
  record: Omit<MemberRecord, 'pool'>;
  leaseTtlSeconds: number;
  /** Bound of one etcd call (milliseconds), for the lease grant. */
  callTimeoutMs: number;
  /**
   * Grants the member's leases and keeps them alive. Default: keep-alives on this thread, on
   * the election's etcd client. The member passes a `LeaseThread`, so that load on this
   * thread cannot delay them.
   */
  leases?: LeaseGrantor;
  logger: Logger;
  metrics: PoolMetrics;
}

export class MemberRegistration extends EventEmitter<RegistrationEvents> {
  private registered: Registered | undefined;
  private registering: Promise<void> | undefined;
  private isLeaving = false;
  private isClosed = false;
  /** Aborted by `leave()` and `close()`: registering stops, a backoff wait ends at once. */
  private readonly stopRegistering = new AbortController();
  /** Our record as we register it; `leads` changes as we win and lose pools. */
  private ownRecord: Omit<MemberRecord, 'pool'>;
  private readonly leases: LeaseGrantor;
  private readonly logger: Logger;

  constructor(
    private readonly etcd: Etcd3,
    private readonly options: RegistrationOptions,
  ) {
    super();
    this.setMaxListeners(0);
    this.ownRecord = options.record;
    this.logger = options.logger;
    this.leases = options.leases ?? {
      grant: (ttlSeconds, callTimeoutMs) => MemberLease.grant(etcd, ttlSeconds, callTimeoutMs),
    };
    // Series exist from the start at 0, so that rate() and increase() see the first event.
    const { metrics, pool } = options;
    metrics.keepAliveFailures.inc({ pool }, 0);
    metrics.leaseRenewalTimeLeft.zero({ pool });
  }

  /** The registration in place, or undefined while (re-)registering, leaving or closed. */
  get current(): Registered | undefined {
    return this.registered;
  }

  /** Our record as we register it (the pool's name aside). */
  get record(): Readonly<Omit<MemberRecord, 'pool'>> {
    return this.ownRecord;
  }

  /** True while a `register()` runs. */
  get pending(): boolean {
    return this.registering !== undefined;
  }

  /** True once `leave()` or `close()` ran: we do not register again. */
  get leaving(): boolean {
    return this.isLeaving;
  }

  /** True once `close()` ran. */
  get closed(): boolean {
    return this.isClosed;
  }

  /**
   * Grants a lease and puts our member key, after settling other registrations with our id
   * (`settleIncarnations`; `takeover` at start-up, else a registration lost and made again).
   * Retries etcd failures with backoff (100 ms doubling to 2 s) until registered, closed,
   * leaving or superseded. Concurrent calls share one attempt.
   */
  register(takeover: boolean): Promise<void> {
    this.registering ??= this.runRegister(takeover).finally(() => (this.registering = undefined));
    return this.registering;
  }

  private async runRegister(takeover: boolean): Promise<void> {
    const { signal } = this.stopRegistering;
    try {
      await retry(() => this.registerOnce(takeover), {
        schedule: REGISTER_BACKOFF,
        signal,
        onRetry: (error, delayMs) =>
          this.logger.warn(
            { err: describeEtcdError(error), retryInMs: Math.round(delayMs) },
            'cannot register in the pool; retrying',
          ),
      });
    } catch (error) {
      // retry() rejects only once we are leaving or closed: then there is nothing to do.
      if (error !== signal.reason) throw error;
    }
  }

  /**
   * One attempt: grant, settle other incarnations, put the member key. Resolves when
   * registered, superseded, or leaving meanwhile; rejects (the lease revoked) to be retried.
   */
  private async registerOnce(takeover: boolean): Promise<void> {
    let lease: KeptLease | undefined;
    try {
      lease = await this.leases.grant(this.options.leaseTtlSeconds, this.options.callTimeoutMs);
      const successor = await settleIncarnations(
        {
          etcd: this.etcd,
          membersPrefix: this.options.keys.membersPrefix,
          record: this.ownRecord,
          logger: this.logger,
        },
        lease.id,
        !takeover,
      );
      if (successor) {
        await this.endLease(lease);
        this.logger.error(
          successor,
          'another process with our MEMBER_ID took over our registration; yielding to it',
        );
        this.emit('superseded', successor);
        return;
      }
      const memberKey = this.options.keys.member(lease.id);
      const record = memberRecordSchema.parse({
        ...this.ownRecord,
        pool: this.options.pool,
      });
      const result = await this.etcd
        .if(memberKey, 'Create', '==', 0)
        .then(this.etcd.put(memberKey).value(JSON.stringify(record)).lease(lease.id))
        .commit();
      if (!result.succeeded) throw new Error(`member key ${memberKey} already exists`);
      if (this.isClosed || this.isLeaving) {
        // close() or leave() ran while we registered: take the registration back at once.
        await this.endLease(lease);
        return;
      }
      this.watchLease(lease);
      this.registered = { lease, memberKey, createRevision: BigInt(result.header.revision) };
      this.logger.info(
        {
          memberKey,
          leaseId: lease.id,
          ttlMs: lease.ttlMs,
          createRevision: result.header.revision,
        },
        'registered in the pool',
      );
      this.emit('change');
    } catch (error) {
      if (lease) void this.endLease(lease);
      throw error;
    }
  }

  private watchLease(lease: KeptLease): void {
    const { metrics, pool } = this.options;
    lease.on('renewed', (_deadline, timeLeftMs) => {
      metrics.leaseRenewalTimeLeft.observe({ pool }, timeLeftMs / 1000);
      this.emit('change');
    });
    lease.on('keepAliveFailed', (error) => {
      metrics.keepAliveFailures.inc({ pool });
      this.logger.warn(
        { err: error.message, leaseTimeLeftMs: lease.timeLeftMs() },
        'lease keep-alive failed',
      );
      this.emit('change');
    });
    lease.on('lost', (reason) => {
      if (this.registered?.lease !== lease) return;
      this.logger.warn({ reason }, 'lease lost; registering again');
      this.drop();
    });
  }

  /**
   * Stops keeping `lease` alive and revokes it, so etcd deletes its keys at once. The
   * returned promise settles with the revoke and never rejects; callers need not await it.
   */
  endLease(lease: KeptLease): Promise<unknown> {
    lease.abandon();
    return this.etcd.leaseClient.leaseRevoke({ ID: lease.id }).catch(() => undefined);
  }

  /** Our registration is gone (lease expired or member key deleted): register anew. */
  drop(): void {
    const old = this.registered;
    this.registered = undefined;
    if (old) void this.endLease(old.lease);
    this.emit('dropped');
    if (!this.isClosed && !this.isLeaving) void this.register(false);
  }

  /**
   * Forgets the registration in place without ending it, and returns it: from now on we are
   * unregistered (the resign deletes its keys, then ends its lease).
   */
  detach(): Registered | undefined {
    const registered = this.registered;
    this.registered = undefined;
    return registered;
  }

  /** We are leaving the pool: register no more. Returns the registration in place. */
  leave(): Registered | undefined {
    this.isLeaving = true;
    this.stopRegistering.abort(new Error('leaving the pool'));
    return this.registered;
  }

  /**
   * Deletes the claim (if it is bound to this registration's lease) and the member key in one
   * transaction, with `releaseNote` saying why (election/failover.ts). The guard is the
   * claim's lease, not our term: it also removes a claim whose answer we never saw (committed,
   * then the response was lost). `heldTerm` is for the log. Awaits one transaction; never
   * throws: on failure the lease revoke deletes the keys.
   */
  async deregister(
    registered: Registered,
    releaseNote: PutBuilder,
    heldTerm: bigint | undefined,
  ): Promise<void> {
    const { keys } = this.options;
    try {
      const result = await this.etcd
        .if(keys.leader, 'Lease', '==', registered.lease.id)
        .then(
          this.etcd.delete().key(keys.leader),
          this.etcd.delete().key(registered.memberKey),
          releaseNote,
        )
        .else(this.etcd.delete().key(registered.memberKey))
        .commit();
      if (result.succeeded) {
        this.logger.info({ term: heldTerm?.toString() ?? null }, 'released leadership');
      } else this.logger.info('deregistered');
    } catch (error) {
      this.logger.warn(
        { err: describeEtcdError(error) },
        'could not deregister; the lease revoke will',
      );
    }
  }

  /**
   * Rewrites our member record (same key, same lease, so the create revision — our place in
   * line — stays), guarded so that a deleted key is not brought back. Resolves false when
   * etcd refused or failed; never throws.
   */
  async updateRecord(
    patch: Partial<Pick<MemberRecord, 'leads' | 'weight' | 'labels'>>,
  ): Promise<boolean> {
    this.ownRecord = { ...this.ownRecord, ...patch };
    const registered = this.registered;
    if (!registered || this.isLeaving) return true; // the next registration writes it
    try {
      const record = memberRecordSchema.parse({ ...this.ownRecord, pool: this.options.pool });
      const result = await this.etcd
        .if(registered.memberKey, 'Create', '==', registered.createRevision.toString())
        .then(
          this.etcd
            .put(registered.memberKey)
            .value(JSON.stringify(record))
            .lease(registered.lease.id),
        )
        .commit();
      return result.succeeded;
    } catch (error) {
      this.logger.warn({ err: describeEtcdError(error) }, 'could not update our member record');
      return false;
    }
  }

  /**
   * Revokes the lease (etcd deletes our keys at once) and registers no more. Marks us closed
   * at once; resolves when the revoke is answered. Never throws: a failed revoke is logged,
   * and the lease expires after its TTL.
   */
  async close(): Promise<void> {
    this.isClosed = true;
    this.isLeaving = true;
    this.stopRegistering.abort(new Error('registration closed'));
    const registered = this.registered;
    this.registered = undefined;
    if (registered) {
      await registered.lease.revoke().catch((error: unknown) => {
        this.logger.warn(
          { err: describeEtcdError(error) },
          'lease revoke failed; it expires after its TTL',
        );
      });
    }
  }
}
