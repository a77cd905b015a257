/**
 * Diagnosis of etcd failures: `describeEtcdError` turns an etcd3 error into one line in plain
 * words that names what to check, and `checkEtcdAccess` proves at start-up that etcd answers
 * and lets us in, or says why not — and whether retrying can help.
 */
import net from 'node:net';
import tls from 'node:tls';
import {
  type Etcd3,
  EtcdAuthenticationFailedError,
  EtcdPermissionDeniedError,
  GRPCDeadlineExceededError,
  GRPCFailedPreconditionError,
  GRPCInvalidArgumentError,
  GRPCUnauthenticatedError,
  GRPCUnavailableError,
} from 'etcd3';
import { PoolError } from '../errors.js';
import type { EtcdOptions } from './client.js';

/**
 * What stands between us and etcd. `authentication`, `authorization`, `auth-mismatch` and `tls`
 * are permanent: only an operator can fix them (a password, a role, a certificate), so
 * retrying is pointless. `unreachable` passes when etcd comes back.
 */
export type EtcdProblemKind =
  | 'authentication'
  | 'authorization'
  | 'auth-mismatch'
  | 'tls'
  | 'unreachable'
  | 'no-space'
  | 'other';

/** What stands between a member and etcd, as `EtcdAccessError.problem` says it. */
export interface EtcdProblem {
  kind: EtcdProblemKind;
  permanent: boolean;
  /** One line in plain words naming what to check. Never carries a password or key. */
  message: string;
}

const PERMANENT: ReadonlySet<EtcdProblemKind> = new Set([
  'authentication',
  'authorization',
  'auth-mismatch',
  'tls',
]);

function problem(kind: EtcdProblemKind, message: string): EtcdProblem {
  return { kind, permanent: PERMANENT.has(kind), message };
}

/**
 * etcd's own texts for two auth mismatches (rpctypes.ErrGRPCAuthNotEnabled and
 * ErrGRPCUserEmpty). etcd3 knows no class for them and gRPC gives them the generic codes
 * FAILED_PRECONDITION and INVALID_ARGUMENT, so only etcd's exact text tells them apart.
 */
const ETCD_AUTH_NOT_ENABLED = 'etcdserver: authentication is not enabled';

/**
 * etcd's text for its NOSPACE alarm (rpctypes.ErrGRPCNoSpace, RESOURCE_EXHAUSTED): the backend
 * reached --quota-backend-bytes and etcd refuses every write, while reads and lease keep-alives
 * still work, until an operator frees space and disarms the alarm.
 */
const ETCD_NO_SPACE = 'etcdserver: mvcc: database space exceeded';

/** What an operator does about NOSPACE, for messages and logs. */
export const NO_SPACE_FIX =
  'free space in etcd (compact, defrag), then `etcdctl alarm disarm`; see docs/operations.md#etcd-out-of-space';
const ETCD_USER_NAME_EMPTY = 'etcdserver: user name is empty';

/**
 * grpc-js keeps the reason a TLS handshake failed only as text in UNAVAILABLE errors ("Last
 * error: Error: unable to verify the first certificate"), and often not even that: channels
 * share connections, and one that finds the connection already failed reports "Last error:
 * null". So this narrow match on OpenSSL's and Node's wording is a hint at best;
 * `checkEtcdAccess` asks the endpoints directly instead.
 */
const TLS_FAILURE_TEXT =
  /Last error: (?:Error: )?([^.]*(?:certificate|SSL alert|alert number)[^.]*)/i;

/** cockatiel's open circuit (etcd3's per-host breaker) marks its error with this property. */
function isBrokenCircuit(error: unknown): boolean {
  return (error as { isBrokenCircuitError?: unknown } | null)?.isBrokenCircuitError === true;
}

/**
 * Classifies an etcd3 error by its class (etcd3 maps etcd's messages and gRPC's status codes to
 * classes) into a problem with one plain line. `endpoints` only makes messages more precise.
 */
