/**
 * The connections a member keeps to the members it forwards to: kept alive between requests,
 * one request at a time on each (no pipelining: an answer lost with its connection never
 * takes another request's fate with it), as many at once as there are forwards in flight
 * (MAX_PENDING_WORK bounds those), at most MAX_IDLE kept open between bursts per member.
 *
 * A request is written as one buffer and its answer read by AnswerReader (httpAnswer.ts):
 * about a third of the CPU of Node's http client per exchange, which is most of what a
 * forward costs the follower.
 *
 * What an exchange's failure says about the request — the forward's retry rule depends on it
 * (forwarder.ts): `sent` is false until the connection is established, so a failure to
 * connect means nothing was sent; on a connection reused from the idle set it is sent at once,
 * and a reset there is ambiguous, as with any keep-alive client.
 */
import net from 'node:net';
import tls from 'node:tls';
import { monotonicNow } from '../util/time.js';
import { AnswerReader, type HttpAnswer } from './httpAnswer.js';

/** Idle connections kept per member; beyond, a connection closes after its answer. */
const MAX_IDLE = 256;
/**
 * Idle connections close on our side after this (ms), before the peer's keepAliveTimeout
 * (65 s on a member) can close them under a request we are about to send.
 */
const IDLE_TIMEOUT_MS = 30_000;
/** How often idle connections are looked over (ms): each closes within this of its timeout. */
const SWEEP_INTERVAL_MS = 5_000;

/** Where a member listens: the origin of its URL. */
export interface MemberOrigin {
  /** `host:port`, the key of its connections and the Host header. */
  authority: string;
  host: string;
  port: number;
  tls: boolean;
}

/**
 * How an exchange ended: the answer, or the failure and whether the request may have reached
 * the member (`sent`).
 */
export type ExchangeOutcome =
  | { answer: HttpAnswer }
  | { answer?: undefined; failure: unknown; sent: boolean };

/** An exchange under way: the caller may give up on it (timeout, abandon) with a reason. */
export interface PendingExchange {
  /** Settles once, never rejects. */
  outcome: Promise<ExchangeOutcome>;
  /** Ends the exchange now: its connection is closed, `outcome` is `reason`. */
  cancel(reason: unknown): void;
}

/** One connection, carrying one exchange at a time. */
class MemberConnection {
  readonly socket: net.Socket;
  /** When it last went idle, on the monotonic clock (ms). */
  idleSince = 0;
  /** Past this (monotonic ms) the member may be closing it: its Keep-Alive timeout, less 1 s. */
  private reusableUntil = Infinity;
  private connected = false;
  /** The socket's event once a request can be written: TLS's handshake done, or TCP's. */
  private readonly connectEvent: 'connect' | 'secureConnect';
  private reader: AnswerReader | undefined;
  private settle: ((outcome: ExchangeOutcome) => void) | undefined;

  constructor(
    origin: MemberOrigin,
    private readonly onIdle: (connection: MemberConnection) => void,
    private readonly onClosed: (connection: MemberConnection) => void,
  ) {
    ({ socket: this.socket, connectEvent: this.connectEvent } = connectTo(origin));
    this.socket.once(this.connectEvent, () => (this.connected = true));
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.socket.on('end', () => this.onEnd());
    this.socket.on('error', (error) => this.fail(error));
    this.socket.on('close', () => {
      this.fail(new Error('the connection closed before the answer'));
      this.onClosed(this);
    });
  }

  /** Whether a request written now certainly reaches the member's socket. */
  get sent(): boolean {
    return this.connected;
  }

  /**
   * Whether an idle connection may take a request: not closed or closing by either side (a
   * member closes its connections when it shuts down — in the middle of a handover), and
   * within the idle time the member announced.
   */
  get reusable(): boolean {
    const { socket } = this;
    return (
      !socket.destroyed &&
      socket.writable &&
      !socket.readableEnded &&
      monotonicNow() < this.reusableUntil
    );
  }

