/**
 * What a forward carries to the leader and what comes back: the request, the leader it goes
 * to, and the leader's answer as it is relayed to the client (forwarder.ts, forwardBatch.ts).
 */
import { memberAddress, NotLeaderError, PoolError } from '../errors.js';
import type { HttpAnswer } from './httpAnswer.js';

export interface ForwardRequest {
  pool: string;
  payload: unknown;
  /** The client's JSON body `{"payload": ...}` as received (UTF-8); absent: built from payload. */
  body?: Buffer | undefined;
  hops: number;
  via: string[];
}

/** The client's JSON body as it came, or one built from its payload. */
export function requestBody(request: ForwardRequest): Buffer {
  return request.body ?? Buffer.from(JSON.stringify({ payload: request.payload }));
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
  /** Its body: JSON (checked when it came by HTTP; on a link, the leader's own). */
  bytes: Buffer;
}

/**
 * The leader's answer to one request, to be relayed to the client: it must be JSON, and a 421
 * is "not leader" (nothing executed: the router tries again).
 */
export function relayable(target: ForwardTarget, answer: HttpAnswer): UpstreamAnswer {
  let json: unknown;
  try {
    json = JSON.parse(answer.body.toString('utf8'));
  } catch {
    throw new PoolError('UPSTREAM_FAILED', `leader ${target.id} sent an answer that is not JSON`);
  }
  if (answer.status === 421) {
    const successor = memberAddress(
      (json as { error?: { details?: { successor?: unknown } } } | null)?.error?.details?.successor,
    );
    throw new NotLeaderError(`${target.id} is no longer the leader`, {
      upstream: target.id,
      ...(successor ? { successor } : {}),
    });
  }
  return asRelayed(answer);
}

/**
 * `relayable` for an answer off a member link: the leader's own code wrote it as JSON (a link
 * carries nothing else: no proxy or other server answers on it), so only a 421 is read, for
 * the successor it names; any other answer is relayed without being parsed.
 */
export function relayableLinked(target: ForwardTarget, answer: HttpAnswer): UpstreamAnswer {
  return answer.status === 421 ? relayable(target, answer) : asRelayed(answer);
}

function asRelayed(answer: HttpAnswer): UpstreamAnswer {
  return {
    status: answer.status,
    contentType: answer.contentType ?? 'application/json',
    bytes: answer.body,
  };
}
