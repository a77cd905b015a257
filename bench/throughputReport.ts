/**
 * The throughput benchmark's section of the report (bench/throughput.ts measures,
 * bench/throughputFigures.ts does the arithmetic, this renders): the routing, simple vs
 * tracked and tickets tables, the two bar plots, the targets of issue 6 with the measured
 * figure, the method in prose, and the raw figures and runs kept in the record.
 *
 * Units: req/s, ms, etcd requests per call or per 1000 tickets. Nothing here blocks.
 */
import os from 'node:os';
import { ms, type Plot, type Section, type Table, type TargetCheck } from './section.js';
import { LITTLE_BOUNDS } from './throughputChecks.js';
import type { RunRecord, ThroughputFigures } from './throughputFigures.js';
import type { Settings, TargetKey } from './throughputSettings.js';

/** A whole number with thousands separators: `12,345`. */
export const reqs = (value: number) => Math.round(value).toLocaleString('en-US');
/** CPU time per request: `127 µs`, or `—` for a row without that process. */
const micros = (value: number | undefined) =>
  value === undefined || !Number.isFinite(value) ? '—' : `${value.toFixed(0)} µs`;
/** Four decimals; a value that rounds to zero prints as 0.0000, not -0.0000. */
const perCall = (value: number) =>
  Number.isFinite(value) ? (Math.abs(value) < 0.00005 ? 0 : value).toFixed(4) : '—';

