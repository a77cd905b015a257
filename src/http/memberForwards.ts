/**
 * The lean way in for forwards between members: POST /pools/:pool/work carrying the
 * forwarding headers, answered on node:http before Express sees it, so that a forward costs
 * the leader what a proxy hop costs and not a second pass through the framework.
 *
 * Only the request a member sends is taken here: POST to exactly /pools/<a pool of this
 * member>/work, with x-pool-hops, declared `application/json` (UTF-8), not compressed, with a
 * Content-Length within the body limit. Anything else — a query string, another charset, a
 * chunked or compressed body, a body over the limit — goes on to the Express routes, which
 * answer it as they always did. What is taken goes through the same admission bound, the same
 * validation (payload, forwarding headers, forward token), the same metrics, the same term
 * check and the same handler as the Express route; its errors get the same JSON bodies.
 */
import type http from 'node:http';
import { PoolError } from '../errors.js';
import { HOPS_HEADER } from '../work/forwarder.js';
import type { PoolRoutes } from './poolAddress.js';
import { MAX_BODY_BYTES } from './workRequest.js';
import type { WorkServer } from './workRoutes.js';

/**
 * Answers `req` if it is a member's forward it takes (returns true), or leaves it untouched for
 * the Express routes (returns false). Never blocks: the body is read and the work served
 * after it returns.
 */
export type MemberForwards = (req: http.IncomingMessage, res: http.ServerResponse) => boolean;

/** The Content-Types a member's forward carries: JSON in UTF-8, as body-parser reads it. */
const PLAIN_JSON = new Set(['application/json', 'application/json; charset=utf-8']);

export function memberForwards(
  pools: readonly PoolRoutes[],
  work: WorkServer,
  draining: () => boolean,
): MemberForwards {
  const byPath = new Map(pools.map((pool) => [`/pools/${pool.election.pool}/work`, pool]));
  return (req, res) => {
    const { headers } = req;
    if (req.method !== 'POST' || headers[HOPS_HEADER] === undefined) return false;
    const pool = byPath.get(req.url ?? '');
    if (!pool) return false;
    const type = headers['content-type']?.toLowerCase();
    if (type === undefined || !PLAIN_JSON.has(type)) return false;
    const encoding = headers['content-encoding'];
    if (encoding !== undefined && encoding.toLowerCase() !== 'identity') return false;
    // Absent (chunked) or over the limit: the Express parser answers as it does.
    const length = Number(headers['content-length'] ?? NaN);
    if (!(length <= MAX_BODY_BYTES)) return false;

    if (draining()) res.setHeader('Connection', 'close');
    if (!work.admit('work', pool.election, res)) return true;
    void readBody(req, length)
      .then((body) => work.serveBody(pool, req, res, body))
      .catch((error: unknown) => work.refuse(pool, res, error));
    return true;
  };
}

/**
 * The body of `req`, `length` bytes (Node's parser stops at its Content-Length). Rejects with
 * 400 BAD_REQUEST, as the Express parser does, when the client closes before the end.
 */
function readBody(req: http.IncomingMessage, length: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.once('end', () => {
      const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, length);
      resolve(body);
    });
    req.once('close', () => {
      if (!req.complete) reject(new PoolError('BAD_REQUEST', 'request aborted'));
    });
    req.once('error', () => reject(new PoolError('BAD_REQUEST', 'request aborted')));
  });
}
