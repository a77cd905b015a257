/**
 * The member's pools, one per name in POOLS: for each, an election, the ticket sequence its
 * leader draws from and the work router that executes or forwards work — all sharing one etcd
 * client, one keep-alive thread, one forwarder and one handover gate. Nothing is started here:
 * the elections join when the member starts them.
 */
import type { Etcd3 } from 'etcd3';
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import { poolKeys } from '../etcd/keys.js';
import { PoolElection } from '../election/election.js';
import { HandoverGate } from '../election/preemption.js';
import { publishLeadership } from '../election/publishedLeads.js';
import { describeStrategy, type LeaderStrategy } from '../election/strategy.js';
import { reportStrategyDisagreement } from '../election/strategyAgreement.js';
import type { PoolRoutes } from '../http/poolAddress.js';
import type { LeaseThread } from '../membership/leaseThread.js';
import type { PoolMetrics } from '../metrics/metrics.js';
import { VERSION } from '../version.js';
import type { Forwarder } from '../work/forwarder.js';
import type { WorkHandler } from '../work/handler.js';
import { WorkRouter } from '../work/router.js';
import { etcdTicketMark } from '../work/ticketMark.js';
import { TicketSequence } from '../work/tickets.js';

/** What this member declares in its record of every pool, besides what config says. */
export interface MemberDeclaration {
  service: string;
  strategy: LeaderStrategy;
  /** False: routes work but never leads. */
  candidate: boolean;
  /** ISO time the member started: its `startedAt`, the same in every pool. */
  startedAt: string;
}

export interface SharedParts {
  etcd: Etcd3;
  leases: LeaseThread;
  forwarder: Forwarder;
  handler: WorkHandler;
  metrics: PoolMetrics;
  logger: Logger;
}

/**
 * Builds the pools in the order of POOLS (the first is the pool of /work) and keeps `leads` in
 * each of their member records equal to the pools this member leads (publishedLeads.ts).
 */
export function buildPools(
  config: Config,
  declared: MemberDeclaration,
  shared: SharedParts,
): PoolRoutes[] {
  const { etcd, leases, forwarder, handler, metrics, logger } = shared;
  const handovers = new HandoverGate();
  const pools = config.pools.map((pool) => {
    const keys = poolKeys(config.etcd.prefix, pool);
    const election = new PoolElection(etcd, {
      pool,
      keys,
      record: {
        id: config.memberId,
        url: config.advertiseUrl,
        startedAt: declared.startedAt,
        pid: process.pid,
        version: VERSION,
        weight: config.weight,
        labels: config.labels,
        leads: [],
        service: declared.service,
        strategy: describeStrategy(declared.strategy),
        candidate: declared.candidate,
      },
      leaseTtlSeconds: config.lease.ttlSeconds,
      safetyMarginMs: config.lease.safetyMarginMs,
      callTimeoutMs: config.etcd.callTimeoutMs,
      reconcileIntervalMs: config.reconcileIntervalMs,
      strategy: declared.strategy,
      preemptAfterMs: config.strategy.preemptAfterMs,
      handovers,
      readOnClaim: [keys.ticketHighWater],
      handoffTickets: config.ticketBlockSize,
      leases,
      logger: logger.child({ pool }),
      metrics,
    });
    const tickets = new TicketSequence(
      etcdTicketMark(etcd, keys.ticketHighWater, (term) => election.fenced(term)),
      election,
      config.ticketBlockSize,
      metrics,
      logger.child({ pool }),
    );
    // On the claim's own answer, not on `leaderChanged`, which waits for our view to see
    // the claim come back through the watch.
    election.on('claimed', (term, reads, handed) =>
      tickets.prefetch(term, reads && { kv: reads[0] }, handed),
    );
    reportStrategyDisagreement(election, logger.child({ pool }));
    const router = new WorkRouter(
      etcd,
      election,
      handler,
      tickets,
      forwarder,
      {
        leaderlessWaitMs: config.leaderlessWaitMs,
        maxHops: config.forwardMaxHops,
        forwardTimeoutMs: config.forwardTimeoutMs,
      },
      metrics,
      logger.child({ pool }),
    );
    return { election, router };
  });
  publishLeadership(pools.map((pool) => pool.election));
  return pools;
}
