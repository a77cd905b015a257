/**
 * A member's etcd lease and its keep-alive.
 *
 * Timing model. etcd expires a lease TTL seconds after the last keep-alive it *received*. We
 * cannot know when that was, but it was no earlier than when we *sent* it, so
 * `leaseDeadline = sentAt + TTL` is a time before which etcd cannot have expired the lease.
 * The leader acts only before `leaseDeadline - safetyMargin`; a paused or partitioned leader
 * therefore stops before etcd can hand the lease's claim to another member. etcd3's own
 * `lost` event fires only after 2×TTL, so it is not used.
 *
 * All times here are monotonic (`monotonicNow` of util/time.ts, the process-wide
 * CLOCK_MONOTONIC that every thread shares): a wall-clock step (NTP) must not move the
 * deadline, or an old leader could outlive its lease.
 *
 * Keep-alives go every TTL/3 on one long-lived stream. One unanswered after
 * min(call timeout, TTL/6) counts as failed: a new stream is opened and the keep-alive sent
 * again at once, so one bad etcd member costs a fraction of the TTL, not a third of it. A
 * stream that fails outright (its etcd member gone or removed) is replaced within 20 ms,
 * backing off to TTL/6 while they keep failing. The
 * old stream is kept for another call timeout: an answer that arrives late still proves the
 * lease was renewed when that keep-alive was sent (on a slow link every answer is late).
 * A passed deadline does not mean the lease is gone (etcd extends leases when it regains
 * quorum): only etcd answering TTL 0, or a revoke, marks the lease `lost`.
 *
 * The etcd calls go through `LeaseCalls` and the clock is injectable, so that the deadline
 * rules are proven on a stand-in (test/unit/leaseDeadline.test.ts) as well as on etcd.
 */
import { EventEmitter } from 'node:events';
import type { ILeaseKeepAliveResponse } from 'etcd3';
import { backoffDelayMs, type BackoffSchedule } from '../util/backoff.js';
import { asError } from '../util/errors.js';
import { monotonicNow } from '../util/time.js';

/** A keep-alive stream: lease ids out, answers in (etcd3's duplex stream is one). */
export interface KeepAliveStream {
  write(request: { ID: string }): unknown;
  end(): unknown;
  on(event: 'data', listener: (res: Pick<ILeaseKeepAliveResponse, 'TTL'>) => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  on(event: 'end', listener: () => void): unknown;
}

/** The etcd calls a lease makes (an `Etcd3` has them), each bounded by the call deadline. */
export interface LeaseCalls {
  leaseClient: {
    leaseGrant(request: { TTL: number }): Promise<{ ID: string; TTL: string }>;
    leaseKeepAlive(): Promise<KeepAliveStream>;
    leaseRevoke(request: { ID: string }): Promise<unknown>;
  };
}

/** A keep-alive stream and the send times of its keep-alives not yet answered, oldest first. */
interface Channel {
  stream: KeepAliveStream;
  pending: number[];
}

export interface MemberLeaseEvents {
  /**
   * A keep-alive was answered at `answeredAt` (monotonic ms): the new deadline, and the time
   * (ms) the lease had left, as far as this keeper knew, when the answer landed.
   */
  renewed: [deadline: number, timeLeftMs: number, answeredAt: number];
  keepAliveFailed: [error: Error];
  lost: [reason: string];
}

/**
 * What the election needs of a lease, wherever its keep-alives run (this thread: MemberLease;
 * another: leaseThread.ts): its id, TTL, state and deadline.
 */
export abstract class KeptLease extends EventEmitter<MemberLeaseEvents> {
  protected state: 'alive' | 'lost' | 'revoked' = 'alive';

  protected constructor(
    readonly id: string,
    /** The TTL etcd granted, in ms; it may be above the one asked for. */
    readonly ttlMs: number,
    /** Monotonic ms before which etcd cannot have expired the lease. */
    protected deadline: number,
    /** The monotonic clock (ms) the deadline is on; tests pass a fake one. */
    protected readonly now: () => number = monotonicNow,
  ) {
    super();
  }

  /** Before this monotonic time (see `monotonicNow`) etcd cannot have expired the lease. */
  get leaseDeadline(): number {
    return this.deadline;
  }

  get isAlive(): boolean {
    return this.state === 'alive';
  }

