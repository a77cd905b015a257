/**
 * Routing overhead, simple vs tracked, and tickets (issue 6, measurements 4, 5 and 6).
 *
 * A pool of three members (child processes running the built CLI) under its own prefix on the
 * shared etcd, two references, and one load generator process (bench/loadgen.ts, autocannon's
 * programmatic API) that loads every target with the same settings:
 *
 * - bare Express: one trivial route — the framework's ceiling on this machine;
 * - bare Express via a bare forward: one hop through Node's HTTP client and nothing else;
 * - GET /work on the leader (it executes: echo plus a ticket);
 * - GET /work on a follower, forwarded to the leader over keep-alive;
 * - GET /simple-work on the same follower (reads the members from etcd per call);
 * - /work on the leader and via the follower again with one connection: the hop's latency
 *   without a queue in front of it.
 *
 * Rounds are interleaved (every target once per round, in the same order), so a drift of the
 * machine during the run touches every target alike; each figure is the median over rounds,
 * and ratios and overheads are taken between runs of the same round.
 *
 * etcd requests are read from every member's `service_pool_etcd_requests_total` just before
 * and after each measured run. The members make some requests at rest (a reconciling read
 * every few seconds, lease keep-alives): that rate is measured during the reference runs,
 * when the pool gets no work at all, and subtracted to get the requests a call costs.
 */
import { fork, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { pollUntil } from '../src/local/childProcesses.js';
import { assertCliBuilt, startPoolMember, type MemberProcess } from '../src/local/memberProcess.js';
import { freePorts } from '../src/local/ports.js';
import type { LoadAnswer, LoadFigures, LoadRequest } from './loadgen.js';
import {
  ms,
  type BenchContext,
  type Benchmark,
  type Plot,
  type Section,
  type Table,
  type TargetCheck,
} from './section.js';
import { summarize } from './stats.js';

type TargetKey =
  | 'bare'
  | 'bareHop'
  | 'leader'
  | 'follower'
  | 'simple'
  | 'leaderOne'
  | 'followerOne';

interface Target {
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

interface Settings {
  rounds: number;
  connections: number;
  durationSeconds: number;
  warmupSeconds: number;
  /** The unloaded pair: one connection, so latency is the path's and not a queue's. */
  latencyDurationSeconds: number;
  latencyWarmupSeconds: number;
}

const SETTINGS: Record<'smoke' | 'full', Settings> = {
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

const MEMBER_IDS = ['a', 'b', 'c'];
const POOL_SETTLE_MS = 20_000;
const CHILD_START_MS = 20_000;
/**
 * A run's end leaves its last requests in flight (autocannon drops them, the pool finishes
 * them): a pause after each run, so that they land before the counters are read.
 */
const SETTLE_MS = 150;
/** What reserving one ticket block costs: a range (the high-water mark), then a fenced txn. */
const TICKET_BLOCK_REQUESTS = 2;

/** Counter values of one member: etcd requests by operation, and ticket blocks reserved. */
interface Counters {
  etcd: Record<string, number>;
  ticketBlocks: number;
}

/** One measured run of one target. */
interface RunRecord {
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
}

interface TargetSummary {
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

const here = path.dirname(fileURLToPath(import.meta.url));

/**
 * A TypeScript file of bench/ as a child process with IPC. It inherits this process's
 * execArgv, i.e. tsx's loader when the benchmark runs under tsx.
 */
function forkChild(file: string, args: string[] = []): ChildProcess {
  return fork(path.join(here, file), args, {
    execArgv: process.execArgv,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  if (child.connected) child.disconnect();
  const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
  return exited.finally(() => clearTimeout(timer));
}

/** The load generator process: one autocannon run per request, one at a time. */
class LoadGenerator {
  private nextId = 1;
  private readonly pending = new Map<
    number,
    { resolve: (figures: LoadFigures) => void; reject: (error: Error) => void }
  >();

  private constructor(private readonly child: ChildProcess) {
    child.on('message', (answer: LoadAnswer) => {
      const waiter = this.pending.get(answer.id);
      if (!waiter) return;
      this.pending.delete(answer.id);
      if ('figures' in answer) waiter.resolve(answer.figures);
      else waiter.reject(new Error(`load generator: ${answer.error}`));
    });
    child.on('exit', (code, signal) => {
      for (const waiter of this.pending.values()) {
        waiter.reject(new Error(`load generator exited (${signal ?? code})`));
      }
      this.pending.clear();
    });
  }

  static start(): LoadGenerator {
    return new LoadGenerator(forkChild('loadgen.ts'));
  }

  run(request: Omit<LoadRequest, 'id'>): Promise<LoadFigures> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.child.send({ id, ...request } satisfies LoadRequest);
    });
  }

  close(): Promise<void> {
    return stopChild(this.child);
  }
}

interface Reference {
  url: string;
  child: ChildProcess;
}

/** bench/bareExpress.ts with `args`; resolves with its URL once it listens. */
async function startReference(args: string[]): Promise<Reference> {
  const child = forkChild('bareExpress.ts', args);
  try {
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error('bare Express did not start')),
        CHILD_START_MS,
      );
      child.once('message', (message: { port: number }) => {
        clearTimeout(timer);
        resolve(message.port);
      });
      child.once('exit', (code) => reject(new Error(`bare Express exited (${code})`)));
    });
    return { url: `http://127.0.0.1:${port}`, child };
  } catch (error) {
    await stopChild(child);
    throw error;
  }
}

