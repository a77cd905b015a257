/**
 * The follower's side of member links (http/linkServer.ts has the leader's): one upgraded
 * connection to each member this one forwards to, carrying every client's forward to it as a
 * frame (linkFrames.ts) — as many at once as there are, each answered by id in whatever order
 * the leader finishes — instead of one HTTP exchange per forward on a connection of its own.
 * Forwards written in one turn of the event loop leave in one write, so under load a link
 * coalesces them as a batch would (forwardBatch.ts), without waiting for the exchange before.
 *
 * What an outcome says about a forward, as for an exchange by HTTP (memberConnections.ts):
 * `sent` is false until the link is open and the forward written; a link that fails to open
 * sent nothing (retryable), one that closes with a forward written may have executed it
 * (ambiguous). Cancelling a forward (its timeout, its leader superseded) leaves the link open
 * for the others; its answer, if it comes, is dropped.
 *
 * A member that answers the upgrade with anything but 101 takes no link (an older version, a
 * member embedded in another app, a proxy between members, a refused token, a member shutting
 * down): the forwards waiting for that link fail with LinkRefusedError, nothing sent, and go by
 * HTTP; so do later ones, for LINK_RETRY_MS. So does a member that has not answered the upgrade
 * within LINK_OPEN_TIMEOUT_MS. A member that says it is going away (it drains)
 * answers what it has; new forwards to it go by HTTP, for as long.
 */
import type net from 'node:net';
import { PoolError } from '../errors.js';
import { monotonicNow } from '../util/time.js';
import type { HttpAnswer } from './httpAnswer.js';
import { turnWrites } from './turnWrites.js';
import {
  answerReader,
  encodeForward,
  GOING_AWAY_ID,
  LINK_PATH,
  LINK_PROTOCOL,
  MAX_FRAME_ID,
  type AnswerFrame,
  type ForwardFrame,
} from './linkFrames.js';
import {
  connectTo,
  type ExchangeOutcome,
  type MemberOrigin,
  type PendingExchange,
} from './memberConnections.js';

/** How long (ms) a member that took no link, or went away, gets forwards by HTTP only. */
export const LINK_RETRY_MS = 10_000;
/** A link with nothing in flight closes after this (ms), unless its member is kept warm. */
const IDLE_TIMEOUT_MS = 30_000;
/** How often links are looked over (ms): idle ones closed, warm ones reopened. */
const SWEEP_INTERVAL_MS = 5_000;
/** The most bytes of the answer to the upgrade: Node's own server sends a few dozen. */
const MAX_UPGRADE_ANSWER_BYTES = 16 * 1024;
/**
 * The largest frame a link reads (bytes): past it the bytes are not answers and the link
 * closes. An answer over the forward's own limit, but within this, fails that forward alone.
 */
const MAX_FRAME_BYTES = 16 * 1024 * 1024;
/**
 * How long (ms) a member may take to answer the upgrade, connecting included: past it, it is
 * taken to take no link (something between holds the request, or it is frozen), and the
 * forwards waiting go by HTTP.
 */
export const LINK_OPEN_TIMEOUT_MS = 1_000;
/** How often a quiet link is probed by TCP (ms): a peer gone without a word is found out. */
const KEEP_ALIVE_PROBE_MS = 15_000;
/** The content type of every answer on a link: the leader writes each as it writes one by HTTP. */
const ANSWER_CONTENT_TYPE = 'application/json; charset=utf-8';

const HEAD_END = Buffer.from('\r\n\r\n');
const SWITCHED = /^HTTP\/1\.1 101[ \r]/;

/** The member answered the upgrade with something else: nothing was sent; go by HTTP. */
export class LinkRefusedError extends PoolError {
  declare readonly code: 'LEADER_UNREACHABLE';
  constructor(authority: string, why: string) {
    super('LEADER_UNREACHABLE', `${authority} took no member link (${why})`);
    this.name = 'LinkRefusedError';
  }
}

/** Why a link takes no more forwards. */
type LinkEnd = 'refused' | 'going away' | 'failed';

/** A forward on a link: its bytes until written, and who waits for its outcome. */
interface LinkForward {
  bytes: Buffer | undefined;
  settle: (outcome: ExchangeOutcome) => void;
}

/** One link to one member. */
class MemberLink {
  private readonly socket: net.Socket;
  private open = false;
  /** Set once the member said it is going away, or the link failed: no new forwards. */
  private ending = false;
  private upgradeAnswer: Buffer | undefined;
  private openTimer: NodeJS.Timeout | undefined;
  private readonly reader: ReturnType<typeof answerReader>;
  private readonly forwards = new Map<number, LinkForward>();
  private nextId = 1;
  /** Forwards written in one turn of the event loop leave in one write. */
  private readonly write: (bytes: Buffer) => void;
  /** When it last had nothing in flight, on the monotonic clock (ms). */
  idleSince = monotonicNow();

