/**
 * Calls to one member's HTTP surface: the pools, work, resign. Every call is bounded in time
 * (a SIGSTOPped member accepts the connection and never answers) and fails with a
 * `ServiceCallError` whose kind says whether the member was reached at all.
 */
import { PoolError } from '../errors.js';
import {
  errorAnswer,
  parseJson,
  poolsOf,
  resignAnswer,
  workAnswer,
  type PoolDescription,
  type ResignAnswer,
  type WorkAnswer,
} from './answers.js';

export type ServiceCallErrorKind =
  /** Nothing answered at that address: the request was not sent. */
  | 'UNREACHABLE'
  /** The connection broke after the request may have been sent. */
  | 'CONNECTION_LOST'
  | 'TIMEOUT'
  /** The member answered with an error status; `code` is its error code when it gave one. */
  | 'SERVICE_ERROR'
  /** A 2xx answer that is not what this client expects (another program at that address?). */
  | 'UNEXPECTED_ANSWER';

/** `kind` says whether the member was reached; `answer.code` is the member's own code. */
export class ServiceCallError extends PoolError {
  declare readonly code: 'SERVICE_CALL_FAILED';
  constructor(
    readonly kind: ServiceCallErrorKind,
    message: string,
    /** The HTTP answer, when there was one: for `--json` and for the one-line report. */
    readonly answer?: { status: number; body: string; code?: string },
  ) {
    super('SERVICE_CALL_FAILED', message);
    this.name = 'ServiceCallError';
  }
}

export function isServiceCallError(error: unknown): error is ServiceCallError {
  return error instanceof ServiceCallError;
}

export interface CallOptions {
  /** Default 30 s: above the service's own bounds (a leaderless wait plus forwards). */
  timeoutMs?: number;
  /** Cancels the call; it then rejects with the signal's reason, not a ServiceCallError. */
  signal?: AbortSignal;
}

const DEFAULT_TIMEOUT_MS = 30_000;
/** Socket errors that mean the request never reached a server. */
const NOT_REACHED = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
]);
const REASONS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ENOTFOUND: 'unknown host',
  EAI_AGAIN: 'host name lookup failed',
};
/** How much of an unexpected body goes into a one-line message. */
const BODY_EXCERPT = 120;

interface HttpAnswer {
  status: number;
  body: string;
}

/** `/path` or `/pools/<pool>/path`. */
export function poolPath(path: string, pool?: string): string {
  return pool === undefined ? path : `/pools/${encodeURIComponent(pool)}${path}`;
}

async function call(baseUrl: string, path: string, init: RequestInit, options: CallOptions) {
  const url = `${baseUrl.replace(/\/+$/, '')}${path}`;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const timeout = AbortSignal.timeout(timeoutMs);
  const signal = options.signal ? AbortSignal.any([timeout, options.signal]) : timeout;
  try {
    const response = await fetch(url, { ...init, signal });
    return { url, status: response.status, body: await response.text() };
  } catch (error) {
    if (options.signal?.aborted) throw options.signal.reason;
    if (timeout.aborted) {
      throw new ServiceCallError('TIMEOUT', `no answer from ${url} within ${timeoutMs / 1000} s`);
    }
    throw connectionError(url, error);
  }
}

/** fetch's "fetch failed" hides the socket error in `cause` (an AggregateError per address). */
function connectionError(url: string, error: unknown): ServiceCallError {
  const cause = (error as { cause?: { code?: unknown; message?: unknown; errors?: unknown[] } })
    .cause;
  const first = cause?.errors?.[0] as { code?: unknown } | undefined;
  const rawCode = cause?.code ?? first?.code;
  // Socket errors carry string codes (ECONNREFUSED, ...); anything else is no code we know.
  const code = typeof rawCode === 'string' ? rawCode : '';
  if (NOT_REACHED.has(code)) {
    return new ServiceCallError('UNREACHABLE', `cannot reach ${url}: ${REASONS[code] ?? code}`);
  }
  const reason = typeof cause?.message === 'string' ? cause.message : String(error);
  return new ServiceCallError('CONNECTION_LOST', `the connection to ${url} failed: ${reason}`);
}

/** An error status as a ServiceCallError, with the member's own code and message if it gave them. */
function serviceError(url: string, answer: HttpAnswer): ServiceCallError {
  const parsed = errorAnswer.safeParse(parseJson(answer.body));
  if (parsed.success) {
    const { code, message } = parsed.data.error;
    return new ServiceCallError('SERVICE_ERROR', message, { ...answer, code });
  }
  return new ServiceCallError(
    'SERVICE_ERROR',
    `${url} answered ${answer.status}: ${excerpt(answer.body)}`,
    answer,
  );
}

function unexpected(url: string, answer: HttpAnswer, expected: string): ServiceCallError {
  return new ServiceCallError(
    'UNEXPECTED_ANSWER',
    `${url} answered ${answer.status} but not ${expected}: ${excerpt(answer.body)}`,
    answer,
  );
}

function excerpt(body: string): string {
  const line = body.replace(/\s+/g, ' ').trim();
  return line.length > BODY_EXCERPT ? `${line.slice(0, BODY_EXCERPT)}…` : line || '(empty body)';
}

/** GET /pools: every pool the member belongs to, as it sees them; `body` is the raw JSON. */
export async function fetchPools(
  baseUrl: string,
  options: CallOptions = {},
): Promise<{ pools: PoolDescription[]; body: string }> {
  const answer = await call(baseUrl, '/pools', {}, options);
  if (answer.status !== 200) throw serviceError(answer.url, answer);
  const pools = poolsOf(parseJson(answer.body));
  if (pools === undefined) throw unexpected(answer.url, answer, 'a list of pools');
  return { pools, body: answer.body };
}

export interface WorkRequest {
  payload: unknown;
  /** Default: the member's own (first) pool, addressed without a name. */
  pool?: string;
  /** `work`, tracked (the default); `simple-work`, the naive path that asks etcd every time. */
  route?: 'work' | 'simple-work';
}

/**
 * POST /work (or /simple-work, per pool /pools/<pool>/...). `work` is undefined when the
 * answer is JSON of another shape (a custom work handler); `body` is the raw answer.
 */
export async function sendWork(
  baseUrl: string,
  request: WorkRequest,
  options: CallOptions = {},
): Promise<{ work: WorkAnswer | undefined; body: string }> {
  const answer = await call(
    baseUrl,
    poolPath(`/${request.route ?? 'work'}`, request.pool),
    {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ payload: request.payload ?? null }),
    },
    options,
  );
  if (answer.status < 200 || answer.status > 299) throw serviceError(answer.url, answer);
  const json = parseJson(answer.body);
  if (json === undefined) throw unexpected(answer.url, answer, 'JSON');
  const work = workAnswer.safeParse(json);
  return { work: work.success ? work.data : undefined, body: answer.body };
}

/** POST /resign (or /pools/<pool>/resign) with the admin token, on the leader. */
export async function resign(
  baseUrl: string,
  request: { pool?: string; adminToken: string },
  options: CallOptions = {},
): Promise<ResignAnswer> {
  const answer = await call(
    baseUrl,
    poolPath('/resign', request.pool),
    { method: 'POST', headers: { authorization: `Bearer ${request.adminToken}` } },
    options,
  );
  if (answer.status !== 200) throw serviceError(answer.url, answer);
  const parsed = resignAnswer.safeParse(parseJson(answer.body));
  if (!parsed.success) throw unexpected(answer.url, answer, 'a resign answer');
  return parsed.data;
}
