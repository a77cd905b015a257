/**
 * Forwarding from a follower to the leader: a client's request on the member link to the
 * leader (memberLink.ts), or by HTTP over keep-alive connections (memberConnections.ts) to a
 * leader that takes no link, and for a forwarded request's next hop.
 *
 * What may be retried: a refused connection, or an answer "not leader" (421) — in both cases
 * the leader certainly did not execute the request. Anything after the request may have
 * executed (a reset, a timeout) is never retried: the client gets a 502 or 504 that says so.
 *
 * A forward costs what a proxy hop costs: the client's body goes on as the bytes it came as,
 * and the leader's answer comes back as bytes, relayed to the client unchanged; it is parsed
 * only to act on a 421 and, by HTTP (where a proxy or another server may answer), to check
 * it is JSON.
 */
import { PoolError } from '../errors.js';
import { memberRoute } from '../membership/identity.js';
import { BATCH_CONTENT_TYPE } from './batchFrames.js';
import { ForwardBatches } from './forwardBatch.js';
import type { HttpAnswer } from './httpAnswer.js';
import { MemberConnections, type MemberOrigin, type PendingExchange } from './memberConnections.js';
import { LinkRefusedError, MemberLinks } from './memberLink.js';
import {
  relayable,
  relayableLinked,
  requestBody,
  type ForwardRequest,
  type ForwardTarget,
  type UpstreamAnswer,
} from './upstream.js';

export type { ForwardRequest, ForwardTarget, UpstreamAnswer } from './upstream.js';

export const HOPS_HEADER = 'x-pool-hops';
export const TERM_HEADER = 'x-pool-term';
export const VIA_HEADER = 'x-pool-via';
/** Carries FORWARD_TOKEN, the secret shared by the members of a deployment. */
export const TOKEN_HEADER = 'x-pool-token';

/**
 * No connection to the leader could be made (refused, unreachable, timed out while
 * connecting): the request was never sent, so it may be retried. Its code says so:
 * `LEADER_UNREACHABLE`, retryable, not `UPSTREAM_FAILED` ("may have executed"). This is one
 * attempt; the router answers with a LeaderUnreachableError once its wait is over.
 */
export class UpstreamUnreachableError extends PoolError {
  declare readonly code: 'LEADER_UNREACHABLE';
  /** Why, in a word where there is one: ECONNREFUSED, ENOTFOUND, a timeout. */
  readonly reason: string;

  constructor(target: ForwardTarget, cause: unknown) {
    const reason = describeCause(cause);
    super(
      'LEADER_UNREACHABLE',
      `leader ${target.id} at ${target.url} could not be reached (${reason})`,
      { leader: target.id, url: target.url, reason },
      { cause },
    );
    this.name = 'UpstreamUnreachableError';
    this.reason = reason;
  }
}

function describeCause(cause: unknown): string {
  if (cause instanceof PoolError && cause.code === 'UPSTREAM_TIMEOUT') return 'connect timed out';
  const code = (cause as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code === 'string') return code;
  return cause instanceof Error ? cause.message : String(cause);
}

const MAX_ANSWER_BYTES = 1024 * 1024;

/** Members' URLs as parsed once: their connections' origin and the path of their work route. */
interface ParsedTarget {
  origin: MemberOrigin;
  /** The base path of the member's routes, with a trailing slash. */
  basePath: string;
}

/** Parsed member URLs kept; a pool has a handful, a bound keeps a misconfiguration small. */
const MAX_PARSED_TARGETS = 1024;

export class Forwarder {
  private readonly connections = new MemberConnections();
  private readonly links: MemberLinks;
  private readonly batches = new ForwardBatches({
    one: (target, request, abandon) => this.forwardOne(target, request, abandon),
    batch: (target, request, body, items, abandon) =>
      this.exchange(
        target,
        {
          path: 'work-batch',
          contentType: BATCH_CONTENT_TYPE,
          maxAnswerBytes: MAX_ANSWER_BYTES * items,
        },
        request,
        body,
        abandon,
      ),
  });
  private readonly targets = new Map<string, ParsedTarget>();
  /** The token's header line, or nothing. */
  private readonly tokenLine: string;

