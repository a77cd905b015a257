/**
 * Lease keep-alives on a thread of their own.
 *
 * Why. A member's main thread parses requests, forwards them and answers them; under a flood
 * (thousands of connections at once) one turn of its event loop can take a second. Keep-alives
 * sent and answered on that loop then wait behind the requests, and at TTL 2 a member lost its
 * lease to load (docs/reliability.md). Here a worker thread with its own etcd connection sends
 * the keep-alives and reads their answers, on an event loop that carries nothing else.
 *
 * What stays on the main thread: the grant and the revoke (the election's own etcd calls), and
 * every decision. The worker reports each renewal as a monotonic deadline (`monotonicNow` is
 * the same clock in every thread); the main thread takes the later of what it knew and what it
 * hears, so a message that arrives late only makes it more careful, never less safe.
 *
 * A hung main thread must not keep a lease alive: it beats every `BEAT_MS`, and the worker
 * sends no keep-alive while the last beat is older than the lease's TTL. A member whose main
 * thread stops for good therefore loses its lease within about 2×TTL, as a crashed one would.
 * Busy is not hung: a flood of connections can hold the main thread in one turn of its event
 * loop for seconds (libuv handles up to ~49,000 I/O events before it runs timers again), so
 * the owner also calls `alive()` from its I/O callbacks (each new connection and request),
 * which beats at most every `BEAT_MS`.
 *
 * The main thread keeps a lease itself (`MemberLease.keep`) until the worker's first renewal,
 * and again as a backup while the worker's keep-alives fail with less than half the TTL left
 * (its own connection may be stuck while the main one works); the backup stops at the worker's
 * next renewal. If the worker cannot start or dies, every lease is kept from the main thread
 * from then on, with a warning: the member degrades to the old behaviour, it does not lose its
 * registration.
 */
import { Worker } from 'node:worker_threads';
import type { Etcd3 } from 'etcd3';
import type { EtcdOptions } from '../etcd/client.js';
import type { Logger } from '../log/logger.js';
import { monotonicNow } from '../util/time.js';
import { KeptLease, MemberLease, type LeaseGrantor } from './lease.js';

/**
 * The worker's entry: compiled JavaScript beside this file as shipped. When this file runs
 * from source (the tests, under tsx, whose loader does not reach worker threads), the compiled
 * one under dist/ — as the tests' member processes run the compiled CLI (`make build` first).
 */
const WORKER_URL = new URL(
  import.meta.url.endsWith('.ts')
    ? '../../dist/src/membership/leaseThreadWorker.js'
    : './leaseThreadWorker.js',
  import.meta.url,
);

/** How often (ms) the main thread tells the worker it is still answering. */
export const BEAT_MS = 100;

/** Main thread → worker. */
export type ToWorker =
  | { type: 'keep'; id: string; ttlMs: number; deadline: number; callTimeoutMs: number }
  | { type: 'drop'; id: string }
  | { type: 'endpoints'; urls: string[] }
  /** The main thread was running at `at` (monotonic ms). */
  | { type: 'beat'; at: number };

/** Worker → main thread. */
export type FromWorker =
  | { type: 'renewed'; id: string; deadline: number; timeLeftMs: number; answeredAt: number }
  | { type: 'failed'; id: string; message: string }
  | { type: 'lost'; id: string; reason: string }
  | { type: 'request'; operation: string };

/** What the worker needs to open its own etcd connection (no functions: it is cloned). */
export type WorkerEtcdOptions = Omit<EtcdOptions, 'onRequest'>;

/** The worker's start-up data. */
export interface WorkerData {
  etcd: WorkerEtcdOptions;
  /** When (monotonic ms) the main thread started it: its first sign of life. */
  startedAt: number;
}

/**
 * One worker per member process, shared by the leases of all its pools. Leases are granted on
 * the main thread's etcd client and kept alive from the worker's.
 */
export class LeaseThread implements LeaseGrantor {
  private worker: Worker | undefined;
  /** The worker could not start, died, or was closed: keep-alives run on the main thread. */
  private failed = false;
  private beat: NodeJS.Timeout | undefined;
  private lastBeatAt = -Infinity;
  private saidTookOver = false;
  private readonly leases = new Map<string, ThreadedLease>();