  /** Opened ahead of any request: idle as soon as it is connected. */
  openAhead(): void {
    this.socket.once(this.connectEvent, () => {
      if (this.reader !== undefined) return;
      this.idleSince = monotonicNow();
      this.onIdle(this);
    });
  }

  /** Writes `request` and calls `settle` once with the answer or the failure. */
  exchange(
    request: Buffer,
    maxAnswerBytes: number,
    settle: (outcome: ExchangeOutcome) => void,
  ): void {
    this.reader = new AnswerReader(maxAnswerBytes);
    this.settle = settle;
    this.socket.write(request);
  }

  /** Closes the connection; an exchange under way fails with `reason`. */
  destroy(reason: unknown): void {
    this.fail(reason);
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    if (!this.reader) {
      // Bytes nobody asked for: the connection cannot be trusted with a request.
      this.socket.destroy();
      return;
    }
    let answer: HttpAnswer | undefined;
    try {
      answer = this.reader.push(chunk);
    } catch (error) {
      this.destroy(error);
      return;
    }
    if (answer) this.finish(answer);
  }

  private onEnd(): void {
    if (!this.reader) {
      // The member closed it while idle: not to be written to again.
      this.socket.destroy();
      return;
    }
    try {
      this.finish(this.reader.end());
    } catch (error) {
      this.fail(error);
    }
  }

  private finish(answer: HttpAnswer): void {
    const settle = this.settle!;
    this.reader = undefined;
    this.settle = undefined;
    if (answer.keepAlive && !this.socket.destroyed) {
      this.idleSince = monotonicNow();
      // As Node's own client does: a second early, so that its close never meets our request.
      if (answer.keepAliveMs !== undefined) {
        this.reusableUntil = this.idleSince + Math.max(0, answer.keepAliveMs - 1000);
      }
      this.onIdle(this);
    } else {
      this.socket.destroy();
    }
    settle({ answer });
  }

  private fail(error: unknown): void {
    const settle = this.settle;
    if (!settle) return;
    this.reader = undefined;
    this.settle = undefined;
    settle({ failure: error, sent: this.connected });
  }
}

export class MemberConnections {
  private readonly idle = new Map<string, MemberConnection[]>();
  private readonly open = new Set<MemberConnection>();
  /** The members a connection is kept open to (`keepWarm`), by authority. */
  private warm = new Map<string, MemberOrigin>();
  /** A connection being opened ahead, by authority: one at a time each. */
  private readonly opening = new Map<string, MemberConnection>();
  private closed = false;
  /** Closes connections idle for IDLE_TIMEOUT_MS; runs while any is idle (unref'd). */
  private sweeper: NodeJS.Timeout | undefined;

  /**
   * Sends `request` (head and body, complete) to `origin` on an idle connection or a new one;
   * an answer body over `maxAnswerBytes` fails the exchange.
   * Never blocks; the answer settles when the member answers, the connection fails, or the
   * caller cancels. Nothing here times out: the caller bounds the wait.
   */
  exchange(origin: MemberOrigin, request: Buffer, maxAnswerBytes: number): PendingExchange {
    if (this.closed) throw new Error('the member connections are closed');
    const key = origin.authority;
    // An idle connection, else one being opened ahead (the request waits for its connect
    // there as it would on a new one), else a new one.
    const opening = this.opening.get(key);
    this.opening.delete(key);
    const connection = this.reusableIdle(key) ?? opening ?? this.connect(origin);
    if (opening !== undefined && connection !== opening) this.opening.set(key, opening);
    const outcome = new Promise<ExchangeOutcome>((resolve) =>
      connection.exchange(request, maxAnswerBytes, resolve),
    );
    return { outcome, cancel: (reason) => connection.destroy(reason) };
  }

