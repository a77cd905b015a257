/**
 * Failover trials against a real etcd cluster and pool members as child processes running the
 * built CLI (issue 6, measurements 1 and 2).
 *
 * What a trial measures, all on this process's monotonic clock (`performance.now()`):
 * - `servedMs`: from the signal to the leader until a client looping on another member gets
 *   the first /work answer performed by a member other than the old leader (restart takeover:
 *   by any member, for a call started after the kill);
 * - `claimedMs`: from the signal until a watch on the claim key reports a new claim;
 * - `failed`: client calls that ended between the signal and that first answer without a 200.
 *
 * The client loops one call at a time with no pause on one keep-alive connection (Node's
 * fetch), so the resolution of `servedMs` is one round trip through the follower.
 */
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Etcd3, type Watcher } from 'etcd3';
import { poolKeys } from '../src/etcd/keys.js';
import { pollUntil } from '../src/demo/childProcesses.js';
import type { LocalEtcd } from '../src/demo/localEtcd.js';
import { startPoolMember, type MemberProcess } from '../src/demo/memberProcess.js';
import { freePorts } from '../src/demo/ports.js';
import { ms, type Benchmark, type Table, type TargetCheck } from './section.js';
import { summarize, type Summary } from './stats.js';

export type TrialKind = 'graceful' | 'crash' | 'restart';

export interface TrialResult {
  kind: TrialKind;
  ttlSeconds: number;
  /** The leader that was signalled, and the member the client called. */
  leader: string;
  observer: string;
  /** Who performed the first /work after the signal. */
  servedBy: string | undefined;
  servedMs: number | undefined;
  claimedBy: string | undefined;
  claimedMs: number | undefined;
  failed: number;
  /** Client calls that ended between the signal and the first answer of the new leader. */
  calls: number;
}

interface CallRecord {
  startedAt: number;
  endedAt: number;
  status: number;
  performedBy: string | undefined;
}

interface ClaimEvent {
  at: number;
  id: string | undefined;
}

interface PoolAnswer {
  self: { id: string; isLeader: boolean };
  leader: { id: string } | null;
  members: { id: string; createRevision: number }[];
}

const POOL = 'default';
/**
 * BENCH_LOG_DIR=<dir>: members log at debug level into <dir>/<id>.log, to trace where a slow
 * failover spends its time (pino's `time` is epoch ms on every process of the machine).
 */
const TRACE_DIR = process.env.BENCH_LOG_DIR;
const AGREE_TIMEOUT_MS = 20_000;
/** How long after its TTL a crash trial may take before it counts as a miss. */
export const FAILOVER_SLACK_MS = 5000;

/**
 * A pool of member processes under its own etcd prefix, with a watch on its claim key that
 * records every new claim as it arrives.
 */
export class BenchPool {
  readonly members = new Map<string, MemberProcess>();
  private readonly claims: ClaimEvent[] = [];

  private constructor(
    private readonly etcd: LocalEtcd,
    readonly ttlSeconds: number,
    private readonly prefix: string,
    private readonly client: Etcd3,
    private readonly watcher: Watcher,
  ) {
    watcher.on('put', (kv) => {
      this.claims.push({ at: performance.now(), id: claimId(kv.value.toString()) });
    });
  }

  static async start(etcd: LocalEtcd, ttlSeconds: number, ids: string[]): Promise<BenchPool> {
    const prefix = `/spl-bench-${process.pid}-ttl${ttlSeconds}-${Date.now()}`;
    const client = new Etcd3({ hosts: etcd.endpoints });
    const watcher = await client.watch().key(poolKeys(prefix, POOL).leader).create();
    const pool = new BenchPool(etcd, ttlSeconds, prefix, client, watcher);
    const ports = await freePorts(ids.length);
    // One after the other, each ready before the next: the first is the oldest and leads.
    for (const [i, id] of ids.entries()) await pool.startMember(id, ports[i]!);
    return pool;
  }

  private async startMember(id: string, port: number): Promise<MemberProcess> {
    const member = startPoolMember({
      endpoints: this.etcd.endpoints,
      prefix: this.prefix,
      id,
      port,
      env: { LEASE_TTL_SECONDS: String(this.ttlSeconds), LOG_LEVEL: TRACE_DIR ? 'debug' : 'warn' },
      ...(TRACE_DIR ? { logFile: path.join(TRACE_DIR, `${id}.log`) } : {}),
    });
    this.members.set(id, member);
    await member.waitReady();
    return member;
  }

