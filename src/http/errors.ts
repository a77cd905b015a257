/**
 * Maps error codes to HTTP statuses and renders the JSON error body
 * `{ "error": { "code", "message", "details"? } }`.
 */
import type { ErrorRequestHandler, Response } from 'express';
import type { Logger } from 'pino';
import { isPoolError, PoolError, type ErrorCode } from '../errors.js';

export const STATUS_BY_CODE: Record<ErrorCode, number> = {
  BAD_REQUEST: 400,
  NOT_FOUND: 404,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  HOP_LIMIT_EXCEEDED: 400,
  NOT_LEADER: 421,
  NO_LEADER: 503,
  SHUTTING_DOWN: 503,
  ETCD_UNAVAILABLE: 503,
  UPSTREAM_FAILED: 502,
  UPSTREAM_TIMEOUT: 504,
  INTERNAL: 500,
};

/** Seconds a client should wait before retrying a 503. */
const RETRY_AFTER_SECONDS = 1;

export function sendError(res: Response, error: PoolError): void {
  const status = STATUS_BY_CODE[error.code];
  if (status === 503) res.set('Retry-After', String(RETRY_AFTER_SECONDS));
  res.status(status).json({
    error: {
      code: error.code,
      message: error.message,
      ...(error.details ? { details: error.details } : {}),
    },
  });
}

/** body-parser marks its errors with a `type`; map those to our codes. */
function fromBodyParser(error: { type?: unknown; message?: unknown }): PoolError | undefined {
  switch (error.type) {
    case 'entity.parse.failed':
      return new PoolError('BAD_REQUEST', 'request body is not valid JSON');
    case 'entity.too.large':
      return new PoolError('PAYLOAD_TOO_LARGE', 'request body is too large');
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return new PoolError('UNSUPPORTED_MEDIA_TYPE', String(error.message));
    case 'request.aborted':
    case 'request.size.invalid':
    case 'stream.encoding.set':
      return new PoolError('BAD_REQUEST', String(error.message));
    default:
      return undefined;
  }
}

export function errorMiddleware(logger: Logger): ErrorRequestHandler {
  return (error: unknown, req, res, _next) => {
    const known = isPoolError(error)
      ? error
      : typeof error === 'object' && error !== null
        ? fromBodyParser(error)
        : undefined;
    if (known) {
      sendError(res, known);
      return;
    }
    logger.error({ err: error, path: req.path }, 'unexpected error');
    sendError(res, new PoolError('INTERNAL', 'internal error'));
  };
}
