/**
 * Forwarding from a follower to the leader over keep-alive connections.
 *
 * What may be retried: a refused connection, or an answer "not leader" (421) — in both cases
 * the leader certainly did not execute the request. Anything after the request may have
 * executed (a reset, a timeout) is never retried: the client gets a 502 or 504 that says so.
 *
 * A forward costs what a proxy hop costs: the client's body goes on as the bytes it came as,
 * and the leader's answer comes back as bytes, relayed to the client unchanged; it is parsed
 * only to check it is JSON and to act on a 421.
 */
import http from 'node:http';
import https from 'node:https';
import { NotLeaderError, PoolError } from '../errors.js';
import { memberRoute } from '../membership/identity.js';

export const HOPS_HEADER = 'x-pool-hops';
export const TERM_HEADER = 'x-pool-term';
export const VIA_HEADER = 'x-pool-via';
/** Carries FORWARD_TOKEN, the secret shared by the members of a deployment. */
export const TOKEN_HEADER = 'x-pool-token';

export interface ForwardRequest {
  pool: string;
  payload: unknown;
  /** The client's JSON body `{"payload": ...}` as received (UTF-8); absent: built from payload. */
  body?: Buffer | undefined;
  hops: number;
  via: string[];
}

export interface ForwardTarget {
  id: string;
  url: string;
  term: bigint;
}

/** The leader's answer as it came: relayed to the client byte for byte. */
export interface UpstreamAnswer {
  status: number;
  /** Its Content-Type (the leader answers JSON). */
  contentType: string;
  /** Its body: JSON, checked. */
  bytes: Buffer;
}

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

export class Forwarder {
  // Idle sockets close on our side (30 s) before the peer's keepAliveTimeout (65 s) can close
  // them under a request we are about to send.
  private readonly httpAgent = new http.Agent({
    keepAlive: true,
    maxSockets: 256,
    timeout: 30_000,
  });
  private readonly httpsAgent = new https.Agent({
    keepAlive: true,
    maxSockets: 256,
    timeout: 30_000,
  });

  constructor(
    private readonly timeoutMs: number,
    private readonly token?: string,
  ) {}

  /** `abandon` aborts the forward; the answer then is an ambiguous UPSTREAM_FAILED. */
  forward(
    target: ForwardTarget,
    request: ForwardRequest,
    abandon?: AbortSignal,
  ): Promise<UpstreamAnswer> {
    const url = memberRoute(target.url, `pools/${request.pool}/work`);
    const body = request.body ?? Buffer.from(JSON.stringify({ payload: request.payload }));
    const isHttps = url.protocol === 'https:';
    return new Promise<UpstreamAnswer>((resolve, reject) => {
      const req = (isHttps ? https : http).request(url, {
        method: 'POST',
        agent: isHttps ? this.httpsAgent : this.httpAgent,
        headers: {
          'content-type': 'application/json',
          'content-length': body.length,
          [HOPS_HEADER]: String(request.hops + 1),
          [TERM_HEADER]: target.term.toString(),
          [VIA_HEADER]: request.via.join(','),
          ...(this.token ? { [TOKEN_HEADER]: this.token } : {}),
        },
      });
      // Until the socket is connected nothing was sent, so a failure then is safe to retry.
      // A reused keep-alive socket is connected already: a reset on it is ambiguous.
      let sent = false;
      req.on('socket', (socket) => {
        if (socket.connecting) socket.once('connect', () => (sent = true));
        else sent = true;
      });
      const fail = (error: unknown) => {
        clearTimeout(timer);
        if (!sent || neverSent(error)) reject(new UpstreamUnreachableError(target, error));
        else if (error instanceof PoolError) reject(error);
        else reject(ambiguous(target, error));
      };
      const timer = setTimeout(() => {
        req.destroy(
          new PoolError(
            'UPSTREAM_TIMEOUT',
            `leader ${target.id} did not answer within ${this.timeoutMs} ms`,
            {
              leader: target.id,
            },
          ),
        );
      }, this.timeoutMs);
      req.on('error', fail);
      abandon?.addEventListener(
        'abort',
        () =>
          req.destroy(
            new PoolError(
              'UPSTREAM_FAILED',
              `leader ${target.id} was replaced while the request was with it; it may or may not have executed`,
              { leader: target.id },
            ),
          ),
        { once: true },
      );
      req.on('response', (res) => {
        res.on('error', fail);
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_ANSWER_BYTES) req.destroy(new Error('answer too large'));
          else chunks.push(chunk);
        });
        res.on('end', () => {
          clearTimeout(timer);
          const bytes = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
          try {
            JSON.parse(bytes.toString('utf8'));
          } catch {
            reject(
              new PoolError(
                'UPSTREAM_FAILED',
                `leader ${target.id} sent an answer that is not JSON`,
              ),
            );
            return;
          }
          if (res.statusCode === 421) {
            reject(
              new NotLeaderError(`${target.id} is no longer the leader`, { upstream: target.id }),
            );
            return;
          }
          resolve({
            status: res.statusCode ?? 502,
            contentType: res.headers['content-type'] ?? 'application/json',
            bytes,
          });
        });
      });
      req.end(body);
    });
  }

  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }
}

/**
 * Errors that come before any byte can leave: no socket (the process or the system is out of
 * file descriptors, no local port), no route, no address, a refused connect. Whatever the
 * socket's state looked like, the request was not sent: it did not execute.
 */
const NOT_SENT = new Set([
  'EMFILE',
  'ENFILE',
  'EADDRNOTAVAIL',
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);

export function neverSent(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' && NOT_SENT.has(code);
}

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