  /**
   * Keeps one connection open to each of `origins` from now on (and to no other member
   * beyond what its own requests left idle), so that the first request to it — the first
   * forward to a new leader, in the middle of a handover — finds one: connecting costs a
   * few ms then. Like any idle connection it is replaced after IDLE_TIMEOUT_MS; a member that
   * cannot be reached is tried again at each sweep. Never blocks.
   */
  keepWarm(origins: readonly MemberOrigin[]): void {
    if (this.closed) return;
    this.warm = new Map(origins.map((origin) => [origin.authority, origin]));
    this.openAhead();
  }

  /** Closes every connection, idle or busy; an exchange under way fails. */
  close(): void {
    this.closed = true;
    this.warm.clear();
    clearInterval(this.sweeper);
    for (const connection of this.open) connection.destroy(new Error('closed'));
    this.idle.clear();
  }

  /**
   * Closes the connections idle for IDLE_TIMEOUT_MS or more: the oldest are at the bottom of
   * each stack, as the newest idle is used first.
   */
  private sweep(): void {
    const before = monotonicNow() - IDLE_TIMEOUT_MS;
    for (const [key, idle] of this.idle) {
      const stale = idle.findIndex((connection) => connection.idleSince > before);
      const closing = idle.splice(0, stale < 0 ? idle.length : stale);
      for (const connection of closing) connection.destroy(new Error('idle'));
      if (idle.length === 0) this.idle.delete(key);
    }
    this.openAhead();
    if (this.idle.size === 0 && this.warm.size === 0) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }

  /** The newest idle connection to `key` that may take a request; the others are closed. */
  private reusableIdle(key: string): MemberConnection | undefined {
    const idle = this.idle.get(key);
    for (let connection = idle?.pop(); connection; connection = idle?.pop()) {
      if (connection.reusable) return connection;
      connection.destroy(new Error('no longer reusable'));
    }
    return undefined;
  }

  /** Opens a connection to each member kept warm that has none idle and none opening. */
  private openAhead(): void {
    for (const [key, origin] of this.warm) {
      if ((this.idle.get(key)?.length ?? 0) > 0 || this.opening.has(key)) continue;
      const connection = this.connect(origin);
      this.opening.set(key, connection);
      connection.openAhead();
    }
    if (this.warm.size > 0)
      this.sweeper ??= setInterval(() => this.sweep(), SWEEP_INTERVAL_MS).unref();
  }

  private connect(origin: MemberOrigin): MemberConnection {
    const key = origin.authority;
    const connection = new MemberConnection(
      origin,
      (connection) => {
        if (this.opening.get(key) === connection) this.opening.delete(key);
        const idle = this.idle.get(key) ?? [];
        if (this.closed || idle.length >= MAX_IDLE) {
          connection.destroy(new Error('not kept'));
          return;
        }
        idle.push(connection);
        this.idle.set(key, idle);
        this.sweeper ??= setInterval(() => this.sweep(), SWEEP_INTERVAL_MS).unref();
      },
      (connection) => {
        this.open.delete(connection);
        if (this.opening.get(key) === connection) this.opening.delete(key);
        const idle = this.idle.get(key);
        const at = idle?.indexOf(connection) ?? -1;
        if (at >= 0) idle!.splice(at, 1);
      },
    );
    this.open.add(connection);
    return connection;
  }
}

/**
 * A connection to `origin`, being opened (TLS for an https URL), with Nagle's delay off, and
 * the event that says a request can be written on it. Never blocks.
 */
export function connectTo(origin: MemberOrigin): {
  socket: net.Socket;
  connectEvent: 'connect' | 'secureConnect';
} {
  const socket = origin.tls
    ? tls.connect({ host: origin.host, port: origin.port, servername: servername(origin.host) })
    : net.connect({ host: origin.host, port: origin.port });
  socket.setNoDelay(true);
  return { socket, connectEvent: origin.tls ? 'secureConnect' : 'connect' };
}

/** The TLS server name of `host`: none for an IP address, as Node's https client does. */
function servername(host: string): string | undefined {
  return net.isIP(host) === 0 ? host : undefined;
}
