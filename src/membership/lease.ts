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
 * All times here are monotonic (`performance.now()`): a wall-clock step (NTP) must not move
 * the deadline, or an old leader could outlive its lease.
 *
 * Keep-alives go every TTL/3 on one long-lived stream. One unanswered after
 * min(call timeout, TTL/6) counts as failed: the stream is replaced and the keep-alive sent
 * again at once, so one bad etcd member costs a fraction of the TTL, not a third of it.
 * A passed deadline does not mean the lease is gone (etcd extends leases when it regains
 * quorum): only etcd answering TTL 0, or a revoke, marks the lease `lost`.
 */
import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import type { Etcd3, IDuplexStream, ILeaseKeepAliveRequest, ILeaseKeepAliveResponse } from 'etcd3';

type KeepAliveStream = IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse>;

export interface MemberLeaseEvents {
  renewed: [deadline: number];
  keepAliveFailed: [error: Error];
  lost: [reason: string];
}

/** Milliseconds on the monotonic clock that lease deadlines use. */
export const monotonicNow = (): number => performance.now();

export class MemberLease extends EventEmitter<MemberLeaseEvents> {
  private stream: KeepAliveStream | undefined;
  private opening: Promise<void> | undefined;
  /** Send times of keep-alives still waiting for an answer, oldest first. */
  private pending: number[] = [];
  private timer: NodeJS.Timeout | undefined;
  private answerTimer: NodeJS.Timeout | undefined;
  private deadline: number;
  private state: 'alive' | 'lost' | 'revoked' = 'alive';
  private readonly answerTimeoutMs: number;

  private constructor(
    private readonly etcd: Etcd3,
    readonly id: string,
    /** The TTL etcd granted, which may be above the one asked for. */
    readonly ttlMs: number,
    sentAt: number,
    callTimeoutMs: number,
  ) {
    super();
    this.deadline = sentAt + ttlMs;
    this.answerTimeoutMs = Math.max(50, Math.min(callTimeoutMs, ttlMs / 6));
  }

  /** Grants a lease and starts keeping it alive. */
  static async grant(etcd: Etcd3, ttlSeconds: number, callTimeoutMs: number): Promise<MemberLease> {
    const sentAt = monotonicNow();
    const granted = await etcd.leaseClient.leaseGrant({ TTL: ttlSeconds });
    const lease = new MemberLease(
      etcd,
      granted.ID,
      Number(granted.TTL) * 1000,
      sentAt,
      callTimeoutMs,
    );
    lease.timer = setInterval(() => lease.keepAlive(), Math.max(100, lease.ttlMs / 3));
    lease.timer.unref();
    return lease;
  }

  /** Before this monotonic time (see `monotonicNow`) etcd cannot have expired the lease. */
  get leaseDeadline(): number {
    return this.deadline;
  }

  get isAlive(): boolean {
    return this.state === 'alive';
  }

  timeLeftMs(now = monotonicNow()): number {
    return this.state === 'alive' ? Math.max(0, this.deadline - now) : 0;
  }

  /** Sends one keep-alive now; the answer arrives as a `renewed` event. */
  keepAlive(): void {
    if (this.state !== 'alive') return;
    if (!this.stream) {
      this.opening ??= this.openStream().finally(() => (this.opening = undefined));
      return;
    }
    const sentAt = monotonicNow();
    this.pending.push(sentAt);
    this.stream.write({ ID: this.id });
    if (!this.answerTimer) {
      this.answerTimer = setTimeout(() => this.onAnswerTimeout(), this.answerTimeoutMs);
      this.answerTimer.unref();
    }
  }

  private onAnswerTimeout(): void {
    this.answerTimer = undefined;
    const oldest = this.pending[0];
    if (oldest === undefined || this.state !== 'alive') return;
    this.failStream(
      new Error(`keep-alive unanswered for ${Math.round(monotonicNow() - oldest)} ms`),
    );
    this.keepAlive();
  }

  private async openStream(): Promise<void> {
    try {
      const stream = await this.etcd.leaseClient.leaseKeepAlive();
      if (this.state !== 'alive') {
        closeQuietly(stream);
        return;
      }
      stream.on('data', (res: ILeaseKeepAliveResponse) => {
        if (stream === this.stream) this.onAnswer(res);
      });
      stream.on('error', (error: Error) => this.failStream(error, stream));
      stream.on('end', () => this.failStream(new Error('keep-alive stream ended'), stream));
      this.stream = stream;
      this.keepAlive();
    } catch (error) {
      this.emit('keepAliveFailed', asError(error));
    }
  }

  private onAnswer(res: ILeaseKeepAliveResponse): void {
    const sentAt = this.pending.shift();
    if (sentAt === undefined || this.state !== 'alive') return;
    clearTimeout(this.answerTimer);
    this.answerTimer = undefined;
    if (this.pending.length > 0) {
      this.answerTimer = setTimeout(() => this.onAnswerTimeout(), this.answerTimeoutMs);
      this.answerTimer.unref();
    }
    if (Number(res.TTL) <= 0) {
      this.markLost('etcd reports the lease expired');
      return;
    }
    this.deadline = Math.max(this.deadline, sentAt + Number(res.TTL) * 1000);
    this.emit('renewed', this.deadline);
  }

  private failStream(error: Error, which = this.stream): void {
    if (which !== this.stream || !which) return;
    this.dropStream();
    if (this.state === 'alive') this.emit('keepAliveFailed', error);
  }

  private dropStream(): void {
    const stream = this.stream;
    this.stream = undefined;
    this.pending = [];
    clearTimeout(this.answerTimer);
    this.answerTimer = undefined;
    if (stream) closeQuietly(stream);
  }

  private markLost(reason: string): void {
    if (this.state !== 'alive') return;
    this.state = 'lost';
    this.stop();
    this.emit('lost', reason);
  }

  private stop(): void {
    clearInterval(this.timer);
    this.dropStream();
  }

  /** Revokes the lease: etcd deletes every key bound to it at once. */
  async revoke(): Promise<void> {
    if (this.state === 'revoked') return;
    this.state = 'revoked';
    this.stop();
    await this.etcd.leaseClient.leaseRevoke({ ID: this.id });
  }

  /** Stops keeping the lease alive without revoking it (it expires after its TTL). */
  abandon(): void {
    if (this.state === 'alive') this.state = 'lost';
    this.stop();
  }
}

function closeQuietly(stream: KeepAliveStream): void {
  stream.on('error', () => undefined);
  stream.end();
}

export function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
