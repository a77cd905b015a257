/**
 * What a work request must look like before it is routed: the payload (from the query string
 * of GET, from the JSON body of POST) within MAX_PAYLOAD_DEPTH and MAX_PAYLOAD_BYTES, and the
 * forwarding headers a member adds. Each check throws the PoolError to answer (400, 413, 415).
 */
import http from 'node:http';
import net from 'node:net';
import express from 'express';
import { MEMBER_ID_PATTERN } from '../config/schemas.js';
import { PoolError } from '../errors.js';
import { withoutByteOrderMark } from '../util/byteOrderMark.js';
import { bodyNotJson } from './errors.js';
import { HOPS_HEADER, TERM_HEADER, VIA_HEADER } from '../work/forwarder.js';
import type { IncomingWork } from '../work/router.js';

/** The largest accepted payload, serialized as JSON. */
export const MAX_PAYLOAD_BYTES = 64 * 1024;
/**
 * The deepest accepted payload nesting. JSON.parse takes any depth, but JSON.stringify (the
 * size check, the answer, a forward) is recursive and overflows the stack somewhere past a
 * few thousand levels: a 10 KiB body of brackets would be a 500. 128 is serde_json's limit.
 */
export const MAX_PAYLOAD_DEPTH = 128;
/** Body limit, in bytes: the payload plus its `{"payload": ...}` envelope. */
export const MAX_BODY_BYTES = 65 * 1024;
const MAX_VIA = 16;

/**
 * The payload of GET /work?payload=...: a string, or null when absent. `query` is the query
 * string as the simple parser (node:querystring) reads it, Express's `req.query` included.
 */
export function queryPayload(query: Readonly<Record<string, unknown>>): string | null {
  const payload = query.payload;
  if (payload !== undefined && typeof payload !== 'string') {
    throw new PoolError('BAD_REQUEST', 'give "payload" at most once in the query string');
  }
  checkPayload(payload ?? null);
  return payload ?? null;
}

/** Refuses a POST body that is not declared JSON, before it is read. */
export const requireJson: express.RequestHandler = (req, _res, next) => {
  if (!req.is('application/json')) {
    throw new PoolError(
      'UNSUPPORTED_MEDIA_TYPE',
      'send the body as application/json: {"payload": <any JSON>}',
    );
  }
  next();
};

/** The bodies of POST /work as received, when UTF-8 (see `receivedBody`). */
const receivedBodies = new WeakMap<http.IncomingMessage, Buffer>();

/**
 * The JSON body parser of POST /work, within MAX_BODY_BYTES, already run once (see `warmUp`).
 * Whatever the declared type: `requireJson` checked it before. It keeps the bytes it parsed
 * when they are UTF-8, so that a forward sends them on as they came (`receivedBody`).
 */
export function jsonBody(): express.RequestHandler {
  const json = express.json({
    limit: MAX_BODY_BYTES,
    strict: false,
    type: () => true,
    verify: (req, _res, bytes, encoding) => {
      if (encoding === 'utf-8') receivedBodies.set(req, bytes);
    },
  });
  warmUp(json);
  return json;
}

/**
 * The JSON body of `req` as received (decompressed, UTF-8), which the parser read; undefined
 * for another charset, whose bytes a JSON reader would not take as they are.
 */
export function receivedBody(req: http.IncomingMessage): Buffer | undefined {
  return receivedBodies.get(req);
}

/**
 * A JSON body read by hand (the lean forward path, memberForwards.ts), parsed as the Express
 * parser does: a UTF-8 byte order mark is dropped, an empty body is `{}`, and anything that is
 * not JSON is the same 400.
 */
export function parseJsonBody(bytes: Buffer): unknown {
  const text = withoutByteOrderMark(bytes);
  if (text.length === 0) return {};
  try {
    return JSON.parse(text.toString('utf8')) as unknown;
  } catch {
    throw bodyNotJson();
  }
}