  /** Milliseconds until the deadline at `now`; 0 once it has passed or the lease ended. */
  timeLeftMs(now = this.now()): number {
    return this.state === 'alive' ? Math.max(0, this.deadline - now) : 0;
  }

  /** Which thread sends the keep-alives now: 'main' whenever this one does (too). */
  abstract get keeper(): 'thread' | 'main';

  /** Revokes the lease: etcd deletes every key bound to it at once. */
  abstract revoke(): Promise<void>;

  /** Stops keeping the lease alive without revoking it (it expires after its TTL). */
  abstract abandon(): void;
}

/** Grants leases that are then kept alive (in this thread, or another: leaseThread.ts). */
export interface LeaseGrantor {
  /** Grants a lease of `ttlSeconds`; the grant itself is bounded by the etcd call deadline. */
  grant(ttlSeconds: number, callTimeoutMs: number): Promise<KeptLease>;
}

/**
 * Says why the lease must not be renewed now (its owner stopped answering), or undefined.
 * Asked before every keep-alive.
 */
export type RenewalVeto = () => string | undefined;

export class MemberLease extends KeptLease {
  private channel: Channel | undefined;
  private opening: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private answerTimer: NodeJS.Timeout | undefined;
  /** A prompt retry after a failed stream, and how many came since the last answer. */
  private retryTimer: NodeJS.Timeout | undefined;
  private retries = 0;
  /** A failed stream is replaced after 20 ms, doubling up to TTL/6 while they keep failing. */
  private readonly retrySchedule: BackoffSchedule;
  /** Raised when answers prove slow but alive, so a slow link does not churn streams. */
  private answerTimeoutMs: number;
  /** The veto's reason while it holds, so that it is reported once, not every tick. */
  private vetoed: string | undefined;

  private constructor(
    private readonly etcd: LeaseCalls,
    id: string,
    ttlMs: number,
    deadline: number,
    private readonly callTimeoutMs: number,
    private readonly veto: RenewalVeto | undefined,
    now: () => number,
  ) {
    super(id, ttlMs, deadline, now);
    this.retrySchedule = { initialMs: 20, maxMs: ttlMs / 6 };
    this.answerTimeoutMs = Math.max(50, Math.min(callTimeoutMs, ttlMs / 6));
  }

  /**
   * Grants a lease (one etcd call) and starts keeping it alive from this thread. Its first
   * deadline counts from when the grant was sent. `now`: the monotonic clock (ms).
   */
  static async grant(
    etcd: LeaseCalls,
    ttlSeconds: number,
    callTimeoutMs: number,
    now: () => number = monotonicNow,
  ): Promise<MemberLease> {
    const sentAt = now();
    const granted = await etcd.leaseClient.leaseGrant({ TTL: ttlSeconds });
    const ttlMs = Number(granted.TTL) * 1000;
    return MemberLease.keep(etcd, granted.ID, ttlMs, sentAt + ttlMs, callTimeoutMs, undefined, now);
  }

  /**
   * Starts keeping alive a lease granted elsewhere, known to live until `deadline` (monotonic
   * ms). `veto`, if given, is asked before each keep-alive: while it names a reason, none is
   * sent and the lease runs out. `now`: the monotonic clock (ms) that deadlines are on.
   */
  static keep(
    etcd: LeaseCalls,
    id: string,
    ttlMs: number,
    deadline: number,
    callTimeoutMs: number,
    veto?: RenewalVeto,
    now: () => number = monotonicNow,
  ): MemberLease {
    const lease = new MemberLease(etcd, id, ttlMs, deadline, callTimeoutMs, veto, now);
    lease.timer = setInterval(() => lease.keepAlive(), Math.max(100, lease.ttlMs / 3));
    lease.timer.unref();
    return lease;
  }

  get keeper(): 'main' {
    return 'main';
  }

  /** Sends one keep-alive now; the answer arrives as a `renewed` event. */
  keepAlive(): void {
    if (this.state !== 'alive') return;
    const vetoed = this.veto?.();
    if (vetoed !== undefined) {
      if (this.vetoed === undefined) this.emit('keepAliveFailed', new Error(vetoed));
      this.vetoed = vetoed;
      return;
    }
    this.vetoed = undefined;
    const channel = this.channel;
    if (!channel) {
      this.opening ??= this.openStream().finally(() => (this.opening = undefined));
      return;
    }
    channel.pending.push(this.now());
    channel.stream.write({ ID: this.id });
    if (!this.answerTimer) this.armAnswerTimer();
  }