/** The bare server, then the bare forward in front of it. */
async function startReferences(started: Reference[]): Promise<[Reference, Reference]> {
  const bare = await startReference([]);
  started.push(bare);
  const hop = await startReference(['forward', bare.url]);
  started.push(hop);
  return [bare, hop];
}

interface PoolAnswer {
  self: { id: string; isLeader: boolean };
  leader: { id: string } | null;
  members: unknown[];
}

async function getJson<T>(url: string): Promise<T | undefined> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    return res.status === 200 ? ((await res.json()) as T) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A pool of three under its own prefix: `a` first (the oldest, so the leader), then b and c
 * together. Members are pushed to `started` as they are spawned, for the caller to stop.
 */
async function startPool(context: BenchContext, started: MemberProcess[]): Promise<void> {
  const prefix = `/spl-bench-throughput-${process.pid}-${Date.now()}`;
  const ports = await freePorts(MEMBER_IDS.length);
  const start = (i: number) => {
    const member = startPoolMember({
      endpoints: context.etcd.endpoints,
      prefix,
      id: MEMBER_IDS[i]!,
      port: ports[i]!,
      env: { LOG_LEVEL: 'warn' },
    });
    started.push(member);
    return member.waitReady();
  };
  await start(0);
  await Promise.all(MEMBER_IDS.slice(1).map((_, i) => start(i + 1)));
}

/** Waits until every member names the same leader, which says it leads three members. */
async function settledLeader(members: MemberProcess[]): Promise<string> {
  let leader: string | undefined;
  const outcome = await pollUntil(
    async () => {
      const views = await Promise.all(members.map((m) => getJson<PoolAnswer>(`${m.url}/pool`)));
      const ids = new Set(views.map((view) => view?.leader?.id));
      const [id] = [...ids];
      const own = views.find((view) => view?.self.id === id);
      if (ids.size !== 1 || id === undefined || !own?.self.isLeader) return false;
      if (own.members.length !== members.length) return false;
      leader = id;
      return true;
    },
    { timeoutMs: POOL_SETTLE_MS, intervalMs: 20 },
  );
  if (outcome !== 'satisfied' || leader === undefined) {
    throw new Error(`the pool did not settle on one leader within ${POOL_SETTLE_MS} ms`);
  }
  return leader;
}

const ETCD_LINE = /^service_pool_etcd_requests_total\{operation="([^"]+)"\} (\S+)$/;
const BLOCKS_LINE = /^service_pool_ticket_blocks_total\{[^}]*\} (\S+)$/;

async function readCounters(member: MemberProcess): Promise<Counters> {
  const res = await fetch(`${member.url}/metrics`, { signal: AbortSignal.timeout(5000) });
  if (res.status !== 200) throw new Error(`${member.id}: /metrics answered ${res.status}`);
  const counters: Counters = { etcd: {}, ticketBlocks: 0 };
  for (const line of (await res.text()).split('\n')) {
    const etcd = ETCD_LINE.exec(line);
    if (etcd) counters.etcd[etcd[1]!] = Number(etcd[2]);
    const blocks = BLOCKS_LINE.exec(line);
    if (blocks) counters.ticketBlocks += Number(blocks[1]);
  }
  return counters;
}

function minus(after: Record<string, number>, before: Record<string, number>) {
  const delta: Record<string, number> = {};
  for (const [operation, value] of Object.entries(after)) {
    const d = value - (before[operation] ?? 0);
    if (d !== 0) delta[operation] = d;
  }
  return delta;
}

const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
const total = (values: Record<string, number>) => sum(Object.values(values));
const median = (values: number[]) => summarize(values)?.median ?? NaN;

