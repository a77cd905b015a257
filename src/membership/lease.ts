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
 * Keep-alives go every TTL/3 on one long-lived stream. A keep-alive unanswered after the call
 * timeout counts as failed and the stream is replaced. A passed deadline does not mean the
 * lease is gone (etcd extends leases when it regains quorum): only etcd answering TTL 0, or a
 * revoke, marks the lease `lost`.
 */
import { EventEmitter } from 'node:events';
import type { Etcd3, IDuplexStream, ILeaseKeepAliveRequest, ILeaseKeepAliveResponse } from 'etcd3';

export interface MemberLeaseEvents {
  renewed: [deadline: number];
  keepAliveFailed: [error: Error];
  lost: [reason: string];
}

export class MemberLease extends EventEmitter<MemberLeaseEvents> {
  private stream: IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse> | undefined;
  private opening: Promise<void> | undefined;
  /** Send times of keep-alives still waiting for an answer, oldest first. */
  private pending: number[] = [];
  private timer: NodeJS.Timeout | undefined;
  private deadline: number;
  private state: 'alive' | 'lost' | 'revoked' = 'alive';

  private constructor(
    private readonly etcd: Etcd3,
    readonly id: string,
    /** The TTL etcd granted, which may be above the one asked for. */
    readonly ttlMs: number,
    sentAt: number,
    private readonly callTimeoutMs: number,
  ) {
    super();
    this.deadline = sentAt + ttlMs;
  }

  /** Grants a lease and starts keeping it alive. */
  static async grant(etcd: Etcd3, ttlSeconds: number, callTimeoutMs: number): Promise<MemberLease> {
    const sentAt = Date.now();
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

  /** Before this time (ms since epoch) etcd cannot have expired the lease. */
  get leaseDeadline(): number {
    return this.deadline;
  }

  get isAlive(): boolean {
    return this.state === 'alive';
  }

  timeLeftMs(now = Date.now()): number {
    return this.state === 'alive' ? Math.max(0, this.deadline - now) : 0;
  }

  /** Sends one keep-alive now; the answer arrives as a `renewed` event. */
  keepAlive(): void {
    if (this.state !== 'alive') return;
    const now = Date.now();
    const oldest = this.pending[0];
    if (oldest !== undefined && now - oldest > this.callTimeoutMs) {
      this.failStream(new Error(`keep-alive unanswered for ${now - oldest} ms`));
    }
    if (!this.stream) {
      this.opening ??= this.openStream().finally(() => (this.opening = undefined));
      return;
    }
    this.pending.push(now);
    this.stream.write({ ID: this.id });
  }

  private async openStream(): Promise<void> {
    try {
      const stream = await this.etcd.leaseClient.leaseKeepAlive();
      if (this.state !== 'alive') {
        stream.end();
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
    if (Number(res.TTL) <= 0) {
      this.markLost('etcd reports the lease expired');
      return;
    }
    this.deadline = Math.max(this.deadline, sentAt + Number(res.TTL) * 1000);
    this.emit('renewed', this.deadline);
  }

  private failStream(error: Error, which = this.stream): void {
    if (which !== this.stream || !which) return;
    this.stream = undefined;
    this.pending = [];
    closeQuietly(which);
    if (this.state === 'alive') this.emit('keepAliveFailed', error);
  }

  private markLost(reason: string): void {
    if (this.state !== 'alive') return;
    this.state = 'lost';
    this.stop();
    this.emit('lost', reason);
  }

  private stop(): void {
    clearInterval(this.timer);
    const stream = this.stream;
    this.stream = undefined;
    this.pending = [];
    if (stream) closeQuietly(stream);
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

function closeQuietly(
  stream: IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse>,
): void {
  stream.on('error', () => undefined);
  stream.end();
}

export function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
