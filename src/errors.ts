/**
 * Errors are values with codes. The HTTP layer maps each code to a status; nothing matches on
 * message strings. `retryable` says whether the request can be sent again safely because it
 * certainly did not execute.
 */
export type ErrorCode =
  | 'BAD_REQUEST'
  | 'UNAUTHORIZED'
  | 'NOT_FOUND'
  | 'PAYLOAD_TOO_LARGE'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'HOP_LIMIT_EXCEEDED'
  | 'NOT_LEADER'
  | 'NO_LEADER'
  | 'SHUTTING_DOWN'
  | 'UPSTREAM_FAILED'
  | 'UPSTREAM_TIMEOUT'
  | 'ETCD_UNAVAILABLE'
  | 'INTERNAL';

export class PoolError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'PoolError';
  }
}

/** This member is not (or no longer) the leader; nothing was executed. */
export class NotLeaderError extends PoolError {
  constructor(message = 'this member is not the leader', details?: Record<string, unknown>) {
    super('NOT_LEADER', message, details);
    this.name = 'NotLeaderError';
  }
}

/** No leader was elected within the wait bound. */
export class NoLeaderError extends PoolError {
  constructor(readonly waitedMs: number) {
    super('NO_LEADER', `no leader was elected within ${waitedMs} ms`, { waitedMs });
    this.name = 'NoLeaderError';
  }
}

export function isPoolError(error: unknown): error is PoolError {
  return error instanceof PoolError;
}

export function isNotLeader(error: unknown): error is NotLeaderError {
  return error instanceof PoolError && error.code === 'NOT_LEADER';
}
