/**
 * Maps error codes to HTTP statuses and renders the JSON error body
 * `{ "error": { "code", "message", "details"? } }`.
 */
import type http from 'node:http';
import type { ErrorRequestHandler } from 'express';
import type { Logger } from 'pino';
import { isHttpError, PoolError, type HttpErrorCode } from '../errors.js';
import { jsonReplacer } from '../util/jsonSafe.js';

export const STATUS_BY_CODE: Record<HttpErrorCode, number> = {
  BAD_REQUEST: 400,
  UNAUTHORIZED: 401,
  NOT_FOUND: 404,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  HOP_LIMIT_EXCEEDED: 400,
  NOT_LEADER: 421,
  NO_LEADER: 503,
  LEADER_UNREACHABLE: 503,
  SHUTTING_DOWN: 503,
  OVERLOADED: 503,
  ETCD_UNAVAILABLE: 503,
  UPSTREAM_FAILED: 502,
  UPSTREAM_TIMEOUT: 504,
  INTERNAL: 500,
};

/** Seconds a client should wait before retrying a 503. */
const RETRY_AFTER_SECONDS = 1;

/** The answer to an error that has no HTTP code: a bug of ours if it gets this far. */
const INTERNAL_ERROR = new PoolError('INTERNAL', 'internal error');

/** An answer as JSON: its status, extra headers and the value of its body. */
export interface JsonAnswer {
  status: number;
  headers?: Record<string, string>;
  body: unknown;
}

/**
 * The answer to `error`: its status and JSON body. Only HTTP-facing codes go on the wire: a
 * process-level PoolError (CONFIG_INVALID, LEADERSHIP_ENDED, ...) is answered 500 INTERNAL.
 */
export function errorAnswer(error: PoolError): JsonAnswer {
  if (!isHttpError(error)) return errorAnswer(INTERNAL_ERROR);
  const status = STATUS_BY_CODE[error.code];
  const headers: Record<string, string> = {};
  if (status === 503) headers['Retry-After'] = String(RETRY_AFTER_SECONDS);
  if (status === 401) headers['WWW-Authenticate'] = 'Bearer';
  return {
    status,
    headers,
    body: {
      error: {
        code: error.code,
        message: error.message,
        ...(error.details ? { details: error.details } : {}),
      },
    },
  };
}

/** An answer ready to be written: status, headers, Content-Type and body. */
export interface Reply {
  status: number;
  headers?: Record<string, string> | undefined;
  contentType: string;
  bytes: Buffer | string;
}

/**
 * `answer` as Express's `res.json` writes it with the pool's settings (bigints as decimal
 * strings, no ETag), so that the lean way in for work (leanWork.ts) answers byte for byte as
 * the Express routes do.
 */
export function jsonReply(answer: JsonAnswer): Reply {
  const text = JSON.stringify(answer.body, jsonReplacer) as string | undefined;
  const { status, headers } = answer;
  if (text === undefined) return { status, headers, contentType: 'application/json', bytes: '' };
  return { status, headers, contentType: 'application/json; charset=utf-8', bytes: text };
}

/**
 * Writes `reply` on any node:http response — an Express one too, in a host app whose
 * middleware may wrap `writeHead` or read the headers afterwards.
 */
export function sendReply(res: http.ServerResponse, reply: Reply): void {
  res.statusCode = reply.status;
  for (const [name, value] of Object.entries(reply.headers ?? {})) res.setHeader(name, value);
  res.setHeader('Content-Type', reply.contentType);
  res.setHeader('Content-Length', Buffer.byteLength(reply.bytes));
  res.end(reply.bytes);
}

/**
 * `sendReply` for a response of the member's own node:http server (the lean path), which no
 * middleware wraps: the head in one `writeHead` with the fields as a list, Node's cheapest way
 * (a few microseconds less per request). Node then keeps no header map: `getHeaders()` after
 * it is empty. Fields set on `res` before still count.
 */
export function sendReplyDirect(res: http.ServerResponse, reply: Reply): void {
  const fields: string[] = [];
  for (const name in reply.headers) fields.push(name, reply.headers[name]!);
  fields.push(
    'Content-Type',
    reply.contentType,
    'Content-Length',
    String(Buffer.byteLength(reply.bytes)),
  );
  res.writeHead(reply.status, fields);
  res.end(reply.bytes);
}

/** Writes `answer` as JSON (`jsonReply`). */
export function sendJson(res: http.ServerResponse, answer: JsonAnswer): void {
  sendReply(res, jsonReply(answer));
}

/** Answers `error` with its status and JSON body (`errorAnswer`). */
export function sendError(res: http.ServerResponse, error: PoolError): void {
  sendJson(res, errorAnswer(error));
}

/** The answer to a POST body that does not parse as JSON, whichever parser read it. */
export function bodyNotJson(): PoolError {
  return new PoolError('BAD_REQUEST', 'request body is not valid JSON');
}

/**
 * Express's router and body-parser raise http-errors: a `status`, and for body-parser a
 * `type`. Those about the client's request (4xx) map to our codes — a known `type` to a
 * message of ours, any other 4xx by its status (an undecodable `%` escape in a path parameter,
 * a compressed body that does not decompress). Anything else is a bug of ours: undefined.
 */
function fromClientError(error: {
  type?: unknown;
  status?: unknown;
  message?: unknown;
}): PoolError | undefined {
  switch (error.type) {
    case 'entity.parse.failed':
      return bodyNotJson();
    case 'entity.too.large':
      return new PoolError('PAYLOAD_TOO_LARGE', 'request body is too large');
  }
  const status = error.status;
  if (typeof status !== 'number' || status < 400 || status > 499) return undefined;
  const code =
    status === 413
      ? 'PAYLOAD_TOO_LARGE'
      : status === 415
        ? 'UNSUPPORTED_MEDIA_TYPE'
        : 'BAD_REQUEST';
  return new PoolError(code, String(error.message));
}

/**
 * The error as an answer of ours: a PoolError with an HTTP code as it is, a client error
 * mapped; else undefined (a process-level PoolError included: a bug here, answered 500).
 */
export function knownError(error: unknown): PoolError | undefined {
  if (isHttpError(error)) return error;
  return typeof error === 'object' && error !== null ? fromClientError(error) : undefined;
}

export function errorMiddleware(logger: Logger): ErrorRequestHandler {
  return (error: unknown, req, res, next) => {
    // An answer is on its way already (the error came after it started): Express's own
    // handler closes the connection.
    if (res.headersSent) {
      next(error);
      return;
    }
    const known = knownError(error);
    if (known) {
      sendError(res, known);
      return;
    }
    logger.error({ err: error, path: req.path }, 'unexpected error');
    sendError(res, INTERNAL_ERROR);
  };
}
