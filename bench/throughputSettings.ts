/**
 * What the throughput benchmark (bench/throughput.ts) loads and for how long: the targets (two
 * references and five runs against the pool), and the rounds, connections and durations of a
 * full and a smoke run.
 *
 * Units: durations in seconds, connections per autocannon run. Nothing here blocks.
 */

export type TargetKey =
  | 'bare'
  | 'bareHop'
  | 'leader'
  | 'follower'
  | 'simple'
  | 'leaderOne'
  | 'followerOne';

export interface Target {
  key: TargetKey;
  name: string;
  /** Short, for the plots' category axis. */
  label: string;
  url: string;
  connections: number;
  /** The run this one's req/s is divided by, in the same round, for the `ratio` column. */
  baseline?: TargetKey;
  /** The pool is loaded: the bare runs are the ones during which it rests. */
  pool: boolean;
}

export interface Settings {
  rounds: number;
  connections: number;
  durationSeconds: number;
  warmupSeconds: number;
  /** The unloaded pair: one connection, so latency is the path's and not a queue's. */
  latencyDurationSeconds: number;
  latencyWarmupSeconds: number;
}

export const SETTINGS: Record<'smoke' | 'full', Settings> = {
  smoke: {
    rounds: 1,
    connections: 10,
    durationSeconds: 0.7,
    warmupSeconds: 0.3,
    latencyDurationSeconds: 0.7,
    latencyWarmupSeconds: 0.3,
  },
  // Per round 5 × 9 s + 2 × 4 s of load; 3 rounds, pauses and start-up ≈ 2 min 55 s: the
  // budget of this section.
  full: {
    rounds: 3,
    connections: 10,
    durationSeconds: 8,
    warmupSeconds: 1,
    latencyDurationSeconds: 3,
    latencyWarmupSeconds: 1,
  },
};

/** Where the targets answer: the references and the two pool members under load. */
export interface TargetUrls {
  bare: string;
  hop: string;
  leader: string;
  follower: string;
}

/**
 * Every target in the order of a round: the references first, then the pool with `connections`
 * connections, then the unloaded pair with one.
 */
export function loadTargets(urls: TargetUrls, connections: number): Target[] {
  return [
    {
      key: 'bare',
      name: 'bare Express (ceiling)',
      label: 'bare Express',
      url: `${urls.bare}/bare?payload=bench`,
      connections,
      pool: false,
    },
    {
      key: 'bareHop',
      name: 'bare Express via a bare forward',
      label: 'bare + hop',
      url: `${urls.hop}/bare?payload=bench`,
      connections,
      baseline: 'bare',
      pool: false,
    },
    {
      key: 'leader',
      name: '/work on the leader',
      label: 'leader',
      url: `${urls.leader}/work?payload=bench`,
      connections,
      baseline: 'bare',
      pool: true,
    },
    {
      key: 'follower',
      name: '/work via a follower',
      label: 'follower',
      url: `${urls.follower}/work?payload=bench`,
      connections,
      baseline: 'leader',
      pool: true,
    },
    {
      key: 'simple',
      name: '/simple-work via a follower',
      label: 'simple-work',
      url: `${urls.follower}/simple-work?payload=bench`,
      connections,
      baseline: 'leader',
      pool: true,
    },
    {
      key: 'leaderOne',
      name: '/work on the leader',
      label: 'leader (1)',
      url: `${urls.leader}/work?payload=bench`,
      connections: 1,
      pool: true,
    },
    {
      key: 'followerOne',
      name: '/work via a follower',
      label: 'follower (1)',
      url: `${urls.follower}/work?payload=bench`,
      connections: 1,
      baseline: 'leaderOne',
      pool: true,
    },
  ];
}
