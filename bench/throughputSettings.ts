/**
 * What the throughput benchmark (bench/throughput.ts) loads and for how long: the targets (two
 * references, eleven runs against the pool: direct, via a follower, via nginx, via HAProxy and
 * via a bare node:http hop at 10 and at 1 connection, and /simple-work), and the rounds,
 * connections and durations of a full and a smoke run.
 *
 * Units: durations in seconds, connections per autocannon run. Nothing here blocks.
 */

export type TargetKey =
  | 'bare'
  | 'bareHop'
  | 'leader'
  | 'follower'
  | 'nginx'
  | 'haproxy'
  | 'nodeHop'
  | 'simple'
  | 'leaderOne'
  | 'followerOne'
  | 'nginxOne'
  | 'haproxyOne'
  | 'nodeHopOne';

/** The process that serves a target's requests, and counts them: the bare server or the leader. */
export type ServerKey = 'bare' | 'leader';
/**
 * The process a target's requests pass through on the way: the bare forward, a follower,
 * nginx, HAProxy, the bare node:http hop.
 */
export type HopKey = 'forward' | 'follower' | 'nginx' | 'haproxy' | 'node';

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
  server: ServerKey;
  hop?: HopKey;
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
  // Per round 8 × 9 s + 5 × 4 s of load; 3 rounds, pauses and start-up ≈ 4 min 50 s: the
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

/** Where the targets answer: the references, the two pool members under load, the proxies. */
export interface TargetUrls {
  bare: string;
  hop: string;
  leader: string;
  follower: string;
  nginx: string;
  haproxy: string;
  nodeHop: string;
}

/**
 * Every target in the order of a round: the references first, then the pool with `connections`
 * connections, then direct, via a follower, via nginx and via HAProxy again with one.
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
      server: 'bare',
    },
    {
      key: 'bareHop',
      name: 'bare Express via a bare forward',
      label: 'bare + hop',
      url: `${urls.hop}/bare?payload=bench`,
      connections,
      baseline: 'bare',
      pool: false,
      server: 'bare',
      hop: 'forward',
    },
    {
      key: 'leader',
      name: '/work on the leader',
      label: 'leader',
      url: `${urls.leader}/work?payload=bench`,
      connections,
      baseline: 'bare',
      pool: true,
      server: 'leader',
    },
    {
      key: 'follower',
      name: '/work via a follower',
      label: 'follower',
      url: `${urls.follower}/work?payload=bench`,
      connections,
      baseline: 'leader',
      pool: true,
      server: 'leader',
      hop: 'follower',
    },
    {
      key: 'nginx',
      name: '/work via nginx',
      label: 'nginx',
      url: `${urls.nginx}/work?payload=bench`,
      connections,
      baseline: 'leader',
      pool: true,
      server: 'leader',
      hop: 'nginx',
    },
    {
      key: 'haproxy',
      name: '/work via HAProxy',
      label: 'HAProxy',
      url: `${urls.haproxy}/work?payload=bench`,
      connections,
      baseline: 'leader',
      pool: true,
      server: 'leader',
      hop: 'haproxy',
    },
    {
      key: 'nodeHop',
      name: '/work via a bare node:http hop',
      label: 'node:http',
      url: `${urls.nodeHop}/work?payload=bench`,
      connections,
      baseline: 'leader',
      pool: true,
      server: 'leader',
      hop: 'node',
    },
    {
      key: 'simple',
      name: '/simple-work via a follower',
      label: 'simple-work',
      url: `${urls.follower}/simple-work?payload=bench`,
      connections,
      baseline: 'leader',
      pool: true,
      server: 'leader',
      hop: 'follower',
    },
    {
      key: 'leaderOne',
      name: '/work on the leader',
      label: 'leader (1)',
      url: `${urls.leader}/work?payload=bench`,
      connections: 1,
      pool: true,
      server: 'leader',
    },
    {
      key: 'followerOne',
      name: '/work via a follower',
      label: 'follower (1)',
      url: `${urls.follower}/work?payload=bench`,
      connections: 1,
      baseline: 'leaderOne',
      pool: true,
      server: 'leader',
      hop: 'follower',
    },
    {
      key: 'nginxOne',
      name: '/work via nginx',
      label: 'nginx (1)',
      url: `${urls.nginx}/work?payload=bench`,
      connections: 1,
      baseline: 'leaderOne',
      pool: true,
      server: 'leader',
      hop: 'nginx',
    },
    {
      key: 'haproxyOne',
      name: '/work via HAProxy',
      label: 'HAProxy (1)',
      url: `${urls.haproxy}/work?payload=bench`,
      connections: 1,
      baseline: 'leaderOne',
      pool: true,
      server: 'leader',
      hop: 'haproxy',
    },
    {
      key: 'nodeHopOne',
      name: '/work via a bare node:http hop',
      label: 'node:http (1)',
      url: `${urls.nodeHop}/work?payload=bench`,
      connections: 1,
      baseline: 'leaderOne',
      pool: true,
      server: 'leader',
      hop: 'node',
    },
  ];
}