export function classifyEtcdError(error: unknown, endpoints: readonly string[] = []): EtcdProblem {
  const at = endpoints.length > 0 ? ` at ${endpoints.join(',')}` : '';
  const text = error instanceof Error ? error.message : String(error);
  if (error instanceof EtcdAuthenticationFailedError || error instanceof GRPCUnauthenticatedError) {
    return problem(
      'authentication',
      'etcd rejected the credentials (authentication failed) — check ETCD_USERNAME and ETCD_PASSWORD',
    );
  }
  if (error instanceof EtcdPermissionDeniedError) {
    return problem(
      'authorization',
      "etcd denied access to the key prefix (permission denied) — the etcd user (ETCD_USERNAME, or the client certificate's common name) needs a role with readwrite on ETCD_PREFIX",
    );
  }
  if (error instanceof GRPCFailedPreconditionError && text.includes(ETCD_AUTH_NOT_ENABLED)) {
    return problem(
      'auth-mismatch',
      'etcd has authentication disabled, but ETCD_USERNAME is set — unset ETCD_USERNAME and ETCD_PASSWORD, or enable authentication in etcd',
    );
  }
  if (error instanceof GRPCInvalidArgumentError && text.includes(ETCD_USER_NAME_EMPTY)) {
    return problem(
      'auth-mismatch',
      'etcd has authentication enabled and asks who we are — set ETCD_USERNAME and ETCD_PASSWORD',
    );
  }
  if (text.includes(ETCD_NO_SPACE)) {
    return problem(
      'no-space',
      `etcd is out of space (NOSPACE alarm) and refuses writes — ${NO_SPACE_FIX}`,
    );
  }
  if (error instanceof GRPCUnavailableError) {
    const tlsFailure = TLS_FAILURE_TEXT.exec(text)?.[1];
    if (tlsFailure !== undefined) {
      return problem(
        'tls',
        `TLS handshake with etcd${at} failed (${tlsFailure.trim()}) — check ETCD_CA_FILE, ETCD_CERT_FILE and ETCD_KEY_FILE`,
      );
    }
  }
  const reason = unreachableReason(error);
  if (reason !== undefined) return problem('unreachable', `etcd unreachable${at} (${reason})`);
  return problem('other', `etcd request failed: ${text}`);
}

/** Why etcd3 got no answer, in a few words; undefined for errors that are answers. */
function unreachableReason(error: unknown): string | undefined {
  if (error instanceof GRPCUnavailableError) return 'no connection';
  if (error instanceof GRPCDeadlineExceededError) return 'no answer before the call deadline';
  // The per-host breaker (connectEtcd: 1 s after three host failures in a row).
  if (isBrokenCircuit(error)) return 'every etcd endpoint failed its last requests';
  return undefined;
}

/**
 * Start-up refused: etcd will not let this member in, and retrying cannot change that. The
 * message is the problem's one line; the CLI prints it and exits 1.
 */
export class EtcdAccessError extends PoolError {
  declare readonly code: 'ETCD_ACCESS_REFUSED';
  constructor(readonly problem: EtcdProblem) {
    super('ETCD_ACCESS_REFUSED', `cannot start: ${problem.message}`);
    this.name = 'EtcdAccessError';
  }
}

/** Whether `error` is an EtcdAccessError (code `ETCD_ACCESS_REFUSED`): etcd refused us for good. */
export function isEtcdAccessError(error: unknown): error is EtcdAccessError {
  return error instanceof EtcdAccessError;
}

/** `classifyEtcdError(...).message`: one line for a log. */
export function describeEtcdError(error: unknown, endpoints: readonly string[] = []): string {
  return classifyEtcdError(error, endpoints).message;
}

/**
 * Proves that etcd answers and lets us read `prefix` and write `key`, with one transaction that
 * writes nothing: its condition (`version < 0`) never holds, but etcd checks the permissions of
 * both branches, so a missing write permission is refused here and not at the first claim.
 * Bounded by the call deadline (two tries when the first found no connection), plus one deadline to ask
 * the endpoints directly when etcd3 only says "unavailable" — a verdict on certificates, or
 * how each endpoint behaves.
 *
 * Resolves undefined when all is well, else the problem.
 */
export async function checkEtcdAccess(
  etcd: Etcd3,
  options: EtcdOptions,
  scope: { prefix: string; key: string },
): Promise<EtcdProblem | undefined> {
  try {
    await etcd
      .if(scope.key, 'Version', '<', 0)
      .then(etcd.put(scope.key).value(''))
      .else(etcd.getAll().prefix(scope.prefix).limit(1))
      .commit();
    return undefined;
  } catch (error) {
    const found = classifyEtcdError(error, options.endpoints);
    if (found.kind !== 'unreachable' && found.kind !== 'tls') return found;
    const requestsFail = `requests fail: ${unreachableReason(error) ?? 'see the retry logs'}`;
    const checks = await Promise.all(
      options.endpoints.map((endpoint) => checkEndpoint(endpoint, options, requestsFail)),
    );
    const tlsProblem = checks.find((check) => check.problem !== undefined)?.problem;
    // The endpoints' own answer outranks the hint in grpc-js's text.
    if (tlsProblem) return tlsProblem;
    const where = checks.map((check) => `${check.endpoint} (${check.detail})`).join(', ');
    return problem('unreachable', `etcd unreachable at ${where}`);
  }
}

interface EndpointCheck {
  endpoint: string;
  /** A certificate verdict: set only when the endpoint answered and TLS failed. */
  problem?: EtcdProblem;
  /** Otherwise how the endpoint behaved, in a few words. */
  detail: string;
}

