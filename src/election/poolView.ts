/**
 * The local view of one pool: its members (sorted by create revision) and its leader claim,
 * kept current by a snapshot read at revision R followed by a watch from R+1.
 *
 * Any watch error, cancellation or compaction ⇒ resync (read again, watch again). A watch on
 * an etcd member that lost quorum stalls silently, so a periodic linearizable read reconciles
 * the view; it is also how the view knows etcd is reachable. That read is a small probe — how
 * many member keys exist and the claim's revision; every tenth probe also which members
 * changed after the view's revision — not the whole pool: every member sends one every few
 * seconds, so reading the whole pool would cost etcd and the members O(members²) at rest.
 * Events at or below the last snapshot's revision are ignored. Several events can share one revision (a transaction, or a
 * lease revoke deleting a member key and the claim together), so the filter is the snapshot's
 * revision, never the last event's.
 *
 * Foreign or invalid values under the prefix are ignored for the election, logged once per
 * key version and counted — never a crash.
 */
import { EventEmitter } from 'node:events';
import { Range, type Etcd3, type IKeyValue, type IWatchResponse, type Watcher } from 'etcd3';
import type { Logger } from 'pino';
import { describeEtcdError } from '../etcd/access.js';
import type { PoolKeys } from '../etcd/keys.js';
import { leaseIdHex } from '../etcd/keys.js';
import {
  decodeShared,
  leaderClaimSchema,
  memberRecordSchema,
  type LeaderClaim,
  type MemberRecord,
} from '../membership/memberRecord.js';
import type { PoolMetrics } from '../metrics/metrics.js';
import { monotonicNow, sleep } from '../util/time.js';
import { EtcdHistory, type RevisionStep, type TicketMarkStep } from './etcdHistory.js';
import { causeOf, releaseNoteSchema, type ClaimEnd, type ReleaseNote } from './failover.js';
import { lowerBound, shareMember } from './sharedMembers.js';

export interface MemberView {
  key: string;
  leaseId: string;
  createRevision: bigint;
  modRevision: bigint;
  record: MemberRecord;
}

export interface ClaimView {
  /** The claim's mod revision: the leader's term and fencing token. */
  term: bigint;
  leaseId: string;
  /** Undefined when the stored value is not a valid claim. */
  claim: LeaderClaim | undefined;
}

export interface PoolViewEvents {
  change: [];
  reachability: [reachable: boolean];
  /** etcd answered with a lower revision than before: restored from an older backup. */
  rollback: [step: RevisionStep];
  /** The ticket mark fell below one seen before: tickets above it were already issued. */
  ticketMarkBack: [step: TicketMarkStep];
}

export interface PoolViewOptions {
  pool: string;
  keys: PoolKeys;
  reconcileIntervalMs: number;
  /** Bound on a watch's creation; a stream to a frozen etcd member never confirms it. */
  watchCreateTimeoutMs: number;
  logger: Logger;
  metrics: PoolMetrics;
}

/** One probe in this many also lists the members modified after the view (see `probe`). */
const SCAN_EVERY = 10;

/** How long a watch may take to deliver what a reconcile probe already showed. */
const LAG_GRACE_MS = 1000;

/** What a reconcile probe saw (see `probe`). */
interface Probe {
  /** The view's revision when the probe was sent. */
  since: bigint;
  /** etcd's revision in the probe's answer. */
  revision: bigint;
  /** Keys under the members prefix, valid or not. */
  memberKeys: number;
  /** Of those, how many were modified after `since` (0 when the probe did not scan). */
  changed: number;
  /** The claim's mod revision, undefined without a claim. */
  claimTerm: bigint | undefined;
}

/** Why the view read the pool afresh: the `reason` label of service_pool_watch_resyncs_total. */
const RESYNC_REASONS = [
  'start',
  'watch_error',
  'watch_disconnected',
  'watch_ended',
  'reconcile',
  'rollback',
] as const;
type ResyncReason = (typeof RESYNC_REASONS)[number];

