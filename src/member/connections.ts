/**
 * The member's connections to etcd and to the other members: the etcd client (every request
 * counted by operation, and by route while it serves work), the keep-alive thread with an etcd
 * client of its own, and the forwarder's connection pool to the leader. Opened once by
 * `PoolMember.start`; closed by `closeClients` (shutdown.ts), on shutdown or a failed start-up.
 */
import type { Etcd3 } from 'etcd3';
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import { connectEtcd, type EtcdOptions } from '../etcd/client.js';
import { openChannels, setEndpoints } from '../etcd/endpoints.js';
import { watchEtcdMembership } from '../etcd/membership.js';
import { currentWorkRoute } from '../etcd/requestPurpose.js';
import { LeaseThread } from '../membership/leaseThread.js';
import type { PoolMetrics } from '../metrics/metrics.js';
import { Forwarder } from '../work/forwarder.js';

export interface MemberConnections {
  etcd: Etcd3;
  /** What `etcd` was made with: the start-up diagnosis asks the endpoints with the same. */
  etcdOptions: EtcdOptions;
  /** Keep-alives on their own thread: a flood of requests on this one cannot delay them. */
  leases: LeaseThread;
  forwarder: Forwarder;
}

/** Opens the connections. Never blocks: the clients connect on their first request. */
export function openConnections(
  config: Config,
  metrics: PoolMetrics,
  logger: Logger,
): MemberConnections {
  const etcdOptions: EtcdOptions = {
    endpoints: config.etcd.endpoints,
    callTimeoutMs: config.etcd.callTimeoutMs,
    ...(config.etcd.tls ? { tls: config.etcd.tls } : {}),
    ...(config.etcd.auth ? { auth: config.etcd.auth } : {}),
    onRequest: (operation) => {
      metrics.etcdRequests.inc({ operation });
      const route = currentWorkRoute();
      if (route) metrics.workEtcdRequests.inc({ route });
    },
  };
  const etcd = connectEtcd(etcdOptions);
  openChannels(etcd);
  return {
    etcd,
    etcdOptions,
    leases: new LeaseThread(etcd, etcdOptions, logger),
    forwarder: new Forwarder(config.forwardTimeoutMs, config.forwardToken, (open) =>
      metrics.memberLinks.set({ direction: 'out' }, open),
    ),
  };
}

/**
 * Follows etcd's member list every ETCD_MEMBERSHIP_CHECK_MS (etcd/membership.ts): the client
 * and the keep-alive thread switch to the URLs etcd lists, so a cluster whose members were
 * replaced one by one stays reachable. Returns the function that stops following.
 */
export function followEtcdMembers(
  { etcd, leases }: MemberConnections,
  config: Config,
  logger: Logger,
): () => void {
  return watchEtcdMembership(
    etcd,
    config.etcd.endpoints,
    logger,
    config.etcd.membershipCheckMs,
    (urls) => {
      const change = setEndpoints(etcd, urls);
      openChannels(etcd);
      leases.setEndpoints(urls);
      return change;
    },
  );
}