/**
 * The alerts a TLS server sends when it refuses our certificate, as Node's error codes
 * (OpenSSL reason codes). Go's TLS stack (etcd) sends `bad certificate` both for an untrusted
 * certificate and for none at all.
 */
const CLIENT_CERTIFICATE_ALERTS: ReadonlySet<string> = new Set([
  'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE',
  'ERR_SSL_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_REVOKED',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN',
  'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA',
  'ERR_SSL_TLSV1_ALERT_ACCESS_DENIED',
  'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED',
]);

const NETWORK_ERRORS: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ENOTFOUND: 'host name not found',
  EAI_AGAIN: 'host name lookup failed',
  ETIMEDOUT: 'connection timed out',
};

/**
 * Connects to one endpoint as gRPC would — TCP, then for https TLS with our CA and client
 * certificate — and reports what happened, judged by error codes and socket state. etcd's
 * HTTP/2 server speaks first (its SETTINGS frame), so data after the handshake means it
 * accepted us; a server that refuses our certificate under TLS 1.3 says so only then, with an
 * alert. Bounded by the call deadline.
 */
function checkEndpoint(
  endpoint: string,
  options: EtcdOptions,
  requestsFail: string,
): Promise<EndpointCheck> {
  const url = new URL(endpoint);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = Number(url.port || '2379');
  const secure = url.protocol === 'https:';
  const material = options.tls;
  return new Promise((resolve) => {
    let connected = false;
    const socket = secure
      ? tls.connect({
          host,
          port,
          ALPNProtocols: ['h2'],
          ...(material ? { ca: material.ca } : {}),
          ...(material?.cert && material.key ? { cert: material.cert, key: material.key } : {}),
        })
      : net.connect({ host, port });
    const done = (check: Omit<EndpointCheck, 'endpoint'>) => {
      clearTimeout(timer);
      socket.removeAllListeners();
      socket.on('error', () => undefined);
      socket.destroy();
      resolve({ endpoint, ...check });
    };
    const timer = setTimeout(
      () =>
        done({
          detail: connected
            ? `connects, but no answer within ${options.callTimeoutMs} ms`
            : `no connection within ${options.callTimeoutMs} ms`,
        }),
      options.callTimeoutMs,
    );
    socket.once('connect', () => {
      connected = true;
      if (!secure) done({ detail: `accepts connections, but ${requestsFail}` });
    });
    socket.once('data', () => done({ detail: `answers, but ${requestsFail}` }));
    socket.once('error', (error: NodeJS.ErrnoException) => {
      const code = error.code ?? '';
      const authorizationError = secure ? (socket as tls.TLSSocket).authorizationError : undefined;
      if (authorizationError) {
        done({ detail: 'TLS failed', problem: serverCertificateProblem(endpoint, code, error) });
      } else if (CLIENT_CERTIFICATE_ALERTS.has(code)) {
        done({ detail: 'TLS failed', problem: clientCertificateProblem(endpoint, code, options) });
      } else if (connected && secure && code === 'ECONNRESET') {
        // A reset mid-handshake is what a plain-HTTP etcd does to a TLS client, but also what
        // a load balancer without backends may do: not a verdict.
        done({
          detail: 'closed the connection during the TLS handshake; is it serving plain http?',
        });
      } else {
        done({ detail: NETWORK_ERRORS[code] ?? (code || 'connection failed') });
      }
    });
  });
}

/** We do not trust the server's certificate (it is checked by Node against our CA). */
function serverCertificateProblem(endpoint: string, code: string, error: Error): EtcdProblem {
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return problem(
      'tls',
      `TLS handshake with etcd at ${endpoint} failed: its certificate does not name this host — use an ETCD_ENDPOINTS host name that the certificate names`,
    );
  }
  return problem(
    'tls',
    `TLS handshake with etcd at ${endpoint} failed: certificate not trusted (${code}: ${error.message}) — check ETCD_CA_FILE`,
  );
}

/** The server refused our client certificate, or wanted one and got none. */
function clientCertificateProblem(
  endpoint: string,
  code: string,
  options: EtcdOptions,
): EtcdProblem {
  const alert = code
    .replace(/^ERR_SSL_(?:SSLV3|TLSV1|TLSV13)_ALERT_/, '')
    .toLowerCase()
    .replaceAll('_', ' ');
  if (!options.tls?.cert) {
    return problem(
      'tls',
      `TLS handshake with etcd at ${endpoint} failed: etcd requires a client certificate (alert: ${alert}) — set ETCD_CERT_FILE and ETCD_KEY_FILE`,
    );
  }
  return problem(
    'tls',
    `TLS handshake with etcd at ${endpoint} failed: etcd did not accept the client certificate (alert: ${alert}) — check ETCD_CERT_FILE and ETCD_KEY_FILE: etcd must trust the CA that signed it`,
  );
}