/** The section of a run; `leaderId` and `followerId` are the members loaded directly. */
export function report(
  figures: ThroughputFigures,
  runs: RunRecord[],
  settings: Settings,
  leaderId: string,
  followerId: string,
): Section {
  const { summaries, trackedCalls } = figures;
  const backgroundPerSecond = figures.backgroundEtcdPerSecond;
  const { loaded: overhead, oneConnection: overheadOne } = figures.p99OverheadMs;
  const {
    tracked: trackedPerCall,
    routing: routingPerCall,
    trackedExcess,
    jitter,
  } = figures.etcdPerCall;
  const { tickets, ticketBlocks, ticketsPerSecond, writesPer1000, leaderRequestsPer1000 } =
    figures.tickets;
  const byKey = (key: TargetKey) => summaries.find((s) => s.key === key)!;
  const nameOf = (key: TargetKey) => {
    const s = byKey(key);
    return `${s.name}, ${s.connections} conn.`;
  };
  const leader = byKey('leader');
  const follower = byKey('follower');
  const followerOne = byKey('followerOne');
  const simple = byKey('simple');

  const routing: Table = {
    caption:
      `Routing overhead (loopback; ${settings.connections} connections: ${settings.durationSeconds} s, ` +
      `1 connection: ${settings.latencyDurationSeconds} s per run; median of ${settings.rounds} round(s)). ` +
      `Ratio: req/s over those of the run named in "of", in the same round`,
    header: [
      'target',
      'connections',
      'req/s',
      'p50',
      'p99',
      'ratio',
      'of',
      'hop CPU / request',
      'server CPU / request',
      "Little's law",
      'served / counted',
      'failed',
    ],
    rows: summaries.map((s) => [
      s.name,
      String(s.connections),
      reqs(s.requestsPerSecond),
      ms(s.p50Ms, 2),
      ms(s.p99Ms, 2),
      ratioCell(s.ratio),
      s.baseline === undefined ? '' : nameOf(s.baseline),
      micros(s.hopCpuPerRequestUs),
      micros(s.serverCpuPerRequestUs),
      s.littlesRatio.toFixed(2),
      `${reqs(s.served)} / ${reqs(s.requests)}`,
      `${s.failed} of ${reqs(s.requests)}`,
    ]),
  };
  const simpleVsTracked: Table = {
    caption:
      `Simple vs tracked (${settings.connections} connections): etcd requests per call, every member counted; ` +
      `calls are those the leader executed (tickets), the pool makes ${backgroundPerSecond.toFixed(2)} requests/s at rest`,
    header: [
      'target',
      'req/s',
      'calls',
      'etcd requests',
      'per call',
      'per call, less rest',
      'per call, less rest and ticket blocks',
    ],
    rows: [leader, follower, simple].map((s) => [
      s.name,
      reqs(s.requestsPerSecond),
      reqs(s.calls),
      reqs(s.etcdRequests),
      perCall(s.etcdPerCall),
      perCall(s.etcdPerCallNet),
      perCall(s.etcdPerCallRouting),
    ]),
  };
  const ticketTable: Table = {
    caption:
      'Tickets (default TICKET_BLOCK_SIZE): tickets/s of /work on the leader; etcd costs over every run',
    header: [
      'tickets/s',
      'tickets',
      'blocks reserved',
      'etcd writes per 1000',
      'etcd requests per 1000 (leader, less rest)',
    ],
    rows: [
      [
        reqs(ticketsPerSecond),
        reqs(tickets),
        String(ticketBlocks),
        writesPer1000.toFixed(2),
        leaderRequestsPer1000.toFixed(2),
      ],
    ],
  };

  const categories = summaries.map((s) => s.label);
  const xLabel = `target (${settings.connections} connections; (1): one)`;
  const plots: Plot[] = [
    {
      file: 'throughput.svg',
      title: 'Requests per second on loopback',
      xLabel,
      yLabel: 'req/s',
      kind: 'bars',
      categories,
      series: [{ name: 'req/s', points: summaries.map((s, i) => [i, s.requestsPerSecond]) }],
    },
    {
      file: 'latency.svg',
      title: 'Latency on loopback',
      xLabel,
      yLabel: 'ms',
      kind: 'bars',
      categories,
      series: [
        { name: 'p50', points: summaries.map((s, i) => [i, s.p50Ms]) },
        { name: 'p99', points: summaries.map((s, i) => [i, s.p99Ms]) },
      ],
    },
  ];

  const signed = (value: number) => `${value >= 0 ? '+' : ''}${ms(value, 2)}`;
  const bareHop = byKey('bareHop');
  const nginx = byKey('nginx');
  const nginxOverhead = figures.p99OverheadMs.nginx;
  const hopCpu = (s: { hopCpuPerRequestUs: number | undefined }) => s.hopCpuPerRequestUs ?? NaN;
  const targetChecks: TargetCheck[] = [
    {
      target:
        'via a follower ≥ 0.65× direct at 10 connections and ≥ 0.5× at 1 (nginx beside it, same rounds)',
      measured:
        `${ratioCell(follower.ratio)} at ${settings.connections} connections, ${ratioCell(followerOne.ratio)} at 1; ` +
        `nginx ${ratioCell(nginx.ratio)} and ${ratioCell(byKey('nginxOne').ratio)}, ` +
        `HAProxy ${ratioCell(byKey('haproxy').ratio)} and ${ratioCell(byKey('haproxyOne').ratio)}, ` +
        `a bare node:http hop ${ratioCell(byKey('nodeHop').ratio)} and ${ratioCell(byKey('nodeHopOne').ratio)}`,
      met: (follower.ratio ?? 0) >= 0.65 && (followerOne.ratio ?? 0) >= 0.5,
    },
    {
      target: "p99 overhead of the forward at 10 connections ≤ 2× nginx's",
      measured: `${signed(overhead)} via the follower, ${signed(nginxOverhead)} via nginx`,
      met: overhead <= 2 * Math.max(nginxOverhead, 0),
    },
    {
      target: 'hop CPU ≤ 100 µs per forwarded request',
      measured:
        `${micros(hopCpu(follower))} (${settings.connections} connections), ${micros(hopCpu(followerOne))} (1); ` +
        `nginx ${micros(hopCpu(nginx))} and ${micros(hopCpu(byKey('nginxOne')))}, ` +
        `a bare node:http hop ${micros(hopCpu(byKey('nodeHop')))} and ${micros(hopCpu(byKey('nodeHopOne')))}`,
      met: hopCpu(follower) <= 100 && hopCpu(followerOne) <= 100,
    },
    {
      target: 'follower-forwarded throughput ≥ 70 % of direct-to-leader',
      measured:
        `${pct(follower.ratio)} (${reqs(follower.requestsPerSecond)} vs ${reqs(leader.requestsPerSecond)} req/s, ` +
        `${settings.connections} connections); a bare Express forward keeps ${pct(bareHop.ratio)} of bare Express`,
      met: (follower.ratio ?? 0) >= 0.7,
    },
    {
      target: 'p99 overhead of the forward < 2 ms',
      measured:
        `${signed(overhead)} at ${settings.connections} connections (p99 ${ms(follower.p99Ms, 2)} vs ${ms(leader.p99Ms, 2)}); ` +
        `${signed(overheadOne)} at 1 connection (p99 ${ms(followerOne.p99Ms, 2)} vs ${ms(byKey('leaderOne').p99Ms, 2)})`,
      met: overhead < 2,
    },
    {
      // What is left once the members' requests at rest and the ticket blocks (which have a
      // target of their own) are taken out; under 1 in 2000 calls is the jitter of the estimate.
      target: '/work makes 0 etcd requests per call',
      measured:
        `${perCall(routingPerCall)} per call for routing: ${trackedExcess.toFixed(1)} requests over ` +
        `${reqs(trackedCalls)} calls beyond the pool's requests at rest and the ticket blocks, ` +
        `within ±${jitter.toFixed(1)} of jitter at rest (${perCall(trackedPerCall)} per call as counted); ` +
        `/simple-work ${perCall(simple.etcdPerCallNet)}`,
      met: trackedExcess <= jitter,
    },
    {
      target: 'tickets cost < 2 etcd writes per 1000',
      measured: `${writesPer1000.toFixed(2)} writes per 1000 (${ticketBlocks} blocks for ${reqs(tickets)} tickets)`,
      met: tickets > 0 && writesPer1000 < 2,
    },
  ];

  return {
    id: 'throughput',
    title: 'Routing overhead, simple vs tracked, tickets',
    method:
      `A pool of 3 members (child processes running the built CLI, LOG_LEVEL warn) on the shared ` +
      `3-member etcd; as references, a bare Express 5 server (one route returning a small JSON) and a ` +
      `bare Express forward in front of it (GET in, POST with a JSON body to the bare server over a ` +
      `keep-alive agent, the answer parsed and sent on: one hop and nothing else), each in its own process; ` +
      `and nginx (Debian's, one worker, upstream keep-alive to the leader, keepalive_requests far above a run's ` +
      `requests) and HAProxy (Debian's, one thread, keep-alive both ways, http-reuse always) as the ` +
      `reference hops in front of the leader, and a bare node:http hop in front of it (one kept-alive ` +
      `connection to the leader per client connection, the request written as a GET of the same path, the ` +
      `answer read by its Content-Length and written back; no validation, metrics or fencing): what a hop ` +
      `costs in Node.js on this machine with nothing in it. ` +
      `One load generator process (autocannon's programmatic API) loads every target alike: keep-alive ` +
      `connections, no pipelining, a warm-up run, then the measured run (${settings.connections} connections ` +
      `for ${settings.durationSeconds} s; the unloaded pair 1 connection for ${settings.latencyDurationSeconds} s); ` +
      `it runs apart from the benchmark process, so its own bookkeeping (counter reads, probes) never ` +
      `competes with the load. ${settings.rounds} interleaved round(s) of all targets, medians reported, ` +
      `ratios and overheads taken within a round. The ${os.cpus().length} cores are shared by the load ` +
      `generator, the members and etcd: direct to the leader keeps one member process busy, through a follower ` +
      `two, so the ratio here is what a forward costs in CPU on one small machine. Latency percentiles come ` +
      `from every response's own time (float ms), not autocannon's whole-millisecond histogram. ` +
      `Every run is checked, or the benchmark fails: Little's law (req/s × mean latency ÷ connections ` +
      `within ${LITTLE_BOUNDS.low}–${LITTLE_BOUNDS.high}) and the server side's count (the leader's tickets, ` +
      `the bare server's own count) equal to the load generator's, plus at most one request per connection ` +
      `left in flight at its end. CPU per request: user + system time from /proc/<pid>/stat over the run, of ` +
      `the serving process and of the hop (the follower, nginx's worker, HAProxy, the bare forward, the bare node:http hop), ÷ requests served. ` +
      `etcd requests: the delta of every member's service_pool_etcd_requests_total around each measured run, ` +
      `less the pool's rate at rest (measured during the bare runs); tickets: counted between two probe calls ` +
      `on the leader around each run; etcd writes per 1000 tickets from service_pool_ticket_blocks_total ` +
      `(one fenced txn per block; a range before it, except for the first block of a term, whose mark comes with the claim).`,
    tables: [routing, simpleVsTracked, ticketTable],
    plots,
    targets: targetChecks,
    data: {
      settings,
      leader: leaderId,
      follower: followerId,
      backgroundEtcdPerSecond: backgroundPerSecond,
      p99OverheadMs: figures.p99OverheadMs,
      etcdPerCall: figures.etcdPerCall,
      summaries,
      tickets: figures.tickets,
      runs,
    },
  };
}

function ratioCell(ratio: number | undefined): string {
  return ratio === undefined ? '—' : `${ratio.toFixed(2)}×`;
}

function pct(ratio: number | undefined): string {
  return ratio === undefined ? '—' : `${(ratio * 100).toFixed(0)} %`;
}
