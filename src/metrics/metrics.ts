/**
 * The app's own metrics, prefix `service_pool_`, in a registry of their own so that
 * `promtool check metrics` can lint them apart from prom-client's Node defaults (three of
 * which it rejects). `/metrics` serves both registries merged.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

const LATENCY_BUCKETS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];
const FAILOVER_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 7.5, 10, 15, 30];

export interface PoolMetrics {
  readonly registry: Registry;
  readonly isLeader: Gauge<'pool'>;
  readonly leaderInfo: Gauge<'pool' | 'leader_id'>;
  readonly members: Gauge<'pool'>;
  readonly term: Gauge<'pool'>;
  readonly leaderChanges: Counter<'pool'>;
  readonly lastLeaderChange: Gauge<'pool'>;
  readonly failoverDuration: Histogram<'pool' | 'cause'>;
  readonly leaderlessDuration: Histogram<'pool'>;
  readonly workRequests: Counter<'route' | 'role' | 'outcome'>;
  readonly workDuration: Histogram<'route' | 'role'>;
  readonly workPending: Gauge;
  readonly workShed: Counter;
  readonly forwardDuration: Histogram<'pool'>;
  readonly forwardRetries: Counter<'pool' | 'reason'>;
  readonly forwardsRefused: Counter<'pool'>;
  readonly memberLinks: Gauge<'direction'>;
  readonly strategyFallbacks: Counter<'pool' | 'reason'>;
  readonly keepAliveFailures: Counter<'pool'>;
  readonly leaseTimeLeft: Gauge<'pool'>;
  readonly leaseRenewalTimeLeft: Histogram<'pool'>;
  readonly watchResyncs: Counter<'pool' | 'reason'>;
  readonly invalidRecords: Counter<'pool' | 'kind'>;
  readonly etcdRequests: Counter<'operation'>;
  readonly workEtcdRequests: Counter<'route'>;
  readonly ticketBlocks: Counter<'pool'>;
  readonly buildInfo: Gauge<'version' | 'node_version'>;
}

export function createMetrics(version: string): PoolMetrics {
  const registry = new Registry();
  const registers = [registry];
  const metrics: PoolMetrics = {
    registry,
    isLeader: new Gauge({
      name: 'service_pool_is_leader',
      help: '1 when this member acts as the pool leader, else 0.',
      labelNames: ['pool'],
      registers,
    }),
    leaderInfo: new Gauge({
      name: 'service_pool_leader_info',
      help: 'The current leader as this member sees it (value 1, leader in the label).',
      labelNames: ['pool', 'leader_id'],
      registers,
    }),
    members: new Gauge({
      name: 'service_pool_members',
      help: 'Valid members registered in the pool.',
      labelNames: ['pool'],
      registers,
    }),
    term: new Gauge({
      name: 'service_pool_term',
      help: 'Revision of the current leader claim (the fencing token; each new claim has a higher one); 0 without a leader.',
      labelNames: ['pool'],
      registers,
    }),
    leaderChanges: new Counter({
      name: 'service_pool_leader_changes_total',
      help: 'New leader terms this member saw after one it knew; the leader it finds at start-up is not a change.',
      labelNames: ['pool'],
      registers,
    }),
    lastLeaderChange: new Gauge({
      name: 'service_pool_last_leader_change_timestamp_seconds',
      help: "Unix time the current leader claimed the pool (the claim's own time, alike on every member).",
      labelNames: ['pool'],
      registers,
    }),
    failoverDuration: new Histogram({
      name: 'service_pool_failover_duration_seconds',
      help: "The outage of a leader change, by why the old claim ended: from the old leader's last sign of life to this member seeing the new leader.",
      labelNames: ['pool', 'cause'],
      buckets: FAILOVER_BUCKETS,
      registers,
    }),
    leaderlessDuration: new Histogram({
      name: 'service_pool_leaderless_seconds',
      help: 'Time without a leader claim: from the old claim vanishing to a new claim, as observed; 0 for a claim handed over in one write.',
      labelNames: ['pool'],
      buckets: FAILOVER_BUCKETS,
      registers,
    }),
    workRequests: new Counter({
      name: 'service_pool_work_requests_total',
      help: 'Work requests by route, role of this member and outcome.',
      labelNames: ['route', 'role', 'outcome'],
      registers,
    }),
    workPending: new Gauge({
      name: 'service_pool_work_pending',
      help: 'Work requests this member holds or has in flight now (at most MAX_PENDING_WORK).',
      registers,
    }),
    memberLinks: new Gauge({
      name: 'service_pool_member_links',
      help: 'Member links open now: out, to the members this one forwards to; in, from the members that forward here.',
      labelNames: ['direction'],
      registers,
    }),
    workShed: new Counter({
      name: 'service_pool_work_shed_total',
      help: 'Work requests refused at once (503 OVERLOADED) because MAX_PENDING_WORK were pending.',
      registers,
    }),
    workDuration: new Histogram({
      name: 'service_pool_work_duration_seconds',
      help: 'Duration of work requests as served by this member.',
      labelNames: ['route', 'role'],
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    forwardDuration: new Histogram({
      name: 'service_pool_forward_duration_seconds',
      help: 'Duration of one forward from this member to the leader.',
      labelNames: ['pool'],
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    forwardRetries: new Counter({
      name: 'service_pool_forward_retries_total',
      help: 'Forwards retried because the target was not (or no longer) the leader.',
      labelNames: ['pool', 'reason'],
      registers,
    }),
    strategyFallbacks: new Counter({
      name: 'service_pool_strategy_fallbacks_total',
      help: 'Times the leader strategy failed (threw, slow, named no member) and oldest decided.',
      labelNames: ['pool', 'reason'],
      registers,
    }),
    forwardsRefused: new Counter({
      name: 'service_pool_forwards_refused_total',
      help: 'Forwards refused because they lacked the shared FORWARD_TOKEN (answered 401).',
      labelNames: ['pool'],
      registers,
    }),
    keepAliveFailures: new Counter({
      name: 'service_pool_keepalive_failures_total',
      help: 'Lease keep-alives that failed or went unanswered.',
      labelNames: ['pool'],
      registers,
    }),
    leaseTimeLeft: new Gauge({
      name: 'service_pool_lease_time_left_seconds',
      help: 'Time until the local lease deadline (last keep-alive sent + TTL).',
      labelNames: ['pool'],
      registers,
    }),
    leaseRenewalTimeLeft: new Histogram({
      name: 'service_pool_lease_renewal_time_left_seconds',
      help: 'Time the lease had left when a keep-alive answer renewed it: the margin by which renewals beat expiry.',
      labelNames: ['pool'],
      buckets: [0.1, 0.25, 0.5, 1, 1.5, 2, 3, 5, 10, 20, 30, 60],
      registers,
    }),
    watchResyncs: new Counter({
      name: 'service_pool_watch_resyncs_total',
      help: 'Full re-reads of the pool followed by a new watch, by reason.',
      labelNames: ['pool', 'reason'],
      registers,
    }),
    invalidRecords: new Counter({
      name: 'service_pool_invalid_records_total',
      help: 'Invalid or foreign values found under the pool prefix (ignored).',
      labelNames: ['pool', 'kind'],
      registers,
    }),
    workEtcdRequests: new Counter({
      name: 'service_pool_work_etcd_requests_total',
      help: 'Requests sent to etcd while serving work calls, by route (the rest is the background: registration, keep-alives, watch, reconcile, claims).',
      labelNames: ['route'],
      registers,
    }),
    etcdRequests: new Counter({
      name: 'service_pool_etcd_requests_total',
      help: 'Requests sent to etcd, by gRPC operation.',
      labelNames: ['operation'],
      registers,
    }),
    ticketBlocks: new Counter({
      name: 'service_pool_ticket_blocks_total',
      help: 'Ticket blocks reserved in etcd by this member as leader.',
      labelNames: ['pool'],
      registers,
    }),
    buildInfo: new Gauge({
      name: 'service_pool_build_info',
      help: 'Version of service-pool-leader and Node.js (value 1).',
      labelNames: ['version', 'node_version'],
      registers,
    }),
  };
  metrics.buildInfo.set({ version, node_version: process.version }, 1);
  return metrics;
}

/** prom-client's default Node metrics, in their own registry. */
export function createNodeMetricsRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return registry;
}