  /** Starts member `id` again, same id, port and environment, once its old process is gone. */
  async restart(id: string): Promise<MemberProcess> {
    const old = this.member(id);
    await old.exited;
    return this.startMember(id, old.options.port);
  }

  member(id: string): MemberProcess {
    const member = this.members.get(id);
    if (member === undefined) throw new Error(`no member ${id}`);
    return member;
  }

  /** The first claim the watch saw at or after `since`, by anyone but `except`. */
  claimAfter(since: number, except?: string): ClaimEvent | undefined {
    return this.claims.find((claim) => claim.at >= since && claim.id !== except);
  }

  /**
   * Waits until every running member answers /pool naming the same leader, the leader says it
   * leads, and all `size` members are registered; returns the leader and the youngest other
   * member (the client's observer: a follower that will not be next in line).
   */
  async settled(size: number): Promise<{ leader: string; observer: string }> {
    let found: { leader: string; observer: string } | undefined;
    const outcome = await pollUntil(
      async () => {
        const running = [...this.members.values()].filter((m) => m.running);
        const views = await Promise.all(running.map((m) => poolView(m.url)));
        const leaders = new Set(views.map((view) => view?.leader?.id));
        const [leader] = [...leaders];
        if (leaders.size !== 1 || leader === undefined) return false;
        const leaderView = views.find((view) => view?.self.id === leader);
        if (!leaderView?.self.isLeader || leaderView.members.length !== size) return false;
        const youngestFirst = [...leaderView.members].sort(
          (a, b) => b.createRevision - a.createRevision,
        );
        const observer = youngestFirst.find((m) => m.id !== leader)?.id;
        if (observer === undefined) return false;
        found = { leader, observer };
        return true;
      },
      { timeoutMs: AGREE_TIMEOUT_MS, intervalMs: 10 },
    );
    if (outcome !== 'satisfied' || found === undefined) {
      throw new Error(
        `pool did not settle on one leader of ${size} members within ${AGREE_TIMEOUT_MS} ms`,
      );
    }
    return found;
  }

  async close(): Promise<void> {
    await Promise.all([...this.members.values()].map((m) => m.kill()));
    await this.watcher.cancel();
    this.client.close();
  }
}

function claimId(value: string): string | undefined {
  try {
    return (JSON.parse(value) as { id?: string }).id;
  } catch {
    return undefined;
  }
}

async function poolView(url: string): Promise<PoolAnswer | undefined> {
  try {
    const res = await fetch(`${url}/pool`, { signal: AbortSignal.timeout(1000) });
    return res.status === 200 ? ((await res.json()) as PoolAnswer) : undefined;
  } catch {
    return undefined;
  }
}

/** Calls GET /work on `url` back to back until stopped, recording every call. */
class WorkLoop {
  readonly records: CallRecord[] = [];
  private running = true;
  private readonly done: Promise<void>;

  constructor(url: string) {
    this.done = this.run(`${url}/work?payload=bench`);
  }