/** What was invalid: the `kind` label of service_pool_invalid_records_total. */
const INVALID_KINDS = [
  'claim',
  'foreign_key',
  'member_key',
  'member_record',
  'release_note',
] as const;
type InvalidKind = (typeof INVALID_KINDS)[number];

export class PoolView extends EventEmitter<PoolViewEvents> {
  private sorted: MemberView[] = [];
  private byKey = new Map<string, MemberView>();
  /** Keys under the members prefix whose value is not a valid member (counted by the probe). */
  private invalidMembers = new Set<string>();
  private claimView: ClaimView | undefined;
  private lastClaimEnd: ClaimEnd | undefined;
  private viewRevision = 0n;
  /** Revision of the last snapshot: watch events at or below it are already in the view. */
  private snapshotRevision = 0n;
  private watcher: Watcher | undefined;
  private generation = 0;
  private resyncing: Promise<void> | undefined;
  private reconcileTimer: NodeJS.Timeout | undefined;
  /** Set while a reconcile probe showed changes the watch had yet to deliver (`reconcile`). */
  private lagCheck: NodeJS.Timeout | undefined;
  /** Probes sent; starts at random so that the views of a process scan at different times. */
  private probes = Math.floor(Math.random() * SCAN_EVERY);
  private stopped = false;
  private isSynced = false;
  private isReachable = false;
  private reported = new Set<string>();
  /** What this process has seen of etcd's revisions and the ticket mark. */
  readonly history = new EtcdHistory();

  constructor(
    private readonly etcd: Etcd3,
    private readonly options: PoolViewOptions,
  ) {
    super();
    // Every series from the start at 0: a dashboard panel draws 0, not "No data".
    const { metrics, pool } = options;
    for (const reason of RESYNC_REASONS) metrics.watchResyncs.inc({ pool, reason }, 0);
    for (const kind of INVALID_KINDS) metrics.invalidRecords.inc({ pool, kind }, 0);
  }

  /** Members with valid records, oldest (lowest create revision) first. */
  get members(): readonly MemberView[] {
    return this.sorted;
  }

  get claim(): ClaimView | undefined {
    return this.claimView;
  }

  get revision(): bigint {
    return this.viewRevision;
  }

  /**
   * How the claim of `term` ended, if this view saw its delete in the watch (not in a re-read,
   * which shows only that it is gone).
   */
  claimEnded(term: bigint): ClaimEnd | undefined {
    return this.lastClaimEnd?.term === term ? this.lastClaimEnd : undefined;
  }

  member(key: string): MemberView | undefined {
    return this.byKey.get(key);
  }

  /** True once a snapshot was read and its watch is in place. */
  get synced(): boolean {
    return this.isSynced;
  }

  /** True while the last read from etcd (snapshot or reconcile) succeeded. */
  get reachable(): boolean {
    return this.isReachable;
  }

  /** Reads the pool and starts watching; retries until it succeeds or `stop()` is called. */
  async start(): Promise<void> {
    this.reconcileTimer = setInterval(
      () => void this.reconcile(),
      this.options.reconcileIntervalMs,
    );
    this.reconcileTimer.unref();
    await this.resync('start');
  }

  /**
   * Stops watching. The cancel is not awaited: etcd3 waits for the server to confirm it, which
   * never comes on a stream that broke while this process was paused; closing the client
   * ends the stream anyway.
   */
  stop(): void {
    this.stopped = true;
    clearInterval(this.reconcileTimer);
    clearTimeout(this.lagCheck);
    this.generation++;
    const watcher = this.watcher;
    this.watcher = undefined;
    void watcher?.cancel().catch(() => undefined);
  }

  /** Re-reads the pool and restarts the watch. Concurrent calls share one resync. */
  resync(reason: ResyncReason): Promise<void> {
    this.resyncing ??= this.runResync(reason).finally(() => (this.resyncing = undefined));
    return this.resyncing;
  }

