/**
 * What the status page shows, gathered from the member's elections and metrics: the pools
 * (members, leader, term, timeline of leader changes) and what each route cost in etcd. The
 * page and its event stream read it through this small interface only.
 */
import type { PoolElection } from '../../election/election.js';
import type { PoolMetrics } from '../../metrics/metrics.js';
import { describePool, type PoolDescription } from '../poolDescription.js';

export interface StatusSnapshot {
  member: { id: string; url: string; version: string; startedAt: string };
  /** When the snapshot was taken (ISO): the right end of the leader timeline strip. */
  takenAt: string;
  pools: PoolDescription[];
  /** etcd requests sent by this member since it started, by gRPC operation (all purposes). */
  etcdRequests: Record<string, number>;
  /** Of those, the ones sent while serving work calls, by route (work, simple-work). */
  workEtcdRequests: Record<string, number>;
  /** Work calls served by this member since it started, by route (work, simple-work). */
  workCalls: Record<string, number>;
}

export interface StatusSource {
  snapshot(): Promise<StatusSnapshot>;
  /** Calls `onChange` whenever a pool's view or leadership may have changed; returns unsubscribe. */
  subscribe(onChange: () => void): () => void;
}

export function statusSource(options: {
  elections: readonly PoolElection[];
  metrics: PoolMetrics;
  member: StatusSnapshot['member'];
}): StatusSource {
  const { elections, metrics } = options;
  return {
    async snapshot() {
      const byLabel = async (
        counter:
          | typeof metrics.etcdRequests
          | typeof metrics.workRequests
          | typeof metrics.workEtcdRequests,
        label: string,
      ) => {
        const totals: Record<string, number> = {};
        for (const value of (await counter.get()).values) {
          const key = String(value.labels[label as keyof typeof value.labels] ?? '');
          totals[key] = (totals[key] ?? 0) + value.value;
        }
        return totals;
      };
      return {
        member: options.member,
        takenAt: new Date().toISOString(),
        pools: elections.map((election) => describePool(election)),
        etcdRequests: await byLabel(metrics.etcdRequests, 'operation'),
        workCalls: await byLabel(metrics.workRequests, 'route'),
        workEtcdRequests: await byLabel(metrics.workEtcdRequests, 'route'),
      };
    },
    subscribe(onChange) {
      for (const election of elections) {
        election.on('leaderChanged', onChange);
        election.view.on('change', onChange);
      }
      return () => {
        for (const election of elections) {
          election.off('leaderChanged', onChange);
          election.view.off('change', onChange);
        }
      };
    },
  };
}