  private async run(url: string): Promise<void> {
    while (this.running) {
      const startedAt = performance.now();
      let status = 0;
      let performedBy: string | undefined;
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
        status = res.status;
        performedBy = ((await res.json()) as { performedBy?: string }).performedBy;
      } catch {
        // connection refused or reset, or a timeout: a failed call (status 0)
      }
      this.records.push({ startedAt, endedAt: performance.now(), status, performedBy });
    }
  }

  /** The first 200 after `since` that `accept` takes, by end time. */
  firstServed(since: number, accept: (r: CallRecord) => boolean): CallRecord | undefined {
    return this.records.find((r) => r.status === 200 && r.endedAt >= since && accept(r));
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.done;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * One failover: signal the settled leader (SIGTERM for `graceful`, SIGKILL otherwise), wait for
 * the new leader to serve and claim, then bring the pool back to `size` members — for
 * `restart`, the killed member is started again at once, same id and port, as part of the trial.
 */
export async function failoverTrial(
  pool: BenchPool,
  kind: TrialKind,
  size: number,
): Promise<TrialResult> {
  const { leader, observer } = await pool.settled(size);
  const loop = new WorkLoop(pool.member(observer).url);
  // A few calls first, so the connection is open and warm when the signal goes.
  await sleep(30);
  const since = performance.now();
  pool.member(leader).signal(kind === 'graceful' ? 'SIGTERM' : 'SIGKILL');
  if (kind === 'restart') await pool.restart(leader);

  const accept =
    kind === 'restart'
      ? (r: CallRecord) => r.startedAt >= since
      : (r: CallRecord) => r.performedBy !== leader;
  const except = kind === 'restart' ? undefined : leader;
  const deadline = pool.ttlSeconds * 1000 + FAILOVER_SLACK_MS;
  await pollUntil(
    () =>
      loop.firstServed(since, accept) !== undefined && pool.claimAfter(since, except) !== undefined,
    { timeoutMs: deadline, intervalMs: 5 },
  );
  await loop.stop();

  const served = loop.firstServed(since, accept);
  const claim = pool.claimAfter(since, except);
  const servedAt = served?.endedAt ?? Infinity;
  const during = loop.records.filter((r) => r.endedAt >= since && r.endedAt < servedAt);
  if (kind !== 'restart') await pool.restart(leader);
  return {
    kind,
    ttlSeconds: pool.ttlSeconds,
    leader,
    observer,
    servedBy: served?.performedBy,
    servedMs: served === undefined ? undefined : served.endedAt - since,
    claimedBy: claim?.id,
    claimedMs: claim === undefined ? undefined : claim.at - since,
    failed: during.filter((r) => r.status !== 200).length,
    calls: during.length,
  };
}

export interface Scenario {
  name: string;
  kind: TrialKind;
  ttlSeconds: number;
  trials: number;
}

const MEMBER_IDS = ['a', 'b', 'c'];

/** The failover scenarios; the peer benchmark runs the graceful and crash ones alike. */
export function scenarios(smoke: boolean): Scenario[] {
  return smoke
    ? [
        { name: 'graceful (SIGTERM)', kind: 'graceful', ttlSeconds: 2, trials: 2 },
        { name: 'crash (SIGKILL), TTL 2 s', kind: 'crash', ttlSeconds: 2, trials: 1 },
        { name: 'restart takeover, TTL 2 s', kind: 'restart', ttlSeconds: 2, trials: 1 },
      ]
    : [
        { name: 'graceful (SIGTERM)', kind: 'graceful', ttlSeconds: 5, trials: 30 },
        { name: 'crash (SIGKILL), TTL 2 s', kind: 'crash', ttlSeconds: 2, trials: 10 },
        { name: 'crash (SIGKILL), TTL 5 s', kind: 'crash', ttlSeconds: 5, trials: 10 },
        { name: 'restart takeover, TTL 5 s', kind: 'restart', ttlSeconds: 5, trials: 10 },
      ];
}

export interface ScenarioReport extends Scenario {
  servedMs: Summary | undefined;
  claimedMs: Summary | undefined;
  failed: number;
  calls: number;
  missed: number;
  results: TrialResult[];
}

function report(scenario: Scenario, results: TrialResult[]): ScenarioReport {
  return {
    ...scenario,
    servedMs: summarize(results.map((r) => r.servedMs)),
    claimedMs: summarize(results.map((r) => r.claimedMs)),
    failed: results.reduce((sum, r) => sum + r.failed, 0),
    calls: results.reduce((sum, r) => sum + r.calls, 0),
    missed: results.filter((r) => r.servedMs === undefined || r.claimedMs === undefined).length,
    results,
  };
}

function failoverTable(reports: ScenarioReport[]): Table {
  return {
    caption:
      'Failover, pool of 3 member processes (signal → first /work by the new leader, seen on another member; signal → new claim in etcd)',
    header: ['scenario', 'trials', 'measure', 'p50', 'p99', 'max', 'failed calls'],
    rows: reports.flatMap((r) =>
      (
        [
          ['first /work by new leader', r.servedMs],
          ['new claim in etcd', r.claimedMs],
        ] as const
      ).map(([measure, summary], i) => [
        i === 0 ? r.name : '',
        i === 0 ? `${r.trials}${r.missed > 0 ? ` (${r.missed} missed)` : ''}` : '',
        measure,
        ms(summary?.p50),
        ms(summary?.p99),
        ms(summary?.max),
        i === 0 ? `${r.failed} of ${r.calls}` : '',
      ]),
    ),
  };
}

function failoverTargets(reports: ScenarioReport[]): TargetCheck[] {
  return reports.flatMap((r): TargetCheck[] => {
    const p99 = r.servedMs?.p99;
    const missed = r.missed > 0 ? ` (${r.missed} trials missed)` : '';
    switch (r.kind) {
      case 'graceful':
        return [
          {
            target: 'graceful failover p99 < 50 ms, zero failed client requests',
            measured: `p99 ${ms(p99)}, ${r.failed} of ${r.calls} calls failed${missed}`,
            met: p99 !== undefined && p99 < 50 && r.failed === 0 && r.missed === 0,
          },
        ];
      case 'crash': {
        const limit = r.ttlSeconds * 1000 + 500;
        return [
          {
            target: `crash failover p99 < TTL + 500 ms (TTL ${r.ttlSeconds} s: < ${limit} ms)`,
            measured: `p99 ${ms(p99)}${missed}`,
            met: p99 !== undefined && p99 < limit && r.missed === 0,
          },
        ];
      }
      case 'restart':
        return [
          {
            target: 'restart takeover < 1 s',
            measured: `max ${ms(r.servedMs?.max)}, p50 ${ms(r.servedMs?.p50)}${missed}`,
            met: r.servedMs !== undefined && r.servedMs.max < 1000 && r.missed === 0,
          },
        ];
    }
  });
}

/** Measurements 1 and 2: graceful, crash and restart-takeover failover of a pool of 3. */
export const failover: Benchmark = async ({ etcd, smoke, log }) => {
  const reports: ScenarioReport[] = [];
  for (const scenario of scenarios(smoke)) {
    log(`${scenario.name}: ${scenario.trials} trials, pool of ${MEMBER_IDS.length}`);
    const pool = await BenchPool.start(etcd, scenario.ttlSeconds, MEMBER_IDS);
    const results: TrialResult[] = [];
    try {
      for (let i = 1; i <= scenario.trials; i++) {
        const result = await failoverTrial(pool, scenario.kind, MEMBER_IDS.length);
        results.push(result);
        log(
          `${scenario.name} ${i}/${scenario.trials}: ${result.leader} → ${result.servedBy ?? '?'}, ` +
            `served ${ms(result.servedMs)}, claimed ${ms(result.claimedMs)}, ` +
            `failed ${result.failed}/${result.calls} calls`,
        );
      }
    } finally {
      await pool.close();
    }
    reports.push(report(scenario, results));
  }
  const servedSeries = (kind: TrialKind) =>
    reports
      .filter((r) => r.kind === kind)
      .map((r) => ({
        name: r.name,
        points: r.results.flatMap((t): [number, number][] =>
          t.servedMs === undefined ? [] : [[0, t.servedMs]],
        ),
      }));
  return {
    id: 'failover',
    title: 'Failover',
    method:
      'Three member processes (the built CLI) on the shared etcd; a client on the youngest follower ' +
      'calls /work back to back on one keep-alive connection while the leader gets SIGTERM ' +
      '(graceful, as `kubectl delete pod` does) or SIGKILL (crash); restart takeover starts the ' +
      'killed member again at once with the same MEMBER_ID. A watch on the claim key timestamps ' +
      "the new claim. Every time is on the benchmark process's monotonic clock from the signal.",
    tables: [failoverTable(reports)],
    plots: [
      {
        file: 'failover-graceful.svg',
        title: 'Graceful failover: signal → first /work by the new leader',
        xLabel: 'share of trials',
        yLabel: 'ms',
        kind: 'cdf',
        series: servedSeries('graceful'),
      },
      {
        file: 'failover-crash.svg',
        title: 'Crash failover and restart takeover: signal → first /work by a serving leader',
        xLabel: 'share of trials',
        yLabel: 'ms',
        kind: 'cdf',
        series: [...servedSeries('crash'), ...servedSeries('restart')],
      },
    ],
    targets: failoverTargets(reports),
    data: reports,
    errors: reports
      .filter((r) => r.missed > 0)
      .map((r) => `${r.name}: ${r.missed} of ${r.trials} trials saw no new leader serve and claim`),
  };
};