/** The ticket of one /work on the leader: the probes that bracket a run's tickets. */
async function probeTicket(leader: MemberProcess): Promise<number> {
  const answer = await getJson<{ ticket: number }>(`${leader.url}/work?payload=probe`);
  if (answer === undefined) throw new Error(`${leader.id}: the ticket probe failed`);
  return answer.ticket;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const reqs = (value: number) => Math.round(value).toLocaleString('en-US');
/** Four decimals; a value that rounds to zero prints as 0.0000, not -0.0000. */
const perCall = (value: number) =>
  Number.isFinite(value) ? (Math.abs(value) < 0.00005 ? 0 : value).toFixed(4) : '—';

export const throughput: Benchmark = async (context) => {
  assertCliBuilt();
  const settings = context.smoke ? SETTINGS.smoke : SETTINGS.full;
  context.log(
    `starting a pool of ${MEMBER_IDS.length}, the bare references and the load generator`,
  );
  const generator = LoadGenerator.start();
  const references: Reference[] = [];
  const members: MemberProcess[] = [];
  try {
    // Settled, not raced: whatever fails, everything started is in the lists for `finally`.
    const [refs, pool] = await Promise.allSettled([
      startReferences(references),
      startPool(context, members),
    ]);
    if (refs.status === 'rejected') throw refs.reason;
    if (pool.status === 'rejected') throw pool.reason;
    const [bare, hop] = refs.value;
    const leaderId = await settledLeader(members);
    const leader = members.find((m) => m.id === leaderId)!;
    // The youngest member: a follower that is not next in line.
    const follower = members.filter((m) => m.id !== leaderId).at(-1)!;
    context.log(`pool settled: leader ${leader.id}, load through follower ${follower.id}`);

    const n = settings.connections;
    const targets: Target[] = [
      {
        key: 'bare',
        name: 'bare Express (ceiling)',
        label: 'bare Express',
        url: `${bare.url}/bare?payload=bench`,
        connections: n,
        pool: false,
      },
      {
        key: 'bareHop',
        name: 'bare Express via a bare forward',
        label: 'bare + hop',
        url: `${hop.url}/bare?payload=bench`,
        connections: n,
        baseline: 'bare',
        pool: false,
      },
      {
        key: 'leader',
        name: '/work on the leader',
        label: 'leader',
        url: `${leader.url}/work?payload=bench`,
        connections: n,
        baseline: 'bare',
        pool: true,
      },
      {
        key: 'follower',
        name: '/work via a follower',
        label: 'follower',
        url: `${follower.url}/work?payload=bench`,
        connections: n,
        baseline: 'leader',
        pool: true,
      },
      {
        key: 'simple',
        name: '/simple-work via a follower',
        label: 'simple-work',
        url: `${follower.url}/simple-work?payload=bench`,
        connections: n,
        baseline: 'leader',
        pool: true,
      },
      {
        key: 'leaderOne',
        name: '/work on the leader',
        label: 'leader (1)',
        url: `${leader.url}/work?payload=bench`,
        connections: 1,
        pool: true,
      },
      {
        key: 'followerOne',
        name: '/work via a follower',
        label: 'follower (1)',
        url: `${follower.url}/work?payload=bench`,
        connections: 1,
        baseline: 'leaderOne',
        pool: true,
      },
    ];

    async function measure(target: Target, round: number): Promise<RunRecord> {
      const single = target.connections === 1;
      const { url, connections } = target;
      // The warm-up is a run of its own, before the counters are read, so that the window
      // below covers the measured run only.
      const warmup = single ? settings.latencyWarmupSeconds : settings.warmupSeconds;
      await generator.run({ url, connections, durationSeconds: warmup });
      await sleep(SETTLE_MS);
      const ticketBefore = await probeTicket(leader);
      const before = await Promise.all(members.map(readCounters));
      const startedAt = performance.now();
      const load = await generator.run({
        url,
        connections,
        durationSeconds: single ? settings.latencyDurationSeconds : settings.durationSeconds,
      });
      await sleep(SETTLE_MS);
      const after = await Promise.all(members.map(readCounters));
      const windowSeconds = (performance.now() - startedAt) / 1000;
      const ticketAfter = await probeTicket(leader);
      const etcdByMember: Record<string, Record<string, number>> = {};
      members.forEach((m, i) => (etcdByMember[m.id] = minus(after[i]!.etcd, before[i]!.etcd)));
      const l = members.indexOf(leader);
      const record: RunRecord = {
        round,
        target: target.key,
        load,
        windowSeconds,
        etcdByMember,
        etcdRequests: sum(Object.values(etcdByMember).map(total)),
        ticketBlocks: after[l]!.ticketBlocks - before[l]!.ticketBlocks,
        // Both probes took a ticket: the run's are the ones strictly between them.
        tickets: ticketAfter - ticketBefore - 1,
      };
      context.log(
        `round ${round}/${settings.rounds} ${target.name}, ${target.connections} conn.: ` +
          `${reqs(load.requestsPerSecond)} req/s, p50 ${ms(load.latencyMs.p50, 2)}, ` +
          `p99 ${ms(load.latencyMs.p99, 2)}, ${record.etcdRequests} etcd requests, ` +
          `${load.non2xx + load.errors} failed`,
      );
      return record;
    }

    // Interleaved: every target once per round, in the same order.
    const runs: RunRecord[] = [];
    for (let round = 1; round <= settings.rounds; round++) {
      for (const target of targets) runs.push(await measure(target, round));
    }
    return report(targets, runs, settings, leader.id, follower.id);
  } finally {
    await generator.close();
    await Promise.all(references.map((ref) => stopChild(ref.child)));
    await Promise.all(members.map((m) => m.kill()));
  }
};

function report(
  targets: Target[],
  runs: RunRecord[],
  settings: Settings,
  leaderId: string,
  followerId: string,
): Section {
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
  const byKey = (key: TargetKey) => summaries.find((s) => s.key === key)!;
  const nameOf = (key: TargetKey) => {
    const s = byKey(key);
    return `${s.name}, ${s.connections} conn.`;
  };
  const leader = byKey('leader');
  const follower = byKey('follower');
  const followerOne = byKey('followerOne');
  const simple = byKey('simple');
  const p99Overhead = (key: TargetKey, baseline: TargetKey) =>
    median(
      of(key).flatMap((run) => {
        const base = inRound(baseline, run.round);
        return base ? [run.load.latencyMs.p99 - base.load.latencyMs.p99] : [];
      }),
    );
  const overhead = p99Overhead('follower', 'leader');
  const overheadOne = p99Overhead('followerOne', 'leaderOne');

  // /work's own etcd requests, every /work run together.
  const tracked = summaries.filter((s) =>
    ['leader', 'follower', 'leaderOne', 'followerOne'].includes(s.key),
  );
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

  const routing: Table = {
    caption:
      `Routing overhead (loopback; ${settings.connections} connections: ${settings.durationSeconds} s, ` +
      `1 connection: ${settings.latencyDurationSeconds} s per run; median of ${settings.rounds} round(s)). ` +
      `Ratio: req/s over those of the run named in "of", in the same round`,
    header: ['target', 'connections', 'req/s', 'p50', 'p99', 'ratio', 'of', 'failed'],
    rows: summaries.map((s) => [
      s.name,
      String(s.connections),
      reqs(s.requestsPerSecond),
      ms(s.p50Ms, 2),
      ms(s.p99Ms, 2),
      s.ratio === undefined ? '—' : `${s.ratio.toFixed(2)}×`,
      s.baseline === undefined ? '' : nameOf(s.baseline),
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
  const targetChecks: TargetCheck[] = [
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
      `keep-alive agent, the answer parsed and sent on: one hop and nothing else), each in its own process. ` +
      `One load generator process (autocannon's programmatic API) loads every target alike: keep-alive ` +
      `connections, no pipelining, a warm-up run, then the measured run (${settings.connections} connections ` +
      `for ${settings.durationSeconds} s; the unloaded pair 1 connection for ${settings.latencyDurationSeconds} s); ` +
      `it runs apart from the benchmark process, so its own bookkeeping (counter reads, probes) never ` +
      `competes with the load. ${settings.rounds} interleaved round(s) of all targets, medians reported, ` +
      `ratios and overheads taken within a round. The ${os.cpus().length} cores are shared by the load ` +
      `generator, the members and etcd: direct to the leader keeps one member process busy, through a follower ` +
      `two, so the ratio here is what a forward costs in CPU on one small machine. Latency percentiles come ` +
      `from every response's own time (float ms), not autocannon's whole-millisecond histogram. ` +
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
      p99OverheadMs: { loaded: overhead, oneConnection: overheadOne },
      etcdPerCall: { tracked: trackedPerCall, routing: routingPerCall, trackedExcess, jitter },
      summaries,
      tickets: { tickets, ticketBlocks, ticketsPerSecond, writesPer1000, leaderRequestsPer1000 },
      runs,
    },
  };
}

function pct(ratio: number | undefined): string {
  return ratio === undefined ? '—' : `${(ratio * 100).toFixed(0)} %`;
}
