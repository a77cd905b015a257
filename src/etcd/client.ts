/**
 * The etcd connection. Every unary request gets a deadline: without one, etcd3 lets a request
 * hang 7-21 s while the cluster has no quorum, far longer than a lease TTL. Streams (watch,
 * keep-alive) get none, or the deadline would end them. The same hook counts every request by
 * operation, which is how `/metrics` shows what each route costs in etcd.
 *
 * Fault handling (see `faultHandling` below): a host that does not answer is skipped for a
 * second; a request etcd refuses (NOSPACE, a timeout of its own) never blocks the keep-alives
 * that hold the member's lease.
 *
 * Security: with `tls`, gRPC speaks TLS, trusts only the given CA and presents the client
 * certificate if there is one (etcd's `--client-cert-auth`). With `auth`, etcd3 trades the user
 * name and password for a token before the first request (the `authenticate` call, under the
 * same deadline) and again whenever etcd calls the token invalid — an etcd restart forgets
 * every token.
 */
import { circuitBreaker, ConsecutiveBreaker, handleWhen, noop, retry } from 'cockatiel';
import {
  ClientClosedError,
  Etcd3,
  GRPCDeadlineExceededError,
  GRPCUnavailableError,
  type CallContext,
  type IOptions,
} from 'etcd3';

export interface EtcdTls {
  /** PEM CA bundle that signs the etcd server certificates. */
  ca: Buffer;
  /** PEM client certificate and its key, for etcd's --client-cert-auth. */
  cert?: Buffer;
  key?: Buffer;
}

export interface EtcdAuth {
  username: string;
  password: string;
}

export interface EtcdOptions {
  endpoints: string[];
  callTimeoutMs: number;
  tls?: EtcdTls;
  auth?: EtcdAuth;
  onRequest?: (operation: string) => void;
}

export function connectEtcd(options: EtcdOptions): Etcd3 {
  const { tls: material, auth } = options;
  // Kept: the per-host policy below depends on how many hosts there are now, and
  // etcd/endpoints.ts changes them while the client runs.
  const settings: IOptions & { hosts: string[] } = {
    hosts: [...options.endpoints],
    dialTimeout: options.callTimeoutMs,
    ...(material
      ? {
          credentials: {
            rootCertificate: material.ca,
            ...(material.cert ? { certChain: material.cert } : {}),
            ...(material.key ? { privateKey: material.key } : {}),
          },
        }
      : {}),
    ...(auth ? { auth: { username: auth.username, password: auth.password } } : {}),
    // etcd3's default stops using a host for 5 s after three failed calls of any kind in a
    // row, lease keep-alives included: three writes refused for NOSPACE then cost every member
    // its lease. Here only failures of the host count (no connection, or no answer before our
    // deadline; never an answer of etcd's, "etcdserver: ..."), a host is tried again after 1 s,
    // and with one endpoint there is nothing to skip to. A call that found no connection (or a
    // host closed because etcd no longer lists it) is tried once more, on another host; each
    // try has its own deadline.
    faultHandling: {
      host: () =>
        settings.hosts.length > 1
          ? circuitBreaker(handleWhen(isHostFailure), {
              halfOpenAfter: 1000,
              breaker: new ConsecutiveBreaker(3),
            })
          : noop,
      global: retry(handleWhen(isNotConnected), { maxAttempts: 1 }),
    },
    // HTTP/2 pings find a connection to a frozen or cut-off etcd member, so its streams fail
    // and reconnect elsewhere. etcd refuses pings more often than every 5 s.
    grpcOptions: {
      'grpc.keepalive_time_ms': 10_000,
      'grpc.keepalive_timeout_ms': 3_000,
      'grpc.keepalive_permit_without_calls': 1,
    },
    // The context of the `authenticate` call carries the password in `params`: only the
    // method name leaves this hook.
    defaultCallOptions: (context: CallContext) => {
      options.onRequest?.(context.method);
      return context.isStream ? {} : { deadline: Date.now() + options.callTimeoutMs };
    },
  };
  return new Etcd3(settings);
}

/** An answer of etcd itself (it reached the server), as opposed to a failure of the host. */
function isEtcdAnswer(error: Error): boolean {
  return error.message.includes('etcdserver:');
}

/** No connection to the host (nothing was sent), or a host closed since the call began. */
function isNotConnected(error: Error): boolean {
  return (
    (error instanceof GRPCUnavailableError && !isEtcdAnswer(error)) ||
    error instanceof ClientClosedError
  );
}

/** The host failed: no connection, or no answer before the call's deadline. */
function isHostFailure(error: Error): boolean {
  return (
    isNotConnected(error) || (error instanceof GRPCDeadlineExceededError && !isEtcdAnswer(error))
  );
}
