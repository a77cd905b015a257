/**
 * Every error this project raises is a `PoolError`: a value with a `code` from one union, never
 * a message to match on. The codes come in two kinds:
 *
 * - HTTP-facing codes (`HTTP_ERROR_CODES`): what a member answers with; http/errors.ts maps each
 *   to its status, and docs/operations.md's error table lists them.
 * - Process-level codes (`PROCESS_ERROR_CODES`): what stops a member or a command — bad
 *   configuration, etcd refusing us, a pool of another service, a term that ended, a wrong
 *   command line, a failed local process. They never go over HTTP: a member that meets one
 *   while answering answers 500 `INTERNAL`.
 *
 * The code also says whether a request may be sent again (`isRetryable`): the 503s and, between
 * members, the 421 certainly did not execute; `UPSTREAM_FAILED` and `UPSTREAM_TIMEOUT` may have
 * (docs/operations.md, the error table). A class adds fields only where they say more than the
 * code: an etcd problem's kind, how a term ended, a failed call's kind.
 */

/** The codes a member answers with over HTTP, each with its status (http/errors.ts). */
export const HTTP_ERROR_CODES = [
  'BAD_REQUEST',
  'UNAUTHORIZED',
  'NOT_FOUND',
  'PAYLOAD_TOO_LARGE',
  'UNSUPPORTED_MEDIA_TYPE',
  'HOP_LIMIT_EXCEEDED',
  'NOT_LEADER',
  'NO_LEADER',
  'LEADER_UNREACHABLE',
  'SHUTTING_DOWN',
  'OVERLOADED',
  'UPSTREAM_FAILED',
  'UPSTREAM_TIMEOUT',
  'ETCD_UNAVAILABLE',
  'INTERNAL',
] as const;
/** A code a member answers with over HTTP; http/errors.ts gives each its status. */
export type HttpErrorCode = (typeof HTTP_ERROR_CODES)[number];

/** What went wrong with a local process the demo runs: etcd members, pool members, itself. */
export const LOCAL_PROCESS_ERROR_CODES = [
  'INVALID_SIZE',
  'ETCD_MISSING',
  'ETCD_UNHEALTHY',
  'MEMBER_RUNNING',
  'NO_SUCH_MEMBER',
  'CLUSTER_CLOSED',
  'ETCDCTL_FAILED',
  'CLI_NOT_BUILT',
  'NOT_READY',
  'EXITED',
  'DEMO_CANNOT_START',
] as const;
export type LocalProcessErrorCode = (typeof LOCAL_PROCESS_ERROR_CODES)[number];

/** The codes that stop a member or a command; never sent over HTTP. */
export const PROCESS_ERROR_CODES = [
  /** ConfigError: a bad environment variable (the CLI exits 2). */
  'CONFIG_INVALID',
  /** EtcdAccessError: etcd refuses this member for good (exit 1). */
  'ETCD_ACCESS_REFUSED',
  /** ServiceConflictError: the pool belongs to another service (exit 1). */
  'SERVICE_CONFLICT',
  /** LeadershipEndedError: the reason of a term's aborted signal. */
  'LEADERSHIP_ENDED',
  /** StrategyFallback: a strategy's choice was not used; the election uses `oldest`. */
  'STRATEGY_FALLBACK',
  /** UsageError: the command line is wrong (exit 2). */
  'USAGE',
  /** ServiceCallError: a client command's call to a member failed (exit 1). */
  'SERVICE_CALL_FAILED',
  /** DemoCommandError: a demo command names no member, or one in the wrong state. */
  'DEMO_COMMAND_REFUSED',
  ...LOCAL_PROCESS_ERROR_CODES,
] as const;
/** A code that stops a member or a command; never sent over HTTP. */
export type ProcessErrorCode = (typeof PROCESS_ERROR_CODES)[number];

/** The `code` of every `PoolError`: an `HttpErrorCode` or a `ProcessErrorCode`. */
export type ErrorCode = HttpErrorCode | ProcessErrorCode;

