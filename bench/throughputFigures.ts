/**
 * From the measured runs of the throughput benchmark to the figures its report states — the
 * consistency checks between what the load generator saw and what the server side counted:
 *
 * - per target: medians over rounds (req/s, p50, p99), and ratios taken within a round;
 * - the forward's p99 overhead, follower less leader in the same round;
 * - etcd requests per call: the members' own counts around each run, less the pool's rate at
 *   rest (measured during the bare runs, when the pool gets no work) and less the ticket
 *   blocks (a range and a txn each), divided by the calls the leader executed (its tickets,
 *   not the load generator's count, which leaves out the calls abandoned in flight);
 * - the jitter of that estimate, and the tickets' cost in etcd writes per 1000.
 *
 * Units: ms, seconds, requests per second; counts are whole requests, calls or tickets. A pure
 * function of the runs: nothing here blocks.
 */
import type { LoadFigures } from './loadgen.js';
import { summarize } from './stats.js';
import { littlesRatio, type RowTiming } from './throughputChecks.js';
import type { Target, TargetKey } from './throughputSettings.js';

/** What reserving one ticket block costs: a range (the high-water mark), then a fenced txn. */
const TICKET_BLOCK_REQUESTS = 2;

/** One measured run of one target. */
export interface RunRecord {
  round: number;
  target: TargetKey;
  load: LoadFigures;
  /** Seconds between the counter reads around the run (the window the deltas cover). */
  windowSeconds: number;
  /** Deltas over the window, by member id, by operation. */
  etcdByMember: Record<string, Record<string, number>>;
  etcdRequests: number;
  /** Ticket blocks reserved at the leader over the window. */
  ticketBlocks: number;
  /** Tickets issued over the window (from the tickets of two probe calls around it). */
  tickets: number;
  /** Requests the serving process answered over the run, by its own count (the leader: tickets). */
  served: number;
  /** CPU time (ms) of the serving process (the leader, the bare server) over the run. */
  serverCpuMs: number;
  /** CPU time (ms) of the hop (follower, a proxy, bare forward); undefined: direct. */
  hopCpuMs: number | undefined;
}

export interface TargetSummary {
  key: TargetKey;
  name: string;
  label: string;
  connections: number;
  baseline: TargetKey | undefined;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** Median over rounds of req/s ÷ the baseline's req/s in the same round. */
  ratio: number | undefined;
  /** Median over rounds of req/s × mean latency ÷ connections (Little's law: ≈ 1). */
  littlesRatio: number;
  /** Median over rounds of the serving process's CPU per request it served, in µs. */
  serverCpuPerRequestUs: number;
  /** The same for the hop, per request it passed; undefined: direct. */
  hopCpuPerRequestUs: number | undefined;
  /** Requests served over every round, by the server side's own count. */
  served: number;
  /** Completed in the measured runs, as the load generator counted them. */
  requests: number;
  failed: number;
  /**
   * Calls the leader executed in the measured windows (tickets): the load generator's, and
   * also those it abandoned in flight when a run ended. The denominator of the etcd figures.
   */
  calls: number;
  etcdRequests: number;
  /** Less the members' background and the ticket blocks, over every run: routing's own. */
  etcdExcess: number;
  /** The members' background expected over the same windows. */
  etcdBackground: number;
  /** etcd requests per call, as counted. */
  etcdPerCall: number;
  /** Less the members' background rate over the same window. */
  etcdPerCallNet: number;
  /** Less the background and the ticket blocks' range and txn: what routing costs. */
  etcdPerCallRouting: number;
}

/** What the report states, beside the runs themselves. */
export interface ThroughputFigures {
  summaries: TargetSummary[];
  /** The pool's etcd requests per second at rest: the bare runs load only the bare servers. */
  backgroundEtcdPerSecond: number;
  /**
   * Median over rounds of p99 via the follower less p99 on the leader, in the same round; and
   * via nginx less on the leader (10 connections).
   */
  p99OverheadMs: { loaded: number; oneConnection: number; nginx: number };
  /**
   * /work's own etcd requests, every /work run together: per call as counted (`tracked`), and
   * routing's (`routing`: the `trackedExcess` over rest and ticket blocks, per call), with the
   * margin within which that excess is the jitter of the requests at rest.
   */
  etcdPerCall: { tracked: number; routing: number; trackedExcess: number; jitter: number };
  /** Calls of every /work run together: the denominator of `etcdPerCall`. */
  trackedCalls: number;
  tickets: {
    /** Over every run that loads the pool, bracketed by the probes. */
    tickets: number;
    ticketBlocks: number;
    /** Median over rounds of /work on the leader. */
    ticketsPerSecond: number;
    /** Each block is one write: the fenced txn that raises the high-water mark. */
    writesPer1000: number;
    /** etcd requests at the leader per 1000 tickets, less its rate at rest. */
    leaderRequestsPer1000: number;
  };
}

/** What the consistency checks (bench/throughputChecks.ts) need of one run. */
export function runTiming(target: Target, run: RunRecord): RowTiming {
  return {
    row: `${target.name}, ${target.connections} conn., round ${run.round}`,
    connections: target.connections,
    requestsPerSecond: run.load.requestsPerSecond,
    meanLatencyMs: run.load.latencyMs.mean,
    clientRequests: run.load.requests,
    serverRequests: run.served,
  };
}

/** Sums of counts, over runs or over a record's operations. */
export const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
export const total = (values: Record<string, number>) => sum(Object.values(values));
const median = (values: number[]) => summarize(values)?.median ?? NaN;