  /**
   * @param timeoutMs how long one forward may take in all, connecting included (ms).
   * @param token FORWARD_TOKEN, sent with every forward; printable ASCII (a header value).
   * @param onLinks called with the number of member links open whenever it changes.
   */
  constructor(
    private readonly timeoutMs: number,
    token?: string,
    onLinks?: (open: number) => void,
  ) {
    if (token !== undefined && !HEADER_VALUE.test(token)) {
      throw new Error('the forward token must be printable ASCII: it is sent as a header value');
    }
    this.tokenLine = token === undefined ? '' : `${TOKEN_HEADER}: ${token}\r\n`;
    this.links = new MemberLinks(this.tokenLine, MAX_ANSWER_BYTES, onLinks);
  }

  /**
   * Sends `request` to the leader `target` and resolves with its answer, within the forward
   * timeout. Rejects with UpstreamUnreachableError when nothing was sent (retryable),
   * NotLeaderError on a 421, UPSTREAM_TIMEOUT past the timeout, UPSTREAM_FAILED when the
   * request may have executed and no usable answer came. `abandon` aborts the forward; the
   * answer then is an ambiguous UPSTREAM_FAILED. A client's request (no hop yet) may travel
   * in a batch with others to the same leader when forwards to it are already under way
   * (forwardBatch.ts); its answer and failures are the same.
   */
  forward(
    target: ForwardTarget,
    request: ForwardRequest,
    abandon?: AbortSignal,
  ): Promise<UpstreamAnswer> {
    // A client's request goes on the link to the leader (memberLink.ts), if it takes one.
    const { origin, basePath } = this.parsed(target.url);
    const linked =
      request.hops === 0 && request.via.length === 1
        ? this.links.send(origin, basePath, {
            term: String(target.term),
            pool: request.pool,
            via: request.via[0]!,
            body: requestBody(request),
          })
        : undefined;
    if (linked === undefined) return this.forwardByHttp(target, request, abandon);
    return this.answerOf(target, linked, abandon).then(
      (answer) => relayableLinked(target, answer),
      (error: unknown) => {
        // The leader took no link: nothing was sent; by HTTP, as to any member that takes none.
        if (error instanceof LinkRefusedError) return this.forwardByHttp(target, request, abandon);
        throw error;
      },
    );
  }

  /** `forward` by HTTP: alone, or in a batch with others. */
  private forwardByHttp(
    target: ForwardTarget,
    request: ForwardRequest,
    abandon: AbortSignal | undefined,
  ): Promise<UpstreamAnswer> {
    if (request.hops > 0 || this.batches.refusedBy(target.url)) {
      return this.forwardOne(target, request, abandon);
    }
    return this.batches.submit(target, request, abandon);
  }

  /**
   * Keeps a connection open to each member at `urls` (the leader, the member next in line),
   * so that the first forward after a handover does not wait for a connect. Never blocks.
   */
  keepWarm(urls: readonly string[]): void {
    const members = urls.map((url) => this.parsed(url));
    this.connections.keepWarm(members.map((member) => member.origin));
    this.links.keepWarm(members);
  }

  /** Closes every connection and link to other members; forwards under way fail. */
  close(): void {
    this.connections.close();
    this.links.close();
  }

  /** One request, one exchange: `forward` without batching. */
  private async forwardOne(
    target: ForwardTarget,
    request: ForwardRequest,
    abandon: AbortSignal | undefined,
  ): Promise<UpstreamAnswer> {
    const body = requestBody(request);
    const route = {
      path: 'work',
      contentType: 'application/json',
      maxAnswerBytes: MAX_ANSWER_BYTES,
    };
    return relayable(target, await this.exchange(target, route, request, body, abandon));
  }