  private async runResync(reason: ResyncReason): Promise<void> {
    if (reason !== 'start') {
      this.options.metrics.watchResyncs.inc({ pool: this.options.pool, reason });
      this.options.logger.info({ reason }, 'resyncing pool view');
    }
    this.isSynced = false;
    let delayMs = 50;
    while (!this.stopped) {
      const generation = ++this.generation;
      const old = this.watcher;
      this.watcher = undefined;
      void old?.cancel().catch(() => undefined);
      let step = 'read the pool';
      try {
        const floor = this.history.revisionFloor;
        const snapshot = await this.readPool();
        if (generation !== this.generation) return;
        this.setReachable(true);
        this.noteRevision(snapshot.revision, floor);
        this.applySnapshot(snapshot.revision, snapshot.kvs);
        // The election may act on the fresh snapshot before the watch is in place.
        this.emit('change');
        step = 'watch the pool';
        // Listeners go on before the watch connects, so no event can slip past them.
        const watcher = this.etcd
          .watch()
          .prefix(this.options.keys.pool)
          .startRevision(String(this.viewRevision + 1n))
          .watcher();
        this.attach(watcher, generation);
        await connected(watcher, this.options.watchCreateTimeoutMs);
        if (generation !== this.generation) return;
        this.isSynced = true;
        this.emit('change');
        return;
      } catch (error) {
        if (step === 'read the pool') this.setReachable(false);
        this.options.logger.warn(
          { err: describeEtcdError(error), retryInMs: delayMs },
          `cannot ${step}; retrying`,
        );
        await sleep(delayMs * (0.5 + Math.random()));
        delayMs = Math.min(delayMs * 2, 2000);
      }
    }
  }

  private attach(watcher: Watcher, generation: number): void {
    this.watcher = watcher;
    const current = () => generation === this.generation && !this.stopped;
    watcher.on('data', (res: IWatchResponse) => {
      if (current() && res.events.length > 0) this.applyEvents(res);
    });
    watcher.on('error', () => {
      if (current()) void this.resync('watch_error');
    });
    watcher.on('disconnected', () => {
      if (current()) void this.resync('watch_disconnected');
    });
    watcher.on('end', () => {
      if (current()) void this.resync('watch_ended');
    });
  }

  /**
   * A linearizable probe of the pool (`probe`). It fails without quorum, which is what tells a
   * member whose watch stalled that etcd is gone. If the probe shows a state the watch has not
   * delivered, the watch gets a short grace to deliver it (`expectProgress`); one that stays
   * silent has stalled, and the view resyncs: it reads the pool again and restarts the watch.
   */
  private async reconcile(): Promise<void> {
    if (this.stopped || this.resyncing) return;
    const generation = this.generation;
    try {
      const floor = this.history.revisionFloor;
      const probe = await this.probe();
      this.setReachable(true);
      if (this.noteRevision(probe.revision, floor)) {
        void this.resync('rollback');
        return;
      }
      if (generation !== this.generation || this.resyncing || this.lagCheck) return;
      // An event arrived while the probe was out: the watch is alive, and the probe's figures
      // no longer compare with the view.
      if (probe.since !== this.viewRevision) return;
      if (!this.agreesWith(probe)) this.expectProgress(generation);
    } catch (error) {
      if (this.isReachable) {
        this.options.logger.warn({ err: describeEtcdError(error) }, 'etcd unreachable');
      }
      this.setReachable(false);
    }
  }

  /**
   * The probe saw changes the view lacks: they were committed before it, so a working watch
   * delivers them. Usually they are already on their way — in flight, or queued behind others
   * in a busy process — and resyncing at once would re-read the whole pool for nothing; in a
   * pool of hundreds joining at once, members doing so together kept etcd and themselves busy
   * enough to fall further behind. So: resync only if the watch delivers nothing at all within
   * the grace.
   */
  private expectProgress(generation: number): void {
    const revision = this.viewRevision;
    const graceMs = Math.min(this.options.reconcileIntervalMs, LAG_GRACE_MS);
    this.lagCheck = setTimeout(() => {
      this.lagCheck = undefined;
      if (this.stopped || generation !== this.generation || this.resyncing) return;
      if (this.viewRevision === revision) void this.resync('reconcile');
    }, graceMs);
    this.lagCheck.unref();
  }

