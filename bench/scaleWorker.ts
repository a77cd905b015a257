/**
 * A worker process of the scale benchmark (bench/scale.ts). It hosts many pool members — the
 * real `PoolElection`, without HTTP servers — on one etcd client and one metrics registry,
 * where production runs one member per process, and talks to the parent over IPC (the
 * parent's side: bench/scaleWorkerProcesses.ts).
 *
 * What it reports, and when:
 * - `added` once the members of an `add` are registered and synced;
 * - `leader` whenever the *unanimous* state of its members changes: the member key that every
 *   local member's `leader()` names (undefined while they disagree or some have none), whether
 *   that member is local and `isLeader()`, the time the state began and the time the first
 *   local member named that leader. Detected from `leaderChanged` and `change` events, so a
 *   trial costs a couple of IPC messages per worker, not one per member;
 * - `settled` once every local member is ready, sees `size` members and agrees on a leader;
 * - `sample`: CPU time, RSS and the etcd requests the members sent (the metrics' counter).
 *
 * Times are on the parent's monotonic clock: this process's `performance.now()` shifted by the
 * difference of the two processes' `performance.timeOrigin`s, which the parent sends in
 * `init`. Both origins come from the same system clock at each process's start, so the shift
 * aligns the two monotonic clocks without reading `Date.now()` during a trial.
 */
import { writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { performance } from 'node:perf_hooks';
import type { Etcd3 } from 'etcd3';
import { pino } from 'pino';
import { PoolElection } from '../src/election/election.js';
import type { LeaderInfo } from '../src/election/leaderLog.js';
import { connectEtcd } from '../src/etcd/client.js';
import { poolKeys } from '../src/etcd/keys.js';
import { createMetrics } from '../src/metrics/metrics.js';
import { VERSION } from '../src/version.js';

// tsx turns on source maps, which makes every Error (a timeout, a refused call) cost a
// source-map lookup per stack frame; the service runs without them.
process.setSourceMapsEnabled(false);

export interface WorkerInit {
  type: 'init';
  index: number;
  endpoints: string[];
  prefix: string;
  pool: string;
  ttlSeconds: number;
  /** The parent's `performance.timeOrigin`. */
  parentTimeOrigin: number;
}

export type ToWorker =
  | WorkerInit
  /** Register `count` more members, all at once. */
  | { type: 'add'; count: number }
  | { type: 'settle'; size: number }
  /** `collect`: run a full garbage collection before reading the memory figures. */
  | { type: 'sample'; collect: boolean }
  /** CPU profile of a phase (profiling only): start, then stop and write it to `file`. */
  | { type: 'profile'; file: string | undefined }
  /** Stop every member's watch, so that the revokes of `close` wake nobody. */
  | { type: 'quiesce' }
  | { type: 'close' };

export interface WorkerSample {
  /** User + system CPU time of this process, in microseconds. */
  cpuMicros: number;
  rssBytes: number;
  heapUsedBytes: number;
  /** Requests the members sent to etcd (unary calls and stream opens), by operation. */
  etcdRequests: Record<string, number>;
  keepAliveFailures: number;
  /** Since the start, by reason. */
  watchResyncs: Record<string, number>;
  members: number;
  /** When the CPU time was read, on the parent's clock. */
  at: number;
}

export interface LeaderState {
  /** The member key every local member names as leader; undefined while they do not agree. */
  key: string | undefined;
  /** That leader's member id. */
  id: string | undefined;
  /** That member is one of ours and `isLeader()`. */
  holds: boolean;
  /** When this state began (parent's clock). */
  at: number;
  /** When the first local member named `key` (parent's clock). */
  firstAt: number | undefined;
}

export type FromWorker =
  | { type: 'ready' }
  | { type: 'added'; members: number }
  | ({ type: 'leader' } & LeaderState)
  | { type: 'settled'; key: string }
  | ({ type: 'sample' } & WorkerSample)
  | { type: 'profiled' }
  | { type: 'quiesced' }
  | { type: 'error'; message: string };

/** The election settings of the service's defaults (config.ts), but the TTL. */
const SAFETY_MARGIN_MS = 500;
const CALL_TIMEOUT_MS = 1500;
const RECONCILE_INTERVAL_MS = 3000;

const send = (message: FromWorker) => process.send?.(message);

class Worker {
  private readonly elections: PoolElection[] = [];
  /** What each member's `leader()` named at its last `leaderChanged`. */
  private readonly named = new Map<PoolElection, string | undefined>();
  /** How many local members name each leader key. */
  private readonly counts = new Map<string, number>();
  /** When the first local member named each leader key. */
  private readonly firstNamed = new Map<string, number>();
  private reported: LeaderState = {
    key: undefined,
    id: undefined,
    holds: false,
    at: 0,
    firstAt: undefined,
  };
  /** The local member a unanimous key belongs to, looked up once per key. */
  private holder: { key: string; election: PoolElection | undefined } | undefined;
  private settleCheck: { size: number; scheduled: boolean } | undefined;
  private readonly etcd: Etcd3;
  private readonly metrics = createMetrics(VERSION);
  // Warnings and errors only: at info every member logs each leader change, which is the
  // service's normal output but would be 1 000 lines per trial here.
  private readonly logger = pino({ level: 'warn', base: null }, process.stderr);
  private readonly startedAt = new Date().toISOString();
  private readonly clockShift: number;

  constructor(private readonly init: WorkerInit) {
    this.clockShift = performance.timeOrigin - init.parentTimeOrigin;
    this.etcd = connectEtcd({
      endpoints: init.endpoints,
      callTimeoutMs: CALL_TIMEOUT_MS,
      onRequest: (operation) => this.metrics.etcdRequests.inc({ operation }),
    });
  }

  /** Now on the parent's monotonic clock. */
  private now(): number {
    return performance.now() + this.clockShift;
  }

  async add(count: number): Promise<void> {
    const starting = Array.from({ length: count }, () => this.member());
    // start() resolves once the member is registered and its view synced.
    await Promise.all(starting.map((election) => election.start()));
    send({ type: 'added', members: this.elections.length });
  }

  private member(): PoolElection {
    const { index, prefix, pool, ttlSeconds } = this.init;
    const id = `w${index}-m${this.elections.length}`;
    const election = new PoolElection(this.etcd, {
      pool,
      keys: poolKeys(prefix, pool),
      record: {
        id,
        // Never called: these members have no HTTP server.
        url: `http://${id}.scale.invalid:8080`,
        startedAt: this.startedAt,
        pid: process.pid,
        version: VERSION,
        weight: 1,
        labels: {},
        leads: [],
        candidate: true,
      },
      leaseTtlSeconds: ttlSeconds,
      safetyMarginMs: SAFETY_MARGIN_MS,
      callTimeoutMs: CALL_TIMEOUT_MS,
      reconcileIntervalMs: RECONCILE_INTERVAL_MS,
      logger: this.logger.child({ member: id }),
      metrics: this.metrics,
    });
    this.elections.push(election);
    this.named.set(election, undefined);
    election.on('leaderChanged', (leader) => this.onLeaderChanged(election, leader));
    // `change` covers what `leaderChanged` does not: the holder's isLeader() turning true
    // when its claim's answer arrives, and readiness for `settle`.
    election.on('change', () => {
      this.report();
      this.scheduleSettleCheck();
    });
    return election;
  }

  private onLeaderChanged(election: PoolElection, leader: LeaderInfo | undefined): void {
    const before = this.named.get(election);
    const after = leader?.memberKey;
    if (before === after) return;
    if (before !== undefined) this.counts.set(before, (this.counts.get(before) ?? 1) - 1);
    if (after !== undefined) {
      this.counts.set(after, (this.counts.get(after) ?? 0) + 1);
      if (!this.firstNamed.has(after)) this.firstNamed.set(after, this.now());
    }
    this.named.set(election, after);
    this.report();
  }

  /** The unanimous state; O(1) but for the one lookup of a new key's local holder. */
  private state(): { key: string | undefined; holds: boolean } {
    const first = this.elections[0];
    const key = first === undefined ? undefined : this.named.get(first);
    if (key === undefined || this.counts.get(key) !== this.elections.length) {
      return { key: undefined, holds: false };
    }
    if (this.holder?.key !== key) {
      this.holder = { key, election: this.elections.find((e) => e.memberKey === key) };
    }
    return { key, holds: this.holder.election?.isLeader() ?? false };
  }

  private report(): void {
    const { key, holds } = this.state();
    if (key === this.reported.key && holds === this.reported.holds) return;
    const firstAt = key === undefined ? undefined : this.firstNamed.get(key);
    const id = key === undefined ? undefined : this.elections[0]?.leader()?.id;
    this.reported = { key, id, holds, at: this.now(), firstAt };
    send({ type: 'leader', ...this.reported });
  }

  /** Answers `settled` once; re-checked at most once per event-loop turn, on `change`. */
  settle(size: number): void {
    this.settleCheck = { size, scheduled: false };
    this.scheduleSettleCheck();
  }

  private scheduleSettleCheck(): void {
    const check = this.settleCheck;
    if (!check || check.scheduled) return;
    check.scheduled = true;
    setImmediate(() => {
      check.scheduled = false;
      if (this.settleCheck !== check) return;
      const { key } = this.state();
      const settled =
        key !== undefined &&
        this.elections.every(
          (e) => e.isReady() && e.view.synced && e.view.members.length === check.size,
        );
      if (!settled) return;
      this.settleCheck = undefined;
      send({ type: 'settled', key });
    });
  }

  async sample(collect: boolean): Promise<WorkerSample> {
    const cpu = process.cpuUsage();
    const at = this.now();
    // The heap holds garbage of every size until V8 next collects, so memory read at an
    // arbitrary moment is noise; the bench starts workers with --expose-gc for this.
    const gc = (globalThis as { gc?: () => void }).gc;
    if (collect) gc?.();
    const memory = process.memoryUsage();
    const etcdRequests: Record<string, number> = {};
    for (const { labels, value } of (await this.metrics.etcdRequests.get()).values) {
      etcdRequests[String(labels.operation)] = value;
    }
    const watchResyncs: Record<string, number> = {};
    for (const { labels, value } of (await this.metrics.watchResyncs.get()).values) {
      const reason = String(labels.reason);
      watchResyncs[reason] = (watchResyncs[reason] ?? 0) + value;
    }
    const keepAliveFailures = (await this.metrics.keepAliveFailures.get()).values.reduce(
      (sum, v) => sum + v.value,
      0,
    );
    return {
      cpuMicros: cpu.user + cpu.system,
      rssBytes: memory.rss,
      heapUsedBytes: memory.heapUsed,
      etcdRequests,
      keepAliveFailures,
      watchResyncs,
      members: this.elections.length,
      at,
    };
  }

  private profiler: Session | undefined;

  /** Starts profiling (`file` undefined) or stops and writes the profile. */
  async profile(file: string | undefined): Promise<void> {
    if (file === undefined) {
      this.profiler = new Session();
      this.profiler.connect();
      await this.profiler.post('Profiler.enable');
      await this.profiler.post('Profiler.start');
      return;
    }
    const session = this.profiler;
    this.profiler = undefined;
    if (!session) return;
    const { profile } = await session.post('Profiler.stop');
    session.disconnect();
    await writeFile(file, JSON.stringify(profile));
  }

  quiesce(): void {
    for (const election of this.elections) election.view.stop();
  }

  async close(): Promise<void> {
    // A hundred revokes at a time: a thousand at once would queue behind each other anyway.
    for (let i = 0; i < this.elections.length; i += 100) {
      await Promise.all(this.elections.slice(i, i + 100).map((e) => e.close()));
    }
    this.etcd.close();
  }
}

let worker: Worker | undefined;

function fail(error: unknown): void {
  send({
    type: 'error',
    message: error instanceof Error ? (error.stack ?? error.message) : String(error),
  });
}

process.on('message', (message: ToWorker) => {
  try {
    switch (message.type) {
      case 'init':
        worker = new Worker(message);
        send({ type: 'ready' });
        return;
      case 'add':
        worker!.add(message.count).catch(fail);
        return;
      case 'settle':
        worker!.settle(message.size);
        return;
      case 'sample':
        worker!
          .sample(message.collect)
          .then((sample) => send({ type: 'sample', ...sample }))
          .catch(fail);
        return;
      case 'profile':
        worker!
          .profile(message.file)
          .then(() => send({ type: 'profiled' }))
          .catch(fail);
        return;
      case 'quiesce':
        worker!.quiesce();
        send({ type: 'quiesced' });
        return;
      case 'close':
        worker!
          .close()
          .catch(fail)
          .finally(() => process.disconnect());
        return;
    }
  } catch (error) {
    fail(error);
  }
});

// The parent going away (a crashed bench) ends this process too: nothing else would.
process.on('disconnect', () => process.exit(0));
