/**
 * Errors are values with codes. The HTTP layer maps each code to a status; nothing matches on
 * message strings. The code also says whether a work request may be sent again: the 503s
 * (`NO_LEADER`, `LEADER_UNREACHABLE`, `SHUTTING_DOWN`, `OVERLOADED`, `ETCD_UNAVAILABLE`)
 * certainly did not execute; `UPSTREAM_FAILED` and `UPSTREAM_TIMEOUT` may have
 * (docs/operations.md, the error table).
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
  | 'LEADER_UNREACHABLE'
  | 'SHUTTING_DOWN'
  | 'OVERLOADED'
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

/**
 * No leader could take the request within LEADERLESS_WAIT_MS. `lastLeader`, when set, is the
 * leader that was tried last and answered "not leader": its claim still stood in etcd while
 * it had stopped acting (its lease about to expire), and no successor had claimed yet.
 */
export class NoLeaderError extends PoolError {
  constructor(
    readonly waitedMs: number,
    lastLeader?: { id: string; term: bigint },
  ) {
    super(
      'NO_LEADER',
      lastLeader === undefined
        ? `no leader was elected within ${waitedMs} ms`
        : `leader ${lastLeader.id} (term ${lastLeader.term}) no longer acts as leader and no successor claimed within ${waitedMs} ms`,
      lastLeader === undefined
        ? { waitedMs }
        : { waitedMs, leader: lastLeader.id, term: lastLeader.term.toString() },
    );
    this.name = 'NoLeaderError';
  }
}

/**
 * The elected leader could not be reached at its advertised URL for LEADERLESS_WAIT_MS
 * (refused, timed out while connecting, name not resolved): nothing was sent, nothing
 * executed. Usually a wrong ADVERTISE_URL or a network policy between the members.
 */
export class LeaderUnreachableError extends PoolError {
  constructor(
    readonly waitedMs: number,
    leader: { id: string; url: string; reason: string },
  ) {
    super(
      'LEADER_UNREACHABLE',
      `leader ${leader.id} at ${leader.url} could not be reached for ${waitedMs} ms (${leader.reason})`,
      { waitedMs, leader: leader.id, url: leader.url, reason: leader.reason },
    );
    this.name = 'LeaderUnreachableError';
  }
}

export function isPoolError(error: unknown): error is PoolError {
  return error instanceof PoolError;
}

export function isNotLeader(error: unknown): error is NotLeaderError {
  return error instanceof PoolError && error.code === 'NOT_LEADER';
}