  /** Reads the valid members afresh from etcd (one range), oldest first. */
  async readMembers(): Promise<MemberView[]> {
    const read = await this.etcd.getAll().prefix(this.options.keys.membersPrefix).exec();
    return read.kvs
      .map((kv) => this.classifyMember(kv))
      .filter((member): member is MemberView => member !== undefined)
      .sort((a, b) => (a.createRevision < b.createRevision ? -1 : 1));
  }

  /**
   * Reads the members, the claim and the ticket mark at one revision (one transaction, three
   * ranges). Only those: a large foreign value elsewhere under the pool prefix must not slow
   * every read.
   */
  private async readPool(): Promise<{ revision: bigint; kvs: IKeyValue[] }> {
    const { keys } = this.options;
    const result = await this.etcd
      .if(keys.leader, 'Mod', '>', -1) // always true: a transaction only for its atomic read
      .then(
        this.etcd.getAll().prefix(keys.membersPrefix),
        this.etcd.get(keys.leader),
        this.etcd.get(keys.ticketHighWater),
      )
      .commit();
    const kvs = result.responses.flatMap((op) => op.response_range?.kvs ?? []);
    return { revision: BigInt(result.header.revision), kvs };
  }

  /**
   * True (and reported) when a linearizable read answered with a lower revision than one
   * received before it was sent (`floor`).
   */
  private noteRevision(revision: bigint, floor: bigint): boolean {
    const step = this.history.noteRevision(revision, floor, monotonicNow());
    if (step === undefined) return false;
    this.options.logger.error(
      { seenRevision: step.seen.toString(), revision: step.now.toString() },
      'etcd went back in time: it answers with a lower revision than it gave before (restored from an older backup?)',
    );
    this.emit('rollback', step);
    return true;
  }

  private noteTicketMark(mark: bigint): void {
    const step = this.history.noteTicketMark(mark, monotonicNow());
    if (step === undefined) return;
    this.options.logger.error(
      { highestMark: step.highest.toString(), mark: step.now.toString() },
      'the ticket mark in etcd fell below one seen before (etcd restored from an older backup?)',
    );
    this.emit('ticketMarkBack', step);
  }

  private setReachable(reachable: boolean): void {
    if (reachable === this.isReachable) return;
    this.isReachable = reachable;
    this.emit('reachability', reachable);
  }

  /**
   * One linearizable transaction of small ranges: the number of keys under the members prefix
   * (etcd counts them in its index, values unread) and the claim's key without its value —
   * and, every `SCAN_EVERY`th probe, the keys of the members modified after the view's
   * revision (none while the view is current). That scan is what finds a change that leaves
   * the count alone (a record rewritten; a member gone and another come between two probes),
   * but etcd reads every member key to answer it, which in every probe of every member came
   * to O(members²) reads at rest: the largest part of etcd's work in a pool of hundreds.
   */
  private async probe(): Promise<Probe> {
    const { keys } = this.options;
    const members = Range.prefix(keys.membersPrefix);
    const since = this.viewRevision;
    const scan = ++this.probes % SCAN_EVERY === 0;
    const result = await this.etcd
      .if(keys.leader, 'Mod', '>', -1) // always true: a transaction only for its atomic read
      .then(
        { request_range: { key: members.start, range_end: members.end, count_only: true } },
        { request_range: { key: Buffer.from(keys.leader), keys_only: true } },
        ...(scan
          ? [
              {
                request_range: {
                  key: members.start,
                  range_end: members.end,
                  keys_only: true,
                  min_mod_revision: (since + 1n).toString(),
                },
              },
            ]
          : []),
      )
      .commit();
    const [count, claim, changed] = result.responses.map((op) => op.response_range);
    return {
      since,
      revision: BigInt(result.header.revision),
      memberKeys: Number(count?.count ?? 0),
      changed: changed?.kvs.length ?? 0,
      claimTerm: claim?.kvs[0] === undefined ? undefined : BigInt(claim.kvs[0].mod_revision),
    };
  }

