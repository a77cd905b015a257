/**
 * The leader's side of member links (work/memberLink.ts has the follower's): a member that
 * forwards here may upgrade one connection (`GET /member-link`, `Upgrade:
 * service-pool-leader-link`) and send its forwards over it as frames (work/linkFrames.ts),
 * many at once; each is served as a forward by HTTP is (WorkServer.serveLinked) and answered
 * in a frame as soon as it is done, in whatever order. Two HTTP exchanges per forward — the
 * follower's request head and the leader's answer head, parsed and written — become two
 * frame headers, and the answers finished in one turn of the event loop leave in one write.
 *
 * Opening a link checks what a forward by HTTP checks per request: the shared forward token
 * (401 otherwise) — the link is the member's for as long as it stays open. Anything that is
 * not frames closes it. A draining member refuses new links (503) and tells the open ones it
 * is going away (`goAway`): it still answers every forward it has received or receives, and
 * the follower sends no more there; `close` ends the links still open, when nothing is in
 * flight or shutdown's bound is up.
 *
 * A request that asks to upgrade to anything else (`Upgrade: h2c` from `curl --http2`) is
 * served as a plain request, as it would be without this.
 */
import http from 'node:http';
import type net from 'node:net';
import type { Logger } from 'pino';
import { PoolError } from '../errors.js';
import type { PoolMetrics } from '../metrics/metrics.js';
import { LazyAbort } from '../util/abortable.js';
import { TOKEN_HEADER } from '../work/forwarder.js';
import { turnWrites } from '../work/turnWrites.js';
import {
  encodeAnswer,
  forwardReader,
  GOING_AWAY,
  LINK_PATH,
  LINK_PROTOCOL,
  type ForwardFrame,
} from '../work/linkFrames.js';
import { secretMatches } from './auth.js';
import { errorAnswer, jsonReply, sendError, type Reply } from './errors.js';
import type { PoolRoutes } from './poolAddress.js';
import { MAX_BODY_BYTES } from './workRequest.js';
import type { WorkServer } from './workRoutes.js';

export interface LinkServerOptions {
  pools: readonly PoolRoutes[];
  work: WorkServer;
  metrics: PoolMetrics;
  logger: Logger;
  /** When set, a link must be opened with it (x-pool-token) or gets 401. */
  forwardToken?: string | undefined;
  /** Aborts every wait for a leader with its reason (HttpAppOptions.stopHolding). */
  stopHolding?: AbortSignal | undefined;
  /** Counts each forward in flight until answered, as the server's requests are (inFlight.ts). */
  track?: (() => () => void) | undefined;
}

/** The answer to a request to upgrade to a link, and the head that switches protocols. */
const SWITCHING =
  'HTTP/1.1 101 Switching Protocols\r\n' +
  `Upgrade: ${LINK_PROTOCOL}\r\n` +
  'Connection: Upgrade\r\n\r\n';

/** How often a quiet link is probed by TCP (ms): a peer gone without a word is found out. */
const KEEP_ALIVE_PROBE_MS = 15_000;

export class LinkServer {
  private readonly links = new Set<LeaderLink>();
  private readonly pools: ReadonlyMap<string, PoolRoutes>;
  private goingAway = false;
  private allClosed: (() => void) | undefined;

  constructor(private readonly options: LinkServerOptions) {
    this.pools = new Map(options.pools.map((pool) => [pool.election.pool, pool]));
    this.counted();
  }

  /**
   * The server's `upgrade` listener: opens a link, refuses one (401, 404, 503 — answered as
   * JSON, the connection closed), or serves a request that asks for another protocol as a
   * plain one on `server`. Never blocks.
   */
  accept(server: http.Server, req: http.IncomingMessage, socket: net.Socket, head: Buffer): void {
    // Node took its own error listener off the socket with the upgrade: without one, a client
    // that resets the connection would end the process.
    socket.on('error', () => socket.destroy());
    if (req.headers.upgrade?.toLowerCase() !== LINK_PROTOCOL) {
      servePlainly(server, req, socket, head);
      return;
    }
    const refusal = this.refusal(req);
    if (refusal) {
      answerAndClose(req, socket, refusal);
      return;
    }
    socket.setTimeout(0);
    socket.setNoDelay(true);
    socket.setKeepAlive(true, KEEP_ALIVE_PROBE_MS);
    socket.write(SWITCHING);
    const link = new LeaderLink(socket, this.pools, this.options, () => {
      this.links.delete(link);
      this.counted();
      if (this.links.size === 0) this.allClosed?.();
    });
    this.links.add(link);
    this.counted();
    link.read(head);
  }

  /** The links open now. */
  get size(): number {
    return this.links.size;
  }

  /**
   * Resolves once every link has closed — after `goAway`, each follower ends its side as soon
   * as it has its answers — or after `withinMs`, whichever comes first. Never rejects.
   */
  closed(withinMs: number): Promise<void> {
    if (this.links.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, withinMs);
      this.allClosed = () => {
        clearTimeout(timer);
        this.allClosed = undefined;
        resolve();
      };
    });
  }

  /** Tells every open link this member is going away; new links are refused. Idempotent. */
  goAway(): void {
    this.goingAway = true;
    for (const link of this.links) link.goAway();
  }

  /** Closes every link now; forwards still with this member go unanswered. */
  close(): void {
    this.goingAway = true;
    for (const link of this.links) link.destroy();
  }

  /** The links open now, in service_pool_member_links{direction="in"}. */
  private counted(): void {
    this.options.metrics.memberLinks.set({ direction: 'in' }, this.links.size);
  }

  /** Why a link may not open here, or undefined if it may. */
  private refusal(req: http.IncomingMessage): PoolError | undefined {
    if (req.method !== 'GET' || req.url !== LINK_PATH) {
      return new PoolError('NOT_FOUND', `member links open with GET ${LINK_PATH}`);
    }
    const token = this.options.forwardToken;
    if (token !== undefined && !secretMatches(req.headers[TOKEN_HEADER] as string, token)) {
      this.options.metrics.forwardsRefused.inc({ pool: this.options.pools[0]!.election.pool });
      return new PoolError(
        'UNAUTHORIZED',
        `a link between members must carry the shared token (${TOKEN_HEADER})`,
      );
    }
    if (this.goingAway) {
      return new PoolError('SHUTTING_DOWN', 'this member is shutting down: forward by HTTP');
    }
    return undefined;
  }
}

