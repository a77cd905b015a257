/**
 * The lean way in for work: GET and POST /work and /pools/:pool/work, answered on node:http
 * before Express sees them, so that serving a client, forwarding its request and serving a
 * forward cost what a proxy hop costs and not a pass through the framework each.
 *
 * Only the common forms are taken: GET of exactly /work or /pools/<a pool of this member>/work
 * with an optional query string; POST of exactly that path with no query string, declared
 * `application/json` (UTF-8), not compressed, with a Content-Length within the body limit —
 * from a client or from a member (x-pool-hops). Anything else — HEAD, a trailing slash,
 * another case, another charset, a chunked or compressed body, a body over the limit, an
 * unknown pool — goes on to the Express routes, which answer it as they always did. What is
 * taken goes through the same admission bound, the same validation (payload, query string,
 * forwarding headers, forward token), the same metrics, the same term check and the same
 * handler as the Express routes; its errors get the same JSON bodies. It also takes the
 * batches of forwards members send under load (POST /pools/<pool>/work-batch,
 * forwardBatch.ts), which only this path knows.
 */
import type http from 'node:http';
import querystring from 'node:querystring';
import { PoolError } from '../errors.js';
import { sendError } from './errors.js';
import type { PoolRoutes } from './poolAddress.js';
import { BATCH_CONTENT_TYPE } from '../work/batchFrames.js';
import { MAX_BATCH_BYTES } from '../work/forwardBatch.js';
import { MAX_BODY_BYTES } from './workRequest.js';
import type { WorkServer } from './workRoutes.js';

/**
 * Answers `req` if it is a work request it takes (returns true), or leaves it untouched for
 * the Express routes (returns false). Never blocks: the body is read and the work served
 * after it returns.
 */
export type LeanWork = (req: http.IncomingMessage, res: http.ServerResponse) => boolean;

/** The Content-Types a lean POST carries: JSON in UTF-8, as body-parser reads it. */
const PLAIN_JSON = new Set(['application/json', 'application/json; charset=utf-8']);

/** `pools[0]` serves /work; each pool its /pools/<name>/work. */
export function leanWork(
  pools: readonly PoolRoutes[],
  work: WorkServer,
  draining: () => boolean,
): LeanWork {
  const byPath = new Map(pools.map((pool) => [`/pools/${pool.election.pool}/work`, pool]));
  if (pools[0]) byPath.set('/work', pools[0]);
  const batchPaths = new Map(
    pools.map((pool) => [`/pools/${pool.election.pool}/work-batch`, pool]),
  );
  return (req, res) => {
    const batchOf = batchPaths.get(req.url ?? '');
    if (batchOf) return takeBatch(work, batchOf, req, res, draining);
    // A fragment is no part of the request, as Express's URL parser reads it.
    const hashAt = req.url?.indexOf('#') ?? -1;
    const url = hashAt < 0 ? (req.url ?? '') : req.url!.slice(0, hashAt);
    const queryAt = url.indexOf('?');
    const pool = byPath.get(queryAt < 0 ? url : url.slice(0, queryAt));
    if (!pool) return false;
    if (req.method === 'GET') {
      const query = queryAt < 0 ? {} : parseQuery(url.slice(queryAt + 1));
      if (!admit(work, pool, res, draining)) return true;
      // Drained unread, as Node would: a GET body means nothing here.
      req.resume();
      void work.serveQuery(pool, req, res, query);
      return true;
    }
    if (req.method !== 'POST' || queryAt >= 0) return false;
    const { headers } = req;
    const type = headers['content-type']?.toLowerCase();
    if (type === undefined || !PLAIN_JSON.has(type)) return false;
    const encoding = headers['content-encoding'];
    if (encoding !== undefined && encoding.toLowerCase() !== 'identity') return false;
    // Absent (chunked) or over the limit: the Express parser answers as it does.
    const length = Number(headers['content-length'] ?? NaN);
    if (!(length <= MAX_BODY_BYTES)) return false;

    if (!admit(work, pool, res, draining)) return true;
    serveWhenRead(work, pool, req, res, length, 'serveBody');
    return true;
  };
}

/**
 * A batch of forwards (forwardBatch.ts), POST only, its framing declared; over
 * MAX_BATCH_BYTES (or without a length) 413. Anything else: 404 by Express, which has no such
 * route — a member that sends one then forwards one by one.
 */
function takeBatch(
  work: WorkServer,
  pool: PoolRoutes,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  draining: () => boolean,
): boolean {
  const length = Number(req.headers['content-length'] ?? NaN);
  if (req.method !== 'POST' || req.headers['content-type'] !== BATCH_CONTENT_TYPE) return false;
  if (!(length <= MAX_BATCH_BYTES)) {
    // 413, not Express's 404: the sender goes one by one for this batch only.
    res.setHeader('Connection', 'close');
    sendError(
      res,
      new PoolError('PAYLOAD_TOO_LARGE', `a batch of forwards is at most ${MAX_BATCH_BYTES} bytes`),
    );
    return true;
  }
  if (!admit(work, pool, res, draining)) return true;
  serveWhenRead(work, pool, req, res, length, 'serveBatch');
  return true;
}

/**
 * A query string as node:querystring (Express's simple parser) reads it. One `key=value` with
 * nothing to decode — `?payload=x`, the common form — is read directly: querystring's
 * general path costs a few microseconds per request.
 */
export function parseQuery(query: string): Record<string, unknown> {
  if (PLAIN_QUERY.test(query)) {
    // Without a prototype, as querystring's: `?constructor=x` names only itself.
    const parsed = Object.create(null) as Record<string, unknown>;
    const eq = query.indexOf('=');
    parsed[eq < 0 ? query : query.slice(0, eq)] = eq < 0 ? '' : query.slice(eq + 1);
    return parsed;
  }
  return querystring.parse(query);
}

/** Nothing querystring would split or decode: no `&`, `%` or `+`, at most one `=`, a key. */
const PLAIN_QUERY = /^[^&%+=]+(=[^&%+=]*)?$/;

/** The admission bound, as the Express routes apply it; true if the request may go on. */
function admit(
  work: WorkServer,
  pool: PoolRoutes,
  res: http.ServerResponse,
  draining: () => boolean,
): boolean {
  if (draining()) res.setHeader('Connection', 'close');
  return work.admit('work', pool.election, res);
}

/** Reads the body of `req` and hands it to `work[serve]`; a body that never comes is refused. */
function serveWhenRead(
  work: WorkServer,
  pool: PoolRoutes,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  length: number,
  serve: 'serveBody' | 'serveBatch',
): void {
  void readBody(req, length)
    .then((body) => work[serve](pool, req, res, body))
    .catch((error: unknown) => work.refuse(pool, res, error));
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