/**
 * The codes that say a request certainly did not execute, so the same request may be sent
 * again: every 503 (after its `Retry-After`) and, between members, 421 `NOT_LEADER` (the
 * sender routes it again). docs/operations.md says the same under its error table.
 */
const RETRYABLE_CODES = [
  'NOT_LEADER',
  'NO_LEADER',
  'LEADER_UNREACHABLE',
  'SHUTTING_DOWN',
  'OVERLOADED',
  'ETCD_UNAVAILABLE',
] as const satisfies readonly HttpErrorCode[];
export type RetryableErrorCode = (typeof RETRYABLE_CODES)[number];

/** A PoolError a member answers over HTTP: its code has a status. */
export type HttpError = PoolError & { readonly code: HttpErrorCode };

const HTTP_CODES: ReadonlySet<string> = new Set(HTTP_ERROR_CODES);
const RETRYABLE: ReadonlySet<string> = new Set(RETRYABLE_CODES);

/**
 * The root of every error here; `code` says what happened, `details` go into HTTP answers. A
 * subclass narrows `code` to its own (`declare readonly code: 'CONFIG_INVALID'`).
 */
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

/** A member by its id and its URL, as its record in etcd gives them. */
export interface MemberAddress {
  id: string;
  url: string;
}

/**
 * This member is not (or no longer) the leader; nothing was executed. A leader handing its
 * claim over names the member it hands it to (`successor`, in the answer's details), so that
 * the sender can forward there at once rather than wait for its own watch to show the handoff.
 */
export class NotLeaderError extends PoolError {
  declare readonly code: 'NOT_LEADER';
  constructor(message = 'this member is not the leader', details?: Record<string, unknown>) {
    super('NOT_LEADER', message, details);
    this.name = 'NotLeaderError';
  }

  /** The member the claim is being handed to, when the answer names one. */
  get successor(): MemberAddress | undefined {
    return memberAddress(this.details?.successor);
  }
}

/** `value` as a MemberAddress: an id and an http(s) URL, both strings; else undefined. */
export function memberAddress(value: unknown): MemberAddress | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { id, url } = value as Record<string, unknown>;
  if (typeof id !== 'string' || typeof url !== 'string') return undefined;
  let protocol: string;
  try {
    ({ protocol } = new URL(url));
  } catch {
    return undefined;
  }
  return protocol === 'http:' || protocol === 'https:' ? { id, url } : undefined;
}

/**
 * No leader could take the request within LEADERLESS_WAIT_MS. `lastLeader`, when set, is the
 * leader that was tried last and answered "not leader": its claim still stood in etcd while
 * it had stopped acting (its lease about to expire), and no successor had claimed yet.
 */
export class NoLeaderError extends PoolError {
  declare readonly code: 'NO_LEADER';
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
  declare readonly code: 'LEADER_UNREACHABLE';
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

/**
 * Whether `error` is one of ours; with `code`, one with that code (whichever class raised it).
 */
export function isPoolError<C extends ErrorCode = ErrorCode>(
  error: unknown,
  code?: C,
): error is PoolError & { readonly code: C } {
  return error instanceof PoolError && (code === undefined || error.code === code);
}

/** Whether `error` is one of ours that a member answers over HTTP (its code has a status). */
export function isHttpError(error: unknown): error is HttpError {
  return error instanceof PoolError && HTTP_CODES.has(error.code);
}

/**
 * Whether `error` says its request certainly did not execute, so it may be sent again (after
 * the 503's `Retry-After`): see RETRYABLE_CODES. False for anything else, including errors
 * that are not ours: those may have executed.
 */
export function isRetryable(
  error: unknown,
): error is PoolError & { readonly code: RetryableErrorCode } {
  return error instanceof PoolError && RETRYABLE.has(error.code);
}

/** Whether `error` is a "not leader" answer: nothing was executed. */
export function isNotLeader(error: unknown): error is NotLeaderError {
  return isPoolError(error, 'NOT_LEADER');
}