/** One link a follower opened here. */
class LeaderLink {
  private readonly reader = forwardReader(MAX_BODY_BYTES);
  /** The waits of its forwards in flight: aborted when it closes (nobody left to answer). */
  private readonly waits = new Set<LazyAbort>();
  private closed = false;
  private peerEnded = false;
  /** Answers finished in one turn of the event loop leave in one write. */
  private readonly write: (bytes: Buffer) => void;

  constructor(
    private readonly socket: net.Socket,
    private readonly pools: ReadonlyMap<string, PoolRoutes>,
    private readonly options: LinkServerOptions,
    onClosed: () => void,
  ) {
    this.write = turnWrites(socket);
    socket.on('data', (chunk: Buffer) => this.read(chunk));
    // The follower ended its side (it was told this member is going away, or it no longer
    // forwards here): this side ends once its forwards are answered.
    socket.on('end', () => {
      this.peerEnded = true;
      this.endIfDone();
    });
    socket.on('close', () => {
      this.closed = true;
      for (const wait of this.waits) wait.abort();
      onClosed();
    });
  }

  read(chunk: Buffer): void {
    if (chunk.length === 0) return;
    let frames: ForwardFrame[];
    try {
      frames = this.reader.push(chunk);
    } catch (error) {
      this.options.logger.warn(
        { err: error, peer: this.socket.remoteAddress },
        'closed a member link that sent something other than frames',
      );
      this.destroy();
      return;
    }
    for (const frame of frames) void this.serve(frame);
  }

  goAway(): void {
    if (!this.closed) this.write(GOING_AWAY);
  }

  destroy(): void {
    this.socket.destroy();
  }

  private async serve(frame: ForwardFrame): Promise<void> {
    const pool = this.pools.get(frame.pool);
    const done = this.options.track?.();
    const wait = new LazyAbort(this.options.stopHolding);
    this.waits.add(wait);
    try {
      const reply = pool
        ? await this.options.work.serveLinked(pool, frame, wait, () => this.closed)
        : jsonReply(errorAnswer(new PoolError('NOT_FOUND', `no pool ${frame.pool} here`)));
      if (reply !== undefined && !this.closed) this.answer(frame.id, reply);
    } finally {
      this.waits.delete(wait);
      wait.dispose();
      done?.();
      this.endIfDone();
    }
  }

  private endIfDone(): void {
    if (this.peerEnded && this.waits.size === 0) this.socket.end();
  }

  private answer(id: number, reply: Reply): void {
    const bytes = typeof reply.bytes === 'string' ? Buffer.from(reply.bytes) : reply.bytes;
    this.write(encodeAnswer(id, reply.status, bytes));
  }
}

/** Answers a refused link with `error` as JSON and closes the connection. */
function answerAndClose(req: http.IncomingMessage, socket: net.Socket, error: PoolError): void {
  sendError(lastResponse(req, socket), error);
}

/** The response to `req`, the last on `socket`: it closes once the answer is written. */
function lastResponse(req: http.IncomingMessage, socket: net.Socket): http.ServerResponse {
  const res = new http.ServerResponse(req);
  res.shouldKeepAlive = false;
  res.assignSocket(socket);
  res.once('finish', () => {
    res.detachSocket(socket);
    socket.destroySoon();
  });
  return res;
}

/**
 * Serves a request that asked to upgrade to a protocol this member does not speak as a plain
 * one, on a connection that closes after its answer: Node has ended the request it parsed
 * and detached its parser, so a copy of its head takes the body, if it declares a length, off
 * the connection. A chunked body is refused (400).
 */
function servePlainly(
  server: http.Server,
  req: http.IncomingMessage,
  socket: net.Socket,
  head: Buffer,
): void {
  if (req.headers['transfer-encoding'] !== undefined) {
    answerAndClose(
      req,
      socket,
      new PoolError('BAD_REQUEST', 'a chunked body with Upgrade: send it without Upgrade'),
    );
    return;
  }
  const plain = new http.IncomingMessage(socket);
  plain.httpVersionMajor = req.httpVersionMajor;
  plain.httpVersionMinor = req.httpVersionMinor;
  plain.httpVersion = req.httpVersion;
  plain.method = req.method;
  plain.url = req.url;
  plain.rawHeaders = req.rawHeaders;
  plain.headers = req.headers;
  let remaining = Number(req.headers['content-length'] ?? 0) || 0;
  const take = (chunk: Buffer) => {
    const part = chunk.subarray(0, remaining);
    remaining -= part.length;
    if (part.length > 0) plain.push(part);
    if (remaining > 0) return;
    socket.off('data', take);
    plain.complete = true;
    plain.push(null);
  };
  take(head);
  if (remaining > 0) socket.on('data', take);
  server.emit('request', plain, lastResponse(plain, socket));
}