  /**
   * Whether the view holds the state the probe saw. It does unless the watch has yet to
   * deliver a member that came or went (not as many keys as the view knows, valid or not), a
   * claim change, or — seen by a scanning probe — any put after the view's revision.
   */
  private agreesWith(probe: Probe): boolean {
    return (
      probe.changed === 0 &&
      probe.memberKeys === this.byKey.size + this.invalidMembers.size &&
      probe.claimTerm === this.claimView?.term
    );
  }

  private applySnapshot(revision: bigint, kvs: IKeyValue[]): void {
    this.sorted = [];
    this.byKey.clear();
    this.invalidMembers.clear();
    this.claimView = undefined;
    this.viewRevision = revision;
    this.snapshotRevision = revision;
    for (const kv of kvs) this.applyPut(kv);
    if (!kvs.some((kv) => kv.key.toString() === this.options.keys.ticketHighWater)) {
      this.noteTicketMark(0n);
    }
  }

  private applyEvents(res: IWatchResponse): void {
    let changed = false;
    const { keys } = this.options;
    // etcd sends the events of one revision together: a claim delete, and the release note or
    // its holder's member key going with it, arrive in one response (see failover.ts).
    let ended: { claim: ClaimView; revision: bigint } | undefined;
    const notes = new Map<bigint, ReleaseNote>();
    for (const event of res.events) {
      const revision = BigInt(event.kv.mod_revision);
      if (revision <= this.snapshotRevision) continue;
      if (revision > this.viewRevision) this.viewRevision = revision;
      const key = event.kv.key.toString();
      if (event.type === 'Put') {
        if (key === keys.released) {
          const note = this.releaseNote(event.kv);
          if (note) notes.set(revision, note);
        }
        changed = this.applyPut(event.kv) || changed;
      } else {
        if (key === keys.leader && this.claimView) ended = { claim: this.claimView, revision };
        changed = this.applyDelete(key) || changed;
      }
    }
    if (ended) {
      const { claim, revision } = ended;
      // Looked for only when a claim ended (rare), not kept for every delete.
      const holderKey = keys.member(claim.leaseId);
      const holderKeyDeleted = res.events.some(
        (event) =>
          event.type === 'Delete' &&
          BigInt(event.kv.mod_revision) === revision &&
          event.kv.key.toString() === holderKey,
      );
      this.lastClaimEnd = {
        term: claim.term,
        leaderId: claim.claim?.id,
        cause: causeOf({ note: notes.get(revision), holderKeyDeleted }),
        observedAt: monotonicNow(),
      };
    }
    // Not noted in the history: a watch may be served by an etcd member that lags behind the
    // one a linearizable read reached, and its header may be lower without any restore.
    const headerRevision = BigInt(res.header.revision);
    if (headerRevision > this.viewRevision) this.viewRevision = headerRevision;
    if (changed) this.emit('change');
  }

  /** Returns whether the election-relevant state changed. */
  private applyPut(kv: IKeyValue): boolean {
    const key = kv.key.toString();
    const { keys } = this.options;
    if (key === keys.leader) {
      const decoded = decodeShared(leaderClaimSchema, kv.value);
      if (!decoded.ok) this.reportInvalid('claim', key, kv, decoded.reason);
      this.claimView = {
        term: BigInt(kv.mod_revision),
        leaseId: kv.lease,
        claim: decoded.ok ? decoded.value : undefined,
      };
      return true;
    }
    if (key.startsWith(keys.membersPrefix)) {
      const member = this.classifyMember(kv);
      const wasThere = this.removeMember(key);
      if (member) {
        this.insertMember(member);
        this.invalidMembers.delete(key);
      } else {
        this.invalidMembers.add(key);
      }
      return member !== undefined || wasThere;
    }
    if (key === keys.ticketHighWater) {
      const mark = kv.value.toString();
      if (/^\d{1,30}$/.test(mark)) this.noteTicketMark(BigInt(mark));
    } else if (!key.startsWith(keys.statePrefix)) {
      this.reportInvalid('foreign_key', key, kv, 'not a key of the pool layout');
    }
    return false;
  }