/** The figures of `runs` (every round of every target); `leaderId` is the member that led. */
export function throughputFigures(
  targets: Target[],
  runs: RunRecord[],
  leaderId: string,
): ThroughputFigures {
  const of = (key: TargetKey) => runs.filter((run) => run.target === key);
  const inRound = (key: TargetKey, round: number) =>
    runs.find((run) => run.target === key && run.round === round);
  const poolKeys = new Set(targets.filter((t) => t.pool).map((t) => t.key));
  const poolRuns = runs.filter((run) => poolKeys.has(run.target));
  const restRuns = runs.filter((run) => !poolKeys.has(run.target));
  const restSeconds = sum(restRuns.map((run) => run.windowSeconds));

  // The pool's etcd requests per second at rest: the bare runs load only the bare servers.
  const backgroundPerSecond = sum(restRuns.map((run) => run.etcdRequests)) / restSeconds;

  const summaries: TargetSummary[] = targets.map((target) => {
    const mine = of(target.key);
    const requests = sum(mine.map((run) => run.load.requests));
    const calls = sum(mine.map((run) => run.tickets));
    const etcdRequests = sum(mine.map((run) => run.etcdRequests));
    const background = backgroundPerSecond * sum(mine.map((run) => run.windowSeconds));
    const blocks = sum(mine.map((run) => run.ticketBlocks));
    const ratios = mine.flatMap((run) => {
      const base = target.baseline && inRound(target.baseline, run.round);
      return base ? [run.load.requestsPerSecond / base.load.requestsPerSecond] : [];
    });
    return {
      key: target.key,
      name: target.name,
      label: target.label,
      connections: target.connections,
      baseline: target.baseline,
      requestsPerSecond: median(mine.map((run) => run.load.requestsPerSecond)),
      p50Ms: median(mine.map((run) => run.load.latencyMs.p50)),
      p99Ms: median(mine.map((run) => run.load.latencyMs.p99)),
      ratio: ratios.length > 0 ? median(ratios) : undefined,
      littlesRatio: median(mine.map((run) => littlesRatio(runTiming(target, run)))),
      serverCpuPerRequestUs: median(mine.map((run) => (run.serverCpuMs * 1000) / run.served)),
      hopCpuPerRequestUs:
        target.hop === undefined
          ? undefined
          : median(mine.map((run) => ((run.hopCpuMs ?? NaN) * 1000) / run.served)),
      served: sum(mine.map((run) => run.served)),
      requests,
      failed: sum(mine.map((run) => run.load.non2xx + run.load.errors)),
      calls,
      etcdRequests,
      etcdExcess: etcdRequests - background - TICKET_BLOCK_REQUESTS * blocks,
      etcdBackground: background,
      etcdPerCall: etcdRequests / calls,
      etcdPerCallNet: (etcdRequests - background) / calls,
      etcdPerCallRouting: (etcdRequests - background - TICKET_BLOCK_REQUESTS * blocks) / calls,
    };
  });
  const p99Overhead = (key: TargetKey, baseline: TargetKey) =>
    median(
      of(key).flatMap((run) => {
        const base = inRound(baseline, run.round);
        return base ? [run.load.latencyMs.p99 - base.load.latencyMs.p99] : [];
      }),
    );

  // /work's own etcd requests, every /work run on the pool together.
  const tracked = summaries.filter((s) => poolKeys.has(s.key) && s.key !== 'simple');
  const trackedCalls = sum(tracked.map((s) => s.calls));
  const trackedExcess = sum(tracked.map((s) => s.etcdExcess));
  const routingPerCall = trackedExcess / trackedCalls;
  const trackedPerCall = sum(tracked.map((s) => s.etcdRequests)) / trackedCalls;
  // The requests at rest come from timers (reconciling reads, keep-alive streams): how many
  // fall into a window varies by a few. Three standard deviations of a Poisson count of the
  // expected background is the margin within which an excess is that jitter, not routing.
  const jitter = Math.max(1, 3 * Math.sqrt(sum(tracked.map((s) => s.etcdBackground))));

  // Tickets: every run's, bracketed by the probes; tickets/s from /work on the leader.
  const tickets = sum(poolRuns.map((run) => run.tickets));
  const ticketBlocks = sum(poolRuns.map((run) => run.ticketBlocks));
  const ticketsPerSecond = median(
    of('leader').map((run) => run.tickets / run.load.durationSeconds),
  );
  // Each block is one write: the fenced txn that raises the high-water mark.
  const writesPer1000 = (ticketBlocks / tickets) * 1000;
  const atLeader = (run: RunRecord) => total(run.etcdByMember[leaderId] ?? {});
  const leaderBackground =
    (sum(restRuns.map(atLeader)) / restSeconds) * sum(poolRuns.map((run) => run.windowSeconds));
  const leaderRequestsPer1000 = ((sum(poolRuns.map(atLeader)) - leaderBackground) / tickets) * 1000;

  return {
    summaries,
    backgroundEtcdPerSecond: backgroundPerSecond,
    p99OverheadMs: {
      loaded: p99Overhead('follower', 'leader'),
      oneConnection: p99Overhead('followerOne', 'leaderOne'),
      nginx: p99Overhead('nginx', 'leader'),
    },
    etcdPerCall: { tracked: trackedPerCall, routing: routingPerCall, trackedExcess, jitter },
    trackedCalls,
    tickets: { tickets, ticketBlocks, ticketsPerSecond, writesPer1000, leaderRequestsPer1000 },
  };
}
