/**
 * The etcd connection. Every unary request gets a deadline: without one, etcd3 lets a request
 * hang 7-21 s while the cluster has no quorum, far longer than a lease TTL. Streams (watch,
 * keep-alive) get none, or the deadline would end them. The same hook counts every request by
 * operation, which is how `/metrics` shows what each route costs in etcd.
 */
import { Etcd3, type CallContext } from 'etcd3';

export interface EtcdOptions {
  endpoints: string[];
  callTimeoutMs: number;
  onRequest?: (operation: string) => void;
}

export function connectEtcd(options: EtcdOptions): Etcd3 {
  return new Etcd3({
    hosts: options.endpoints,
    dialTimeout: options.callTimeoutMs,
    // HTTP/2 pings find a connection to a frozen or cut-off etcd member, so its streams fail
    // and reconnect elsewhere. etcd refuses pings more often than every 5 s.
    grpcOptions: {
      'grpc.keepalive_time_ms': 10_000,
      'grpc.keepalive_timeout_ms': 3_000,
      'grpc.keepalive_permit_without_calls': 1,
    },
    defaultCallOptions: (context: CallContext) => {
      options.onRequest?.(context.method);
      return context.isStream ? {} : { deadline: Date.now() + options.callTimeoutMs };
    },
  });
}