/** The payload of a parsed POST body `{"payload": <any JSON>}`. */
export function bodyPayload(body: unknown): unknown {
  if (typeof body !== 'object' || body === null || Array.isArray(body) || !('payload' in body)) {
    throw new PoolError('BAD_REQUEST', 'expected a JSON object {"payload": <any JSON>}');
  }
  const payload = body.payload;
  checkPayload(payload);
  return payload;
}

/** Reads and validates the headers a forwarding member adds. */
export function forwardingHeaders(
  headers: http.IncomingHttpHeaders,
): Pick<IncomingWork, 'hops' | 'via' | 'termSeen'> {
  const hopsRaw = headers[HOPS_HEADER] as string | undefined;
  const termRaw = headers[TERM_HEADER] as string | undefined;
  const viaRaw = headers[VIA_HEADER] as string | undefined;
  if (hopsRaw === undefined) return { hops: 0, via: [] };
  if (!/^\d{1,3}$/.test(hopsRaw))
    throw new PoolError('BAD_REQUEST', `${HOPS_HEADER} must be a small whole number`);
  if (termRaw !== undefined && !/^\d{1,20}$/.test(termRaw)) {
    throw new PoolError('BAD_REQUEST', `${TERM_HEADER} must be a revision number`);
  }
  const via = viaRaw ? viaRaw.split(',').map((part) => part.trim()) : [];
  if (via.length > MAX_VIA || via.some((id) => !MEMBER_ID_PATTERN.test(id))) {
    throw new PoolError('BAD_REQUEST', `${VIA_HEADER} must list at most ${MAX_VIA} member ids`);
  }
  return {
    hops: Number(hopsRaw),
    via,
    ...(termRaw !== undefined ? { termSeen: BigInt(termRaw) } : {}),
  };
}

/**
 * Runs the body parser once over a request built in memory. Its first use loads the charset
 * decoders (about 15 ms here) and compiles the parsing path; without this, the first request
 * forwarded to a freshly elected leader — in the middle of a failover — pays for it.
 */
function warmUp(parser: express.RequestHandler): void {
  const req = new http.IncomingMessage(new net.Socket());
  const body = Buffer.from('{"payload":null}');
  req.headers = { 'content-type': 'application/json', 'content-length': String(body.length) };
  req.push(body);
  req.push(null);
  void parser(req as express.Request, {} as express.Response, () => undefined);
}

/** Refuses a payload nested deeper than MAX_PAYLOAD_DEPTH or over MAX_PAYLOAD_BYTES. */
function checkPayload(payload: unknown): void {
  if (nestingDepth(payload, MAX_PAYLOAD_DEPTH) > MAX_PAYLOAD_DEPTH) {
    throw new PoolError(
      'BAD_REQUEST',
      `payload is nested deeper than ${MAX_PAYLOAD_DEPTH} levels of arrays and objects`,
    );
  }
  const size = Buffer.byteLength(JSON.stringify(payload) ?? 'null');
  if (size > MAX_PAYLOAD_BYTES) {
    throw new PoolError(
      'PAYLOAD_TOO_LARGE',
      `payload is ${size} bytes; the limit is ${MAX_PAYLOAD_BYTES}`,
    );
  }
}

/**
 * How deeply arrays and objects nest in a parsed JSON value, counted without recursion (the
 * value may be deeper than the stack); stops counting once past `limit`.
 */
function nestingDepth(value: unknown, limit: number): number {
  // A scalar — the payload of every GET — nests nothing: no work list to allocate.
  if (typeof value !== 'object' || value === null) return 0;
  let deepest = 0;
  const pending: [unknown, number][] = [[value, 0]];
  while (pending.length > 0) {
    const [current, depth] = pending.pop()!;
    if (typeof current !== 'object' || current === null) continue;
    if (depth + 1 > deepest) deepest = depth + 1;
    if (deepest > limit) break;
    for (const child of Object.values(current)) pending.push([child, depth + 1]);
  }
  return deepest;
}