  /**
   * Starts the worker at once (it loads its modules and connects while the member starts up,
   * not when the first lease needs it).
   */
  constructor(
    private readonly etcd: Etcd3,
    private readonly options: EtcdOptions,
    private readonly logger: Logger,
  ) {
    this.start();
  }

  /** Grants a lease (blocks for one etcd call, bounded by its deadline) and keeps it alive. */
  async grant(ttlSeconds: number, callTimeoutMs: number): Promise<KeptLease> {
    const sentAt = monotonicNow();
    const granted = await this.etcd.leaseClient.leaseGrant({ TTL: ttlSeconds });
    const ttlMs = Number(granted.TTL) * 1000;
    const lease = new ThreadedLease(
      this,
      this.etcd,
      granted.ID,
      ttlMs,
      sentAt + ttlMs,
      callTimeoutMs,
    );
    this.leases.set(lease.id, lease);
    // Kept from here too until the worker's first renewal proves it has taken over: a worker
    // still starting (or slow to connect) must not leave the lease unattended.
    lease.keepHere(false);
    this.worker?.postMessage(lease.keepMessage());
    return lease;
  }

  /** Stops the worker and every keep-alive it sent. Does not revoke. */
  async close(): Promise<void> {
    for (const lease of this.leases.values()) lease.abandon();
    clearInterval(this.beat);
    const worker = this.worker;
    this.worker = undefined;
    this.failed = true;
    await worker?.terminate();
  }

  /** The worker's etcd client dials `urls` from now on (see etcd/endpoints.ts). */
  setEndpoints(urls: readonly string[]): void {
    this.worker?.postMessage({ type: 'endpoints', urls: [...urls] } satisfies ToWorker);
  }

  /**
   * The main thread is running JavaScript: beats now unless it did within `BEAT_MS`. Cheap
   * (one clock read) — call it from I/O callbacks that may run for long stretches without
   * timers, such as the HTTP server's `connection` event.
   */
  alive(): void {
    if (monotonicNow() - this.lastBeatAt >= BEAT_MS) this.sendBeat();
  }

  private sendBeat(): void {
    this.lastBeatAt = monotonicNow();
    this.worker?.postMessage({ type: 'beat', at: this.lastBeatAt } satisfies ToWorker);
  }

  /** Whether the worker runs (a renewal it sent earlier may still arrive after it stopped). */
  get workerRunning(): boolean {
    return this.worker !== undefined;
  }

  /** @internal The first renewal by the worker: said once per process. */
  tookOver(): void {
    if (this.saidTookOver) return;
    this.saidTookOver = true;
    this.logger.info('lease keep-alives run on their own thread');
  }

  /** @internal A lease ended: the worker forgets it. */
  drop(id: string): void {
    this.leases.delete(id);
    this.worker?.postMessage({ type: 'drop', id } satisfies ToWorker);
  }

  private start(): void {
    const { endpoints, callTimeoutMs, tls, auth } = this.options;
    const etcd: WorkerEtcdOptions = {
      endpoints,
      callTimeoutMs,
      ...(tls ? { tls } : {}),
      ...(auth ? { auth } : {}),
    };
    let worker: Worker;
    try {
      worker = new Worker(WORKER_URL, {
        workerData: { etcd, startedAt: monotonicNow() } satisfies WorkerData,
      });
    } catch (error) {
      this.fallBack(error);
      return;
    }
    worker.unref();
    worker.on('message', (message: FromWorker) => this.onMessage(message));
    worker.on('error', (error) => this.fallBack(error));
    worker.on('exit', (code) => {
      if (this.worker === worker) this.fallBack(new Error(`exited with code ${code}`));
    });
    this.worker = worker;
    this.beat = setInterval(() => this.sendBeat(), BEAT_MS);
    this.beat.unref();
  }

  private onMessage(message: FromWorker): void {
    if (message.type === 'request') {
      this.options.onRequest?.(message.operation);
      return;
    }
    const lease = this.leases.get(message.id);
    if (!lease) return;
    if (message.type === 'renewed') {
      lease.renewedByWorker(message.deadline, message.timeLeftMs, message.answeredAt);
    } else if (message.type === 'failed') lease.failedInWorker(new Error(message.message));
    else lease.markLost(message.reason);
  }

