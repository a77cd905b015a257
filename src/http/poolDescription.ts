/**
 * The `:observer` view of one pool as this member sees it: its service and strategy, this
 * member, the leader and its term, why there is none, the timeline and the members. It is the
 * body of GET /pool and /pools (poolViews.ts) and what the status page shows (statusPage/status.ts).
 */
import { whyNoCandidate } from '../election/candidates.js';
import type { PoolElection } from '../election/election.js';
import {
  poolServiceMember,
  poolStrategyMember,
  strategyDiffers,
} from '../election/poolIdentity.js';
import type { WorkRouter } from '../work/router.js';

/** What `describePool` returns: one pool in GET /pools, the whole body of GET /pool. */
export type PoolDescription = ReturnType<typeof describePool>;

/**
 * The `:observer` view of the pool as this member sees it; with `router`, whether the leader
 * could be reached at its URL the last time this member forwarded to it.
 */
export function describePool(election: PoolElection, router?: WorkRouter) {
  const leader = election.leader();
  const view = election.view;
  const poolStrategy = poolStrategyMember(view.members)?.record.strategy;
  const own = election.memberRecord;
  return {
    pool: election.pool,
    /** The service the pool belongs to, and its strategy: its oldest member's naming one. */
    service: poolServiceMember(view.members)?.record.service ?? null,
    strategy: poolStrategy ?? null,
    self: {
      id: election.memberId,
      memberKey: election.memberKey ?? null,
      isLeader: election.isLeader(),
      ready: election.isReady(),
      leaseTimeLeftMs: election.leaseTimeLeftMs(),
      service: own.service ?? null,
      strategy: own.strategy ?? null,
      strategyDiffers: strategyDiffers(own.strategy, poolStrategy),
      candidate: own.candidate,
    },
    leader: leader
      ? {
          id: leader.id,
          url: leader.url,
          memberKey: leader.memberKey,
          term: Number(leader.term),
          unreachable: router?.unreachableReason(leader.url) ?? null,
        }
      : null,
    term: leader ? Number(leader.term) : null,
    /** Why the pool has no leader, where that is not a matter of time (no member may lead). */
    noLeaderReason: leader ? null : (whyNoCandidate(view.members) ?? null),
    revision: Number(view.revision),
    timeline: election.history,
    members: view.members.map((member) => ({
      id: member.record.id,
      url: member.record.url,
      memberKey: member.key,
      createRevision: Number(member.createRevision),
      startedAt: member.record.startedAt,
      pid: member.record.pid,
      version: member.record.version,
      weight: member.record.weight,
      labels: member.record.labels,
      leads: member.record.leads,
      service: member.record.service ?? null,
      strategy: member.record.strategy ?? null,
      strategyDiffers: strategyDiffers(member.record.strategy, poolStrategy),
      candidate: member.record.candidate,
      isLeader: leader?.memberKey === member.key,
    })),
  };
}