  /**
   * Sends `body` to `route` of `target` with the forwarding headers of `request`, within the
   * forward timeout, and returns the answer, whatever its status; rejects as `forward` does.
   */
  private async exchange(
    target: ForwardTarget,
    route: MemberRoute,
    request: Pick<ForwardRequest, 'pool' | 'hops' | 'via'>,
    body: Buffer,
    abandon: AbortSignal | undefined,
  ): Promise<HttpAnswer> {
    const { origin, basePath } = this.parsed(target.url);
    const head =
      `POST ${basePath}pools/${request.pool}/${route.path} HTTP/1.1\r\n` +
      `Host: ${origin.authority}\r\n` +
      `Content-Type: ${route.contentType}\r\n` +
      `Content-Length: ${body.length}\r\n` +
      `${HOPS_HEADER}: ${request.hops + 1}\r\n` +
      `${TERM_HEADER}: ${target.term}\r\n` +
      `${VIA_HEADER}: ${request.via.join(',')}\r\n` +
      `${this.tokenLine}\r\n`;
    const headBytes = Buffer.byteLength(head, 'latin1');
    const bytes = Buffer.allocUnsafe(headBytes + body.length);
    bytes.write(head, 0, 'latin1');
    body.copy(bytes, headBytes);
    return this.answerOf(
      target,
      this.connections.exchange(origin, bytes, route.maxAnswerBytes),
      abandon,
    );
  }

  /**
   * The answer of `exchange` — on a connection or a link — within the forward timeout;
   * rejects as `forward` does (a LinkRefusedError as it is: nothing was sent).
   */
  private async answerOf(
    target: ForwardTarget,
    exchange: PendingExchange,
    abandon: AbortSignal | undefined,
  ): Promise<HttpAnswer> {
    // The forward's own reasons to give up: answered as they are, not as a failed exchange.
    let givenUp: PoolError | undefined;
    const giveUp = (reason: PoolError) => exchange.cancel((givenUp = reason));
    const timer = setTimeout(() => {
      giveUp(
        new PoolError(
          'UPSTREAM_TIMEOUT',
          `leader ${target.id} did not answer within ${this.timeoutMs} ms`,
          { leader: target.id },
        ),
      );
    }, this.timeoutMs);
    const onAbandon = () =>
      giveUp(
        new PoolError(
          'UPSTREAM_FAILED',
          `leader ${target.id} was replaced while the request was with it; it may or may not have executed`,
          { leader: target.id },
        ),
      );
    abandon?.addEventListener('abort', onAbandon, { once: true });
    const outcome = await exchange.outcome;
    clearTimeout(timer);
    abandon?.removeEventListener('abort', onAbandon);
    const { answer } = outcome;
    if (answer !== undefined) return answer;
    const { failure, sent } = outcome;
    if (failure instanceof LinkRefusedError) throw failure;
    if (!sent) throw new UpstreamUnreachableError(target, failure);
    if (failure === givenUp) throw failure;
    throw ambiguous(target, failure);
  }

  private parsed(url: string): ParsedTarget {
    let parsed = this.targets.get(url);
    if (parsed === undefined) {
      const base = memberRoute(url, '');
      const tls = base.protocol === 'https:';
      parsed = {
        origin: {
          authority: base.host,
          // An IPv6 literal comes bracketed in a URL, bare to connect.
          host: base.hostname.replace(/^\[(.*)\]$/, '$1'),
          port: Number(base.port || (tls ? 443 : 80)),
          tls,
        },
        basePath: base.pathname,
      };
      if (this.targets.size >= MAX_PARSED_TARGETS) this.targets.clear();
      this.targets.set(url, parsed);
    }
    return parsed;
  }
}

/** Where an exchange goes on the leader, what it carries, and how large an answer it takes. */
interface MemberRoute {
  path: string;
  contentType: string;
  maxAnswerBytes: number;
}

/** A header value Node's client would send: visible ASCII, inner spaces and tabs. */
const HEADER_VALUE = /^[\x21-\x7e]([\x20-\x7e\t]*[\x21-\x7e])?$/;

function ambiguous(target: ForwardTarget, error: unknown): PoolError {
  const reason =
    (error as NodeJS.ErrnoException).code ??
    (error instanceof Error ? error.message : String(error));
  return new PoolError(
    'UPSTREAM_FAILED',
    `forwarding to leader ${target.id} failed after the request was sent (${reason}); it may or may not have executed`,
    { leader: target.id },
    { cause: error },
  );
}
