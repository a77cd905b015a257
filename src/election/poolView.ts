/**
 * The local view of one pool, kept current from etcd: a snapshot read at revision R followed
 * by a watch from R+1, both applied to the pool's state (poolState.ts: the members sorted by
 * create revision, the leader claim, invalid values).
 *
 * Any watch error, cancellation or compaction ⇒ resync (read again, watch again). A watch on
 * an etcd member that lost quorum stalls silently, so a periodic linearizable read reconciles
 * the view; it is also how the view knows etcd is reachable. That read is a small probe — how
 * many member keys exist and the claim's revision; every tenth probe also which members
 * changed after the view's revision — not the whole pool: every member sends one every few
 * seconds, so reading the whole pool would cost etcd and the members O(members²) at rest.
 *
 * The invalid values the state finds are logged once per key version and counted here.
 */
import { EventEmitter } from 'node:events';
import type { Etcd3, IWatchResponse, Watcher } from 'etcd3';
import type { Logger } from 'pino';
import { describeEtcdError } from '../etcd/access.js';
import type { PoolKeys } from '../etcd/keys.js';
import type { PoolMetrics } from '../metrics/metrics.js';
import { retry, type BackoffSchedule } from '../util/backoff.js';
import { monotonicNow } from '../util/time.js';
import { EtcdHistory, type RevisionStep, type TicketMarkStep } from './etcdHistory.js';
import type { ClaimEnd } from './failover.js';
import {
  agreesWith,
  INVALID_KINDS,
  PoolState,
  type ClaimView,
  type InvalidRecord,
  type MemberView,
  type PoolUpdate,
  type SeenTicketMark,
} from './poolState.js';
import { probePool, readPool, watchConnected, type Probe } from './poolReads.js';

export type { ClaimView, MemberView, SeenTicketMark } from './poolState.js';

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

/** One probe in this many also lists the members modified after the view (`probePool`). */
const SCAN_EVERY = 10;

/** How long a watch may take to deliver what a reconcile probe already showed. */
const LAG_GRACE_MS = 1000;

/** Between failed resyncs: 50 ms doubling to 2 s, each spread ±50% so members do not retry together. */
const RESYNC_BACKOFF: BackoffSchedule = { initialMs: 50, maxMs: 2000, jitter: 0.5 };

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

export class PoolView extends EventEmitter<PoolViewEvents> {
  private readonly state: PoolState;
  private watcher: Watcher | undefined;
  private generation = 0;
  private resyncing: Promise<void> | undefined;
  private reconcileTimer: NodeJS.Timeout | undefined;
  /** Set while a reconcile probe showed changes the watch had yet to deliver (`reconcile`). */
  private lagCheck: NodeJS.Timeout | undefined;
  /** Probes sent; starts at random so that the views of a process scan at different times. */
  private probes = Math.floor(Math.random() * SCAN_EVERY);
  private stopped = false;
  /** Aborted by `stop()`: ends a resync's retries at once. */
  private readonly stopping = new AbortController();
  private isSynced = false;
  private isReachable = false;
  /** What this process has seen of etcd's revisions and the ticket mark. */
  readonly history = new EtcdHistory();

  constructor(
    private readonly etcd: Etcd3,
    private readonly options: PoolViewOptions,
  ) {
    super();
    this.state = new PoolState(options.pool, options.keys);
    // Every series from the start at 0: a dashboard panel draws 0, not "No data".
    const { metrics, pool } = options;
    for (const reason of RESYNC_REASONS) metrics.watchResyncs.inc({ pool, reason }, 0);
    for (const kind of INVALID_KINDS) metrics.invalidRecords.inc({ pool, kind }, 0);
  }

  /** Members with valid records, oldest (lowest create revision) first. */
  get members(): readonly MemberView[] {
    return this.state.members;
  }

  get claim(): ClaimView | undefined {
    return this.state.claim;
  }

  get revision(): bigint {
    return this.state.revision;
  }

  /** The ticket mark as of `revision` (poolState.ts); undefined while it is not a number. */
  get ticketMark(): SeenTicketMark | undefined {
    return this.state.ticketMark;
  }