  /** The worker is gone: keep every lease alive from this thread from now on. */
  private fallBack(error: unknown): void {
    if (this.failed) return;
    this.failed = true;
    clearInterval(this.beat);
    const worker = this.worker;
    this.worker = undefined;
    void worker?.terminate();
    this.logger.warn(
      { err: error instanceof Error ? error.message : String(error) },
      'lease keep-alive thread failed; keeping leases alive from the main thread',
    );
    for (const lease of this.leases.values()) lease.keepHere(true);
  }
}

/** The main thread's side of a lease whose keep-alives run on the `LeaseThread`. */
class ThreadedLease extends KeptLease {
  /** Keep-alives from the main thread: until the worker takes over, or after it failed. */
  private local: MemberLease | undefined;

  constructor(
    private readonly thread: LeaseThread,
    private readonly etcd: Etcd3,
    id: string,
    ttlMs: number,
    deadline: number,
    private readonly callTimeoutMs: number,
  ) {
    super(id, ttlMs, deadline);
  }

  keepMessage(): ToWorker {
    return {
      type: 'keep',
      id: this.id,
      ttlMs: this.ttlMs,
      deadline: this.deadline,
      callTimeoutMs: this.callTimeoutMs,
    };
  }

  /** Who sends the keep-alives now: the worker alone, or the main thread (too). */
  get keeper(): 'thread' | 'main' {
    return this.local ? 'main' : 'thread';
  }

  /** The worker renewed the lease: it has taken over, the main thread's keep-alives stop. */
  renewedByWorker(deadline: number, timeLeftMs: number, answeredAt: number): void {
    if (this.local && this.thread.workerRunning) {
      this.local.abandon();
      this.local = undefined;
      this.thread.tookOver();
    }
    this.renewed(deadline, timeLeftMs, answeredAt);
  }

  /**
   * A keep-alive of the worker failed. With less than half the TTL left the main thread joins
   * in at once (its connection may work where the worker's is stuck) until the worker renews
   * again.
   */
  failedInWorker(error: Error): void {
    this.emit('keepAliveFailed', error);
    if (this.timeLeftMs() < this.ttlMs / 2) this.keepHere(true);
  }

  /**
   * A renewal by either keeper. Each knows a lower bound of the lease's life; the time it had
   * left when the answer landed is the larger of the keeper's figure and ours.
   */
  private renewed(deadline: number, timeLeftMs: number, answeredAt: number): void {
    if (this.state !== 'alive') return;
    const left = Math.max(timeLeftMs, this.deadline - answeredAt);
    this.deadline = Math.max(this.deadline, deadline);
    this.emit('renewed', this.deadline, left, answeredAt);
  }

  markLost(reason: string): void {
    if (this.state !== 'alive') return;
    this.state = 'lost';
    this.thread.drop(this.id);
    this.emit('lost', reason);
  }

  /**
   * Keeps this lease alive from the main thread (too), from its current deadline; `now`: send
   * the first keep-alive at once rather than a third of the TTL later.
   */
  keepHere(now: boolean): void {
    if (this.state !== 'alive' || this.local) return;
    const local = MemberLease.keep(
      this.etcd,
      this.id,
      this.ttlMs,
      this.deadline,
      this.callTimeoutMs,
    );
    local.on('renewed', (deadline, timeLeftMs, answeredAt) =>
      this.renewed(deadline, timeLeftMs, answeredAt),
    );
    local.on('keepAliveFailed', (error) => this.emit('keepAliveFailed', error));
    local.on('lost', (reason) => this.markLost(reason));
    this.local = local;
    if (now) local.keepAlive();
  }

  async revoke(): Promise<void> {
    if (this.state === 'revoked') return;
    this.state = 'revoked';
    this.thread.drop(this.id);
    if (this.local) return this.local.revoke();
    await this.etcd.leaseClient.leaseRevoke({ ID: this.id });
  }

  abandon(): void {
    if (this.state === 'alive') this.state = 'lost';
    this.thread.drop(this.id);
    this.local?.abandon();
  }
}