  constructor(
    readonly origin: MemberOrigin,
    basePath: string,
    tokenLine: string,
    private readonly maxAnswerBytes: number,
    /** Called once when it takes no more forwards, with why. */
    private readonly onEnding: (link: MemberLink, why: LinkEnd) => void,
  ) {
    this.reader = answerReader(MAX_FRAME_BYTES);
    const { socket, connectEvent } = connectTo(origin);
    this.socket = socket;
    this.write = turnWrites(socket);
    this.openTimer = setTimeout(
      () => this.refuse(`no answer to the upgrade within ${LINK_OPEN_TIMEOUT_MS} ms`),
      LINK_OPEN_TIMEOUT_MS,
    );
    this.openTimer.unref();
    socket.once(connectEvent, () => {
      socket.setKeepAlive(true, KEEP_ALIVE_PROBE_MS);
      socket.write(
        `GET ${basePath}${LINK_PATH.slice(1)} HTTP/1.1\r\n` +
          `Host: ${origin.authority}\r\n` +
          'Connection: Upgrade\r\n' +
          `Upgrade: ${LINK_PROTOCOL}\r\n` +
          `${tokenLine}\r\n`,
      );
    });
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (error) => this.fail(error));
    socket.on('close', () => this.fail(new Error('the member link closed before the answer')));
  }

  /** Forwards in flight on it. */
  get inFlight(): number {
    return this.forwards.size;
  }

  /** Sends `frame` (its id is given here); see MemberLinks.send. */
  send(frame: Omit<ForwardFrame, 'id'>): PendingExchange {
    const id = this.nextId;
    this.nextId = id === MAX_FRAME_ID ? 1 : id + 1;
    const bytes = encodeForward({ id, ...frame });
    let settle!: (outcome: ExchangeOutcome) => void;
    const outcome = new Promise<ExchangeOutcome>((resolve) => (settle = resolve));
    const forward: LinkForward = { bytes, settle };
    this.forwards.set(id, forward);
    if (this.open) this.writeForward(forward);
    return {
      outcome,
      cancel: (reason) => {
        if (this.forwards.get(id) !== forward) return;
        this.forwards.delete(id);
        this.idleIfQuiet();
        settle({ failure: reason, sent: forward.bytes === undefined });
      },
    };
  }

  /** Closes it; forwards in flight fail with `reason`. */
  destroy(reason: unknown): void {
    this.fail(reason);
    this.socket.destroy();
  }

  private writeForward(forward: LinkForward): void {
    const { bytes } = forward;
    forward.bytes = undefined;
    this.write(bytes!);
  }

  private onData(chunk: Buffer): void {
    if (!this.open) {
      chunk = this.readUpgradeAnswer(chunk);
      if (!this.open || chunk.length === 0) return;
    }
    let frames: AnswerFrame[];
    try {
      frames = this.reader.push(chunk);
    } catch (error) {
      this.destroy(error);
      return;
    }
    for (const frame of frames) this.onFrame(frame);
  }

  /** Reads the answer to the upgrade; returns the bytes after it (frames already). */
  private readUpgradeAnswer(chunk: Buffer): Buffer {
    const bytes = this.upgradeAnswer ? Buffer.concat([this.upgradeAnswer, chunk]) : chunk;
    const end = bytes.indexOf(HEAD_END);
    if (end < 0) {
      if (bytes.length > MAX_UPGRADE_ANSWER_BYTES) this.refuse('an answer head that runs on');
      else this.upgradeAnswer = bytes;
      return Buffer.alloc(0);
    }
    this.upgradeAnswer = undefined;
    clearTimeout(this.openTimer);
    const head = bytes.toString('latin1', 0, end);
    const upgrade = /\r\nupgrade:[ \t]*([^\r]*)/i.exec(head)?.[1]?.trim().toLowerCase();
    if (!SWITCHED.test(head) || upgrade !== LINK_PROTOCOL) {
      this.refuse(head.slice(0, head.indexOf('\r\n')) || 'no status line');
      return Buffer.alloc(0);
    }
    this.open = true;
    for (const forward of this.forwards.values()) this.writeForward(forward);
    return bytes.subarray(end + HEAD_END.length);
  }

  private onFrame(frame: AnswerFrame): void {
    if (frame.id === GOING_AWAY_ID) {
      this.end('going away');
      this.idleIfQuiet();
      return;
    }
    const forward = this.forwards.get(frame.id);
    // A forward given up (timed out, abandoned): its answer is nobody's.
    if (forward === undefined) return;
    this.forwards.delete(frame.id);
    this.idleIfQuiet();
    if (frame.body.length > this.maxAnswerBytes) {
      // That forward's answer is refused, as by HTTP; the others on the link go on.
      const failure = new PoolError(
        'UPSTREAM_FAILED',
        `${this.origin.authority} answered with over ${this.maxAnswerBytes} bytes; it may or may not have executed`,
      );
      forward.settle({ failure, sent: true });
      return;
    }
    const answer: HttpAnswer = {
      status: frame.status,
      contentType: ANSWER_CONTENT_TYPE,
      body: frame.body,
      keepAlive: true,
    };
    forward.settle({ answer });
  }

  /** The member took no link: the forwards waiting for it go by HTTP. */
  private refuse(why: string): void {
    this.end('refused');
    const refusal = new LinkRefusedError(this.origin.authority, why);
    for (const forward of this.forwards.values()) forward.settle({ failure: refusal, sent: false });
    this.forwards.clear();
    this.socket.destroy();
  }

  /** Takes no new forwards; once quiet, the link closes. */
  private end(why: LinkEnd): void {
    clearTimeout(this.openTimer);
    if (this.ending) return;
    this.ending = true;
    this.onEnding(this, why);
  }

  private idleIfQuiet(): void {
    if (this.forwards.size > 0) return;
    this.idleSince = monotonicNow();
    if (this.ending) this.socket.end();
  }

  private fail(error: unknown): void {
    this.end('failed');
    for (const forward of this.forwards.values()) {
      forward.settle({ failure: error, sent: forward.bytes === undefined });
    }
    this.forwards.clear();
  }
}