  /** The release note in `kv`, or undefined (reported) when it is not one. */
  private releaseNote(kv: IKeyValue): ReleaseNote | undefined {
    const decoded = decodeShared(releaseNoteSchema, kv.value);
    if (decoded.ok) return decoded.value;
    this.reportInvalid('release_note', kv.key.toString(), kv, decoded.reason);
    return undefined;
  }

  private applyDelete(key: string): boolean {
    this.forgetReports(key);
    if (key === this.options.keys.ticketHighWater) this.noteTicketMark(0n);
    if (key === this.options.keys.leader) {
      const had = this.claimView !== undefined;
      this.claimView = undefined;
      return had;
    }
    this.invalidMembers.delete(key);
    return this.removeMember(key);
  }

  /** A valid member, or undefined (reported) for a foreign key or an invalid record. */
  private classifyMember(kv: IKeyValue): MemberView | undefined {
    const key = kv.key.toString();
    const suffix = key.slice(this.options.keys.membersPrefix.length);
    if (kv.lease === '0' || suffix !== leaseIdHex(kv.lease)) {
      this.reportInvalid('member_key', key, kv, 'key is not bound to the lease its name says');
      return undefined;
    }
    const decoded = decodeShared(memberRecordSchema, kv.value);
    if (!decoded.ok) {
      this.reportInvalid('member_record', key, kv, decoded.reason);
      return undefined;
    }
    if (decoded.value.pool !== this.options.pool) {
      this.reportInvalid('member_record', key, kv, `record names pool "${decoded.value.pool}"`);
      return undefined;
    }
    return shareMember({
      key,
      leaseId: kv.lease,
      createRevision: BigInt(kv.create_revision),
      modRevision: BigInt(kv.mod_revision),
      record: decoded.value,
    });
  }

  private insertMember(member: MemberView): void {
    this.byKey.set(member.key, member);
    const at = lowerBound(this.sorted, member.createRevision);
    this.sorted.splice(at, 0, member);
  }

  private removeMember(key: string): boolean {
    const member = this.byKey.get(key);
    if (!member) return false;
    this.byKey.delete(key);
    const at = lowerBound(this.sorted, member.createRevision);
    if (this.sorted[at]?.key === key) this.sorted.splice(at, 1);
    return true;
  }

  private reportInvalid(kind: InvalidKind, key: string, kv: IKeyValue, reason: string): void {
    const id = `${key}@${kv.mod_revision}`;
    if (this.reported.has(id)) return;
    this.reported.add(id);
    this.options.metrics.invalidRecords.inc({ pool: this.options.pool, kind });
    this.options.logger.warn(
      { key, kind, reason },
      'ignoring an invalid value under the pool prefix',
    );
  }

  private forgetReports(key: string): void {
    for (const id of this.reported) if (id.startsWith(`${key}@`)) this.reported.delete(id);
  }
}

/** Resolves when the watcher is connected; rejects on its error or after `timeoutMs`. */
function connected(watcher: Watcher, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`watch not confirmed within ${timeoutMs} ms`));
    }, timeoutMs);
    const onConnected = () => {
      cleanup();
      resolve();
    };
    const onError = (error: Error) => {
      cleanup();
      reject(error);
    };
    const cleanup = () => {
      clearTimeout(timer);
      watcher.off('connected', onConnected);
      watcher.off('error', onError);
    };
    watcher.on('connected', onConnected);
    watcher.on('error', onError);
  });
}