  private armAnswerTimer(): void {
    this.answerTimer = setTimeout(() => this.onAnswerTimeout(), this.answerTimeoutMs);
    this.answerTimer.unref();
  }

  /** The oldest keep-alive of the current stream went unanswered: try a new stream now. */
  private onAnswerTimeout(): void {
    this.answerTimer = undefined;
    const channel = this.channel;
    const oldest = channel?.pending[0];
    if (!channel || oldest === undefined || this.state !== 'alive') return;
    this.channel = undefined;
    setTimeout(() => closeQuietly(channel.stream), this.callTimeoutMs).unref();
    const waited = Math.round(this.now() - oldest);
    this.emit('keepAliveFailed', new Error(`keep-alive unanswered for ${waited} ms`));
    this.keepAlive();
  }

  private async openStream(): Promise<void> {
    try {
      const stream = await this.etcd.leaseClient.leaseKeepAlive();
      if (this.state !== 'alive') {
        closeQuietly(stream);
        return;
      }
      const channel: Channel = { stream, pending: [] };
      stream.on('data', (res) => this.onAnswer(channel, res));
      stream.on('error', (error) => this.failStream(error, channel));
      stream.on('end', () => this.failStream(new Error('keep-alive stream ended'), channel));
      this.channel = channel;
      this.keepAlive();
    } catch (error) {
      this.emit('keepAliveFailed', asError(error));
      this.retrySoon();
    }
  }

  /**
   * A stream failed (its etcd member went away, was removed, refused us): open another and
   * send again soon — 20 ms, doubling up to TTL/6 — rather than at the next TTL/3 tick. Each
   * new stream may land on another endpoint, so a dead one costs milliseconds, not the lease.
   */
  private retrySoon(): void {
    if (this.retryTimer || this.state !== 'alive') return;
    const delayMs = backoffDelayMs(this.retrySchedule, this.retries++);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.keepAlive();
    }, delayMs);
    this.retryTimer.unref();
  }

  /** An answer on any stream, current or replaced, renews from when its keep-alive was sent. */
  private onAnswer(channel: Channel, res: Pick<ILeaseKeepAliveResponse, 'TTL'>): void {
    const sentAt = channel.pending.shift();
    if (sentAt === undefined || this.state !== 'alive') return;
    if (channel === this.channel) {
      clearTimeout(this.answerTimer);
      this.answerTimer = undefined;
      if (channel.pending.length > 0) this.armAnswerTimer();
    } else {
      const roundTripMs = this.now() - sentAt;
      this.answerTimeoutMs = Math.min(
        this.callTimeoutMs,
        Math.max(this.answerTimeoutMs, 2 * roundTripMs),
      );
    }
    if (Number(res.TTL) <= 0) {
      this.markLost('etcd reports the lease expired');
      return;
    }
    const answeredAt = this.now();
    const timeLeftMs = Math.max(0, this.deadline - answeredAt);
    this.deadline = Math.max(this.deadline, sentAt + Number(res.TTL) * 1000);
    this.retries = 0;
    this.emit('renewed', this.deadline, timeLeftMs, answeredAt);
  }

  private failStream(error: Error, which: Channel): void {
    if (which !== this.channel) return;
    this.dropStream();
    if (this.state === 'alive') {
      this.emit('keepAliveFailed', error);
      this.retrySoon();
    }
  }

  private dropStream(): void {
    const channel = this.channel;
    this.channel = undefined;
    clearTimeout(this.answerTimer);
    this.answerTimer = undefined;
    if (channel) closeQuietly(channel.stream);
  }

  private markLost(reason: string): void {
    if (this.state !== 'alive') return;
    this.state = 'lost';
    this.stop();
    this.emit('lost', reason);
  }

  private stop(): void {
    clearInterval(this.timer);
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.dropStream();
  }

  async revoke(): Promise<void> {
    if (this.state === 'revoked') return;
    this.state = 'revoked';
    this.stop();
    await this.etcd.leaseClient.leaseRevoke({ ID: this.id });
  }

  abandon(): void {
    if (this.state === 'alive') this.state = 'lost';
    this.stop();
  }
}

function closeQuietly(stream: KeepAliveStream): void {
  stream.on('error', () => undefined);
  stream.end();
}