  /**
   * How the claim of `term` ended, if this view saw its delete in the watch (not in a re-read,
   * which shows only that it is gone).
   */
  claimEnded(term: bigint): ClaimEnd | undefined {
    return this.state.claimEnded(term);
  }

  member(key: string): MemberView | undefined {
    return this.state.member(key);
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
    this.stopping.abort();
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
    let step = 'read the pool';
    await retry(
      async () => {
        const generation = ++this.generation;
        const old = this.watcher;
        this.watcher = undefined;
        void old?.cancel().catch(() => undefined);
        step = 'read the pool';
        const floor = this.history.revisionFloor;
        const snapshot = await readPool(this.etcd, this.options.keys);
        if (generation !== this.generation) return;
        this.setReachable(true);
        this.noteRevision(snapshot.revision, floor);
        this.report(this.state.applySnapshot(snapshot.revision, snapshot.kvs));
        // The election may act on the fresh snapshot before the watch is in place.
        this.emit('change');
        step = 'watch the pool';
        // Listeners go on before the watch connects, so no event can slip past them.
        const watcher = this.etcd
          .watch()
          .prefix(this.options.keys.pool)
          .startRevision(String(this.state.revision + 1n))
          .watcher();
        this.attach(watcher, generation);
        await watchConnected(watcher, this.options.watchCreateTimeoutMs);
        if (generation !== this.generation) return;
        this.isSynced = true;
        this.emit('change');
      },
      {
        schedule: RESYNC_BACKOFF,
        signal: this.stopping.signal,
        onRetry: (error, delayMs) => {
          if (step === 'read the pool') this.setReachable(false);
          this.options.logger.warn(
            { err: describeEtcdError(error), retryInMs: Math.round(delayMs) },
            `cannot ${step}; retrying`,
          );
        },
      },
    ).catch((error: unknown) => {
      // Stopped: the view is done with, nothing to report.
      if (!this.stopping.signal.aborted) throw error;
    });
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
      if (probe.since !== this.state.revision) return;
      if (!agreesWith(probe, this.state)) this.expectProgress(generation);
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
    const revision = this.state.revision;
    const graceMs = Math.min(this.options.reconcileIntervalMs, LAG_GRACE_MS);
    this.lagCheck = setTimeout(() => {
      this.lagCheck = undefined;
      if (this.stopped || generation !== this.generation || this.resyncing) return;
      if (this.state.revision === revision) void this.resync('reconcile');
    }, graceMs);
    this.lagCheck.unref();
  }

  /** Reads the valid members afresh from etcd (one range), oldest first. */
  async readMembers(): Promise<MemberView[]> {
    const read = await this.etcd.getAll().prefix(this.options.keys.membersPrefix).exec();
    const { members, invalid } = this.state.validMembers(read.kvs);
    this.reportInvalid(invalid);
    return members;
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

  /** The reconcile probe (`probePool`); one in `SCAN_EVERY` scans. */
  private probe(): Promise<Probe> {
    const scan = ++this.probes % SCAN_EVERY === 0;
    return probePool(this.etcd, this.options.keys, this.state.revision, scan);
  }

  /**
   * Applies a watch response. Its header's revision is not noted in the history: a watch may
   * be served by an etcd member that lags behind the one a linearizable read reached, and its
   * header may be lower without any restore.
   */
  private applyEvents(res: IWatchResponse): void {
    const update = this.state.applyEvents(res.events, BigInt(res.header.revision), monotonicNow());
    this.report(update);
    if (update.changed) this.emit('change');
  }

  /** Logs and counts what `update` found; notes its ticket marks in the history. */
  private report(update: PoolUpdate): void {
    this.reportInvalid(update.invalid);
    for (const mark of update.ticketMarks) this.noteTicketMark(mark);
  }

  private reportInvalid(invalid: readonly InvalidRecord[]): void {
    const { logger, metrics, pool } = this.options;
    for (const { key, kind, reason } of invalid) {
      metrics.invalidRecords.inc({ pool, kind });
      logger.warn({ key, kind, reason }, 'ignoring an invalid value under the pool prefix');
    }
  }
}
