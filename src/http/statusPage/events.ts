/**
 * `GET /events`: the status as server-sent events. Each event carries a fresh snapshot as
 * `event: status` (the JSON of `StatusSource.snapshot()`, for any client) followed by
 * `event: view` (the status page's layout, for its script).
 *
 * Timing. A leader change must reach the page within milliseconds, yet one election step can
 * fire a burst of notifications (claim deleted, view changed, claim written). So the first
 * notification after a quiet spell is sent at once and the rest of its burst is coalesced:
 * at most one event per `COALESCE_MS`, and the last state of a burst is always sent. A
 * client that reads slowly gets no more than one event queued: the next is taken once its
 * socket drains. Counters (etcd requests, work calls) move without notifications, so every
 * `REFRESH_MS` a fresh snapshot goes out when they moved; and every `HEARTBEAT_MS` a comment,
 * so that proxies and the member's idle-socket timeout keep a quiet stream open.
 *
 * Shutdown. An event stream never ends by itself, and the member's graceful shutdown waits
 * for every request to finish: `endAll()` ends the open streams and answers later requests
 * 503, so the drain is not held up. The page then shows "reconnecting" and keeps trying.
 */
import type { Response } from 'express';
import { PoolError } from '../../errors.js';
import type { StatusSnapshot, StatusSource } from './status.js';
import { statusView } from './statusView.js';

export const COALESCE_MS = 50;
const REFRESH_MS = 5_000;
const HEARTBEAT_MS = 15_000;
/** How long a browser waits before reconnecting a broken stream. */
export const RETRY_MS = 1_000;

export class EventStreams {
  private readonly open = new Set<EventStream>();
  private ended = false;

  constructor(private readonly source: StatusSource) {}

  /** Serves one `GET /events` until the client goes away or `endAll()`. */
  serve(res: Response): void {
    if (this.ended) {
      throw new PoolError('SHUTTING_DOWN', 'this member is shutting down: ask another member');
    }
    const stream = new EventStream(this.source, res, () => this.open.delete(stream));
    this.open.add(stream);
  }

  /** Ends every open stream and refuses new ones: for graceful shutdown. */
  endAll(): void {
    this.ended = true;
    for (const stream of this.open) stream.end();
  }
}

class EventStream {
  private readonly unsubscribe: () => void;
  private readonly refresher: NodeJS.Timeout;
  private readonly heartbeat: NodeJS.Timeout;
  private closed = false;
  /** A notification came that no event has answered yet. */
  private pending = true;
  /** A snapshot is being taken or written, or the socket has not drained since. */
  private busy = false;
  private delayed: NodeJS.Timeout | undefined;
  private lastEventAt = -Infinity;
  private lastCounters = '';

  constructor(
    private readonly source: StatusSource,
    private readonly res: Response,
    onClose: () => void,
  ) {
    res.status(200).set({
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache, no-transform',
      'X-Accel-Buffering': 'no',
    });
    res.flushHeaders();
    this.res.write(`retry: ${RETRY_MS}\n\n`);
    this.unsubscribe = source.subscribe(() => this.notify());
    this.refresher = setInterval(() => void this.refresh(), REFRESH_MS);
    this.heartbeat = setInterval(() => this.res.write(': heartbeat\n\n'), HEARTBEAT_MS);
    res.once('close', () => {
      this.closed = true;
      this.unsubscribe();
      clearInterval(this.refresher);
      clearInterval(this.heartbeat);
      clearTimeout(this.delayed);
      onClose();
    });
    void this.flush();
  }

  end(): void {
    if (!this.closed) this.res.end();
  }

  /** Sends a snapshot now, or at the end of the current coalescing window. */
  private notify(): void {
    this.pending = true;
    if (this.busy || this.delayed || this.closed) return;
    const wait = this.lastEventAt + COALESCE_MS - performance.now();
    if (wait <= 0) void this.flush();
    else this.delayed = setTimeout(() => void this.flush(), wait);
  }

  private async flush(): Promise<void> {
    this.delayed = undefined;
    if (!this.pending || this.busy || this.closed) return;
    this.pending = false;
    this.busy = true;
    this.lastEventAt = performance.now();
    let snapshot: StatusSnapshot;
    try {
      snapshot = await this.source.snapshot();
    } catch {
      // Nothing to send: end the stream; the browser reconnects and starts afresh.
      this.end();
      return;
    }
    if (this.closed) return;
    this.lastCounters = counters(snapshot);
    // False when the socket's buffer is full: the next event waits for 'drain'.
    const drained = this.res.write(
      `event: status\ndata: ${JSON.stringify(snapshot)}\n\n` +
        `event: view\ndata: ${JSON.stringify(statusView(snapshot))}\n\n`,
    );
    if (drained) this.idle();
    else this.res.once('drain', () => this.idle());
  }

  private idle(): void {
    this.busy = false;
    if (this.pending) this.notify();
  }

  /** Sends a snapshot when the counters moved since the last one sent. */
  private async refresh(): Promise<void> {
    if (this.busy || this.closed) return;
    const snapshot = await this.source.snapshot().catch(() => undefined);
    if (snapshot && counters(snapshot) !== this.lastCounters) this.notify();
  }
}

function counters(snapshot: StatusSnapshot): string {
  return JSON.stringify([snapshot.etcdRequests, snapshot.workCalls, snapshot.workEtcdRequests]);
}