/** The links a member keeps to the members it forwards to, one per member. */
export class MemberLinks {
  private readonly links = new Map<string, MemberLink>();
  /** Members that took no link or went away: by HTTP until then (monotonic ms). */
  private readonly byHttpUntil = new Map<string, number>();
  /** The members a link is kept open to (`keepWarm`), by authority, with their base path. */
  private warm = new Map<string, { origin: MemberOrigin; basePath: string }>();
  private sweeper: NodeJS.Timeout | undefined;
  private closed = false;

  /**
   * @param tokenLine the forward token's header line (x-pool-token), or ''.
   * @param maxAnswerBytes the largest answer a forward takes; a larger one fails it, ambiguous.
   * @param onCount called with the number of links (open or opening) now, and whenever it
   *   changes.
   */
  constructor(
    private readonly tokenLine: string,
    private readonly maxAnswerBytes: number,
    private readonly onCount: (links: number) => void = () => undefined,
  ) {
    onCount(0);
  }

  /**
   * Sends `frame` on the link to `origin`, opening one if there is none; undefined if that
   * member takes no link now (send it by HTTP). Never blocks; nothing here times out — the
   * caller bounds the wait and cancels. The outcome's failure is a LinkRefusedError, nothing
   * sent, when the link the forward waited for was refused: send it by HTTP.
   */
  send(
    origin: MemberOrigin,
    basePath: string,
    frame: Omit<ForwardFrame, 'id'>,
  ): PendingExchange | undefined {
    if (this.closed || this.takesNoLink(origin.authority)) return undefined;
    return this.linkTo(origin, basePath).send(frame);
  }

  /**
   * Keeps a link open to each of `members` from now on, so that the first forward to a new
   * leader — in the middle of a handover — finds one open. Never blocks.
   */
  keepWarm(members: readonly { origin: MemberOrigin; basePath: string }[]): void {
    if (this.closed) return;
    this.warm = new Map(members.map((member) => [member.origin.authority, member]));
    this.openWarm();
  }

  /** Closes every link; forwards in flight fail. */
  close(): void {
    this.closed = true;
    clearInterval(this.sweeper);
    // Each one leaves `links` as it ends (`linkTo`).
    for (const link of this.links.values()) link.destroy(new Error('closed'));
  }

  private takesNoLink(authority: string): boolean {
    const until = this.byHttpUntil.get(authority);
    if (until === undefined) return false;
    if (monotonicNow() < until) return true;
    this.byHttpUntil.delete(authority);
    return false;
  }

  private linkTo(origin: MemberOrigin, basePath: string): MemberLink {
    const key = origin.authority;
    let link = this.links.get(key);
    if (link === undefined) {
      link = new MemberLink(
        origin,
        basePath,
        this.tokenLine,
        this.maxAnswerBytes,
        // The one place a link leaves `links`: it takes no forward from then on.
        (ending, why) => {
          if (this.links.get(key) === ending) {
            this.links.delete(key);
            this.onCount(this.links.size);
          }
          // A link that failed (the member is down, the connection reset) is opened again by
          // the next forward; a member that refused one or is going away is asked by HTTP.
          if (why !== 'failed') this.byHttpUntil.set(key, monotonicNow() + LINK_RETRY_MS);
        },
      );
      this.links.set(key, link);
      this.onCount(this.links.size);
      this.sweeper ??= setInterval(() => this.sweep(), SWEEP_INTERVAL_MS).unref();
    }
    return link;
  }

  private openWarm(): void {
    for (const [key, { origin, basePath }] of this.warm) {
      if (!this.links.has(key) && !this.takesNoLink(key)) this.linkTo(origin, basePath);
    }
  }

  /** Closes the links idle for IDLE_TIMEOUT_MS to members not kept warm; reopens warm ones. */
  private sweep(): void {
    const before = monotonicNow() - IDLE_TIMEOUT_MS;
    for (const [key, link] of this.links) {
      if (this.warm.has(key) || link.inFlight > 0 || link.idleSince > before) continue;
      link.destroy(new Error('idle'));
    }
    this.openWarm();
  }
}
