/**
 * Scale (issue 6, measurement 7): pools of 10, 100, 500 and 1 000 members on the shared
 * 3-member etcd cluster, many members per process.
 *
 * Members are the real `PoolElection` (no HTTP server), hosted by a fixed set of worker
 * processes (bench/scaleWorker.ts), each with one etcd client and one metrics registry. The
 * pool grows from one size to the next — the same processes throughout, so that the RSS and
 * CPU added between two sizes is the cost of the members added, not of new processes.
 * Registrations go in batches, each seen by every member before the next (see `grow`).
 *
 * Per size:
 * - **Convergence** (≥ 3 trials in a full run): the pool has settled on a leader; this process
 *   revokes the leader's lease with its own etcd client (etcd deletes the member key and the
 *   claim at once) and measures, from just before the revoke, until every member's `leader()`
 *   names the same new leader and that member `isLeader()`. Each worker detects its members'
 *   agreement from their `leaderChanged`/`change` events and sends the moment it happened,
 *   taken on its own monotonic clock shifted onto this process's (see scaleWorker.ts); the
 *   figure is the latest of the workers' moments. The moment the IPC message arrived here is
 *   kept in `data` as a check (`arrivedMs`, always a little later). The revoked member
 *   registers again at once as the youngest, so the pool keeps its size; the next trial
 *   waits until it has settled.
 * - **At rest**, after the trials: CPU time of the worker processes over a window of several
 *   seconds, their RSS at its end (after a full garbage collection: garbage waiting for the
 *   next one is noise), and the requests etcd received meanwhile — every gRPC message,
 *   keep-alives on their streams included (`grpc_server_msg_received_total` from each etcd
 *   member's /metrics on its client URL) — beside what the members counted themselves
 *   (`service_pool_etcd_requests_total`: unary calls and stream opens).
 *   Per member = total / members; per *extra* member = the slope from the previous size.
 *
 * A size the machine cannot hold (a wait that times out: etcd or the workers saturated) ends
 * the run with that size recorded as failed, with what the workers logged, rather than
 * throwing away the sizes measured before it.
 *
 * `SCALE_DEBUG_DIR=<dir>` keeps each worker's whole log there (w<i>.log), for diagnosis.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { EventEmitter } from 'node:events';
import { readFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import { Etcd3 } from 'etcd3';
import { poolKeys } from '../src/etcd/keys.js';
import { supervise, type ExitStatus } from '../src/local/childProcesses.js';
import type { Benchmark, Plot, Section, Table, TargetCheck } from './section.js';
import { ms } from './section.js';
import { summarize, type Summary } from './stats.js';
import type { FromWorker, LeaderState, ToWorker, WorkerSample } from './scaleWorker.js';

export interface Plan {
  sizes: number[];
  trials: number;
  workers: number;
  /** Members registering at once, over all workers (see `grow`). */
  batch: number;
  restMs: number;
  /**
   * For profiling only: write a CPU profile of every worker and phase here
   * (`<size>-<phase>-w<worker>.cpuprofile`, phases `register`, `trials`, `rest`).
   */
  cpuProfileDir?: string;
}

export const FULL: Plan = {
  sizes: [10, 100, 500, 1000],
  trials: 3,
  workers: 4,
  // Each new member reads the whole pool twice (takeover check, snapshot) and queues a watch
  // behind its process's others; at 800 members and more, 40 at once overran the call
  // deadlines on this 2-core machine, and the retries that follow do not let up.
  batch: 20,
  restMs: 6000,
};
export const SMOKE: Plan = { sizes: [10, 50], trials: 1, workers: 2, batch: 20, restMs: 1500 };

const SRC_CHANGES_FILE = new URL('./scaleSrcChanges.json', import.meta.url);

/**
 * What this benchmark led to change in src/election, as measured then (see the file's
 * `about`): read at the start of a run, so that a missing file fails it before it measures.
 */
async function readSrcChanges(): Promise<unknown> {
  const file = JSON.parse(await readFile(SRC_CHANGES_FILE, 'utf8')) as { srcChanges: unknown };
  return file.srcChanges;
}

const POOL = 'scale';
const TTL_SECONDS = 5;
/** Bounds on waits that normally end by an event within a second or so. */
const AGREE_TIMEOUT_MS = 15_000;
const SETTLE_TIMEOUT_MS = 60_000;
const STDERR_LINES = 10;

interface TrialResult {
  /** Member ids. */
  oldLeader: string;
  newLeader: string | undefined;
  /** Until every member names the new leader and it holds the claim (workers' clocks). */
  agreedMs: number | undefined;
  /** Until the first member names the new leader. */
  firstSeenMs: number | undefined;
  /** When the last worker's message saying so arrived here. */
  arrivedMs: number | undefined;
}

interface RestFigures {
  windowMs: number;
  rssBytes: number;
  heapUsedBytes: number;
  cpuPercent: number;
  /** gRPC messages etcd received per second, by method, summed over its members. */
  etcdReceivedPerSec: Record<string, number>;
  etcdReceivedTotalPerSec: number | undefined;
  /** etcd's own CPU (all members) and RSS, at the end of the window. */
  etcdCpuPercent: number | undefined;
  etcdRssBytes: number | undefined;
  /** What the members counted (unary calls and stream opens), per second, by operation. */
  memberRequestsPerSec: Record<string, number>;
  /** Since the members started (all sizes so far): keep-alive failures, resyncs by reason. */
  keepAliveFailures: number;
  watchResyncs: Record<string, number>;
}

interface SizeResult {
  members: number;
  processes: number;
  registerMs: number;
  trials: TrialResult[];
  agreedMs: Summary | undefined;
  firstSeenMs: Summary | undefined;
  rest: RestFigures;
  /** RSS added per member since the previous size; undefined for the first size. */
  rssPerExtraMemberBytes: number | undefined;
}

/** A size that did not complete, and why (with what the workers wrote). */
interface Failure {
  members: number;
  /** Members registered when it failed. */
  reached: number;
  error: string;
}

/** A worker process and the last state it reported. */
class WorkerHandle {
  readonly exited: Promise<ExitStatus>;
  members = 0;
  leader: LeaderState = { key: undefined, id: undefined, holds: false, at: 0, firstAt: undefined };
  /** When the last `leader` message arrived (this process's clock). */
  leaderArrivedAt = 0;
  settledKey: string | undefined;
  added = false;
  sample: WorkerSample | undefined;
  quiesced = false;
  profiled = false;
  failure: string | undefined;
  /** The first and the last lines the worker wrote (warnings and errors), and counts by message. */
  private readonly firstLines: string[] = [];
  private readonly lastLines: string[] = [];
  readonly warnings: Record<string, number> = {};
  private readonly debugLog = process.env.SCALE_DEBUG_DIR;

  constructor(
    readonly index: number,
    readonly child: ChildProcess,
    bus: EventEmitter,
  ) {
    this.exited = supervise(child);
    child.stderr?.setEncoding('utf8').on('data', (text: string) => {
      if (this.debugLog) appendFileSync(`${this.debugLog}/w${index}.log`, text);
      for (const line of text.split('\n')) {
        if (line.length === 0) continue;
        if (this.firstLines.length < STDERR_LINES) this.firstLines.push(line);
        else this.lastLines.push(line);
        this.lastLines.splice(0, Math.max(0, this.lastLines.length - STDERR_LINES));
        const msg = parseMessage(line);
        this.warnings[msg] = (this.warnings[msg] ?? 0) + 1;
      }
    });
    child.on('message', (message: FromWorker) => {
      this.receive(message);
      bus.emit('message');
    });
    child.once('exit', (code, signal) => {
      this.failure ??= `worker ${index} exited (${signal ?? `code ${code}`})`;
      bus.emit('message');
    });
  }

  private receive(message: FromWorker): void {
    switch (message.type) {
      case 'added':
        this.members = message.members;
        this.added = true;
        return;
      case 'leader': {
        const { key, id, holds, at, firstAt } = message;
        this.leader = { key, id, holds, at, firstAt };
        this.leaderArrivedAt = performance.now();
        return;
      }
      case 'settled':
        this.settledKey = message.key;
        return;
      case 'sample': {
        const { type, ...sample } = message;
        void type;
        this.sample = sample;
        return;
      }
      case 'quiesced':
        this.quiesced = true;
        return;
      case 'profiled':
        this.profiled = true;
        return;
      case 'error':
        this.failure = `worker ${this.index}: ${message.message}`;
        return;
      case 'ready':
        return;
    }
  }

  send(message: ToWorker): void {
    this.child.send(message);
  }

  /** For an error: what the worker wrote first and last, and how often it wrote what. */
  stderrSummary(): string {
    const counts = Object.entries(this.warnings).map(([msg, n]) => `  ${n} × ${msg}`);
    return [...this.firstLines, '…', ...this.lastLines, 'counts:', ...counts].join('\n');
  }
}

/** The worker processes, and waits that end on their messages rather than on a timer. */
class Workers {
  private readonly bus = new EventEmitter();
  readonly handles: WorkerHandle[] = [];

  constructor(
    count: number,
    private readonly cpuProfileDir: string | undefined,
  ) {
    this.bus.setMaxListeners(0);
    const source = import.meta.url.endsWith('.ts');
    const file = new URL(`./scaleWorker.${source ? 'ts' : 'js'}`, import.meta.url);
    // From source (npx tsx) the workers load TypeScript through tsx's loader, resolved from
    // here so that it does not depend on the working directory.
    const execArgv = [
      ...(source ? ['--import', import.meta.resolve('tsx')] : []),
      // For a full collection before memory is read at rest (see `samples`).
      '--expose-gc',
    ];
    for (let i = 0; i < count; i++) {
      const child = fork(file, [], { execArgv, stdio: ['ignore', 'inherit', 'pipe', 'ipc'] });
      this.handles.push(new WorkerHandle(i, child, this.bus));
    }
  }

  /**
   * Resolves with `condition()`'s first defined value, re-checked on every worker message;
   * rejects when a worker fails or after `timeoutMs`.
   */
  waitFor<T>(what: string, timeoutMs: number, condition: () => T | undefined): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const failed = this.handles.find((h) => h.failure !== undefined);
        if (failed) {
          done();
          reject(new Error(`${failed.failure}\n${failed.stderrSummary()}`));
          return;
        }
        const value = condition();
        if (value === undefined) return;
        done();
        resolve(value);
      };
      const timer = setTimeout(() => {
        done();
        const tails = this.handles.map((h) => `--- worker ${h.index} ---\n${h.stderrSummary()}`);
        reject(
          new Error(`scale: ${what} did not happen within ${timeoutMs} ms\n${tails.join('\n')}`),
        );
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.bus.off('message', check);
      };
      this.bus.on('message', check);
      check();
    });
  }

  /** The id (`w2-m17`: worker 2, its member 17) of the member a worker last named leader. */
  idOf(key: string): string {
    return this.handles.find((h) => h.leader.key === key)?.leader.id ?? key;
  }

  /**
   * Runs `phase` under the CPU profiler of every worker when profiling; the profiler's own
   * start and stop stay outside the phase.
   */
  async profiled<T>(name: string, phase: () => Promise<T>): Promise<T> {
    const dir = this.cpuProfileDir;
    if (dir === undefined) return phase();
    const all = async (file: (h: WorkerHandle) => string | undefined) => {
      for (const h of this.handles) {
        h.profiled = false;
        h.send({ type: 'profile', file: file(h) });
      }
      await this.waitFor('profiler', 30_000, () =>
        this.handles.every((h) => h.profiled) ? true : undefined,
      );
    };
    await all(() => undefined);
    const result = await phase();
    await all((h) => `${dir}/${name}-w${h.index}.cpuprofile`);
    return result;
  }

  get members(): number {
    return this.handles.reduce((sum, h) => sum + h.members, 0);
  }

  async close(): Promise<void> {
    const running = this.handles.filter((h) => h.child.connected);
    // First every member stops watching, then the leases go: otherwise each of a thousand
    // revokes would wake every member still watching.
    for (const h of running) h.send({ type: 'quiesce' });
    await this.waitFor('quiesce', 10_000, () =>
      running.every((h) => h.quiesced) ? true : undefined,
    ).catch(() => undefined);
    for (const h of running) h.send({ type: 'close' });
    // A worker that does not finish within the bound is killed; its leases expire by TTL.
    const bound = setTimeout(() => {
      for (const h of this.handles) h.child.kill('SIGKILL');
    }, 20_000);
    await Promise.all(this.handles.map((h) => h.exited));
    clearTimeout(bound);
  }
}

export const scale: Benchmark = (context) => scaleWith(context.smoke ? SMOKE : FULL)(context);

/** The benchmark with another plan: fewer sizes while profiling, say. */
export const scaleWith =
  (plan: Plan): Benchmark =>
  async (context) => {
    const srcChanges = await readSrcChanges();
    const prefix = `/spl-bench-scale-${process.pid}-${Date.now()}`;
    const keys = poolKeys(prefix, POOL);
    const admin = new Etcd3({ hosts: context.etcd.endpoints });
    const workers = new Workers(plan.workers, plan.cpuProfileDir);
    const results: SizeResult[] = [];
    let failure: Failure | undefined;
    try {
      for (const h of workers.handles) {
        h.send({
          type: 'init',
          index: h.index,
          endpoints: context.etcd.endpoints,
          prefix,
          pool: POOL,
          ttlSeconds: TTL_SECONDS,
          parentTimeOrigin: performance.timeOrigin,
        });
      }
      let previous: SizeResult | undefined;
      for (const size of plan.sizes) {
        try {
          const result = await runSize(context, plan, workers, admin, keys.membersPrefix, size);
          result.rssPerExtraMemberBytes =
            previous === undefined
              ? undefined
              : (result.rest.rssBytes - previous.rest.rssBytes) / (size - previous.members);
          results.push(result);
          previous = result;
        } catch (error) {
          // A size the machine cannot hold (etcd or the workers saturated, and the timeouts
          // that follow) is a result too: recorded, and no larger size is tried.
          const message = error instanceof Error ? error.message : String(error);
          failure = { members: size, reached: workers.members, error: message };
          context.log(`${size} members: failed: ${message.split('\n')[0]}`);
          break;
        }
      }
    } finally {
      await workers.close();
      admin.close();
    }
    return section(plan, results, failure, srcChanges);
  };

async function runSize(
  context: Parameters<Benchmark>[0],
  plan: Plan,
  workers: Workers,
  admin: Etcd3,
  membersPrefix: string,
  size: number,
): Promise<SizeResult> {
  const log = (line: string) => context.log(`${size} members: ${line}`);
  const { registerMs, key: settledKey } = await workers.profiled(`${size}-register`, async () => {
    const registerMs = await grow(workers, plan, size, log);
    return { registerMs, key: await settled(workers, size) };
  });
  let key = settledKey;
  log(`settled in ${(registerMs / 1000).toFixed(1)} s, leader ${workers.idOf(key)}`);

  const trials: TrialResult[] = [];
  await workers.profiled(`${size}-trials`, async () => {
    for (let trial = 1; trial <= plan.trials; trial++) {
      const result = await revokeTrial(workers, admin, membersPrefix, key);
      trials.push(result);
      log(
        `trial ${trial}/${plan.trials}: ${result.oldLeader} → ${result.newLeader ?? '?'}: agreed in ` +
          `${ms(result.agreedMs)} (first member ${ms(result.firstSeenMs)}, last message here ${ms(result.arrivedMs)})`,
      );
      // The revoked member registers again as the youngest: wait for the pool to be whole.
      key = await settled(workers, size);
    }
  });

  const metricsUrls = context.etcd.members.map((m) => `${m.clientUrl}/metrics`);
  const rest = await workers.profiled(`${size}-rest`, () =>
    atRest(workers, plan.restMs, metricsUrls),
  );
  log(
    `at rest: RSS ${mb(rest.rssBytes)} (${mb(rest.rssBytes / size, 2)}/member), ` +
      `CPU ${rest.cpuPercent.toFixed(1)} % (${(rest.cpuPercent / size).toFixed(3)} %/member), ` +
      `etcd ${fixed(rest.etcdReceivedTotalPerSec)} req/s, etcd CPU ${fixed(rest.etcdCpuPercent)} %`,
  );
  return {
    members: size,
    processes: plan.workers,
    registerMs,
    trials,
    agreedMs: summarize(trials.map((t) => t.agreedMs)),
    firstSeenMs: summarize(trials.map((t) => t.firstSeenMs)),
    rest,
    rssPerExtraMemberBytes: undefined,
  };
}

/**
 * Adds members until the pool has `size`, spread evenly over the workers, `plan.batch` at a
 * time; after each batch every member must see the pool as it now is before the next batch
 * starts. Without that pause the batches outrun the watches: each registration is an event
 * for every member, and a thousand members' worth queued up behind each other starved the
 * keep-alives and reads on the same connections until they timed out.
 */
async function grow(
  workers: Workers,
  plan: Plan,
  size: number,
  log: (line: string) => void,
): Promise<number> {
  const startedAt = performance.now();
  const before = workers.members;
  let logged = 0;
  for (let total = before; total < size; ) {
    total = Math.min(size, total + plan.batch);
    for (const [i, h] of workers.handles.entries()) {
      const share = Math.floor(total / plan.workers) + (i < total % plan.workers ? 1 : 0);
      const count = Math.max(0, share - h.members);
      h.added = count === 0;
      if (count > 0) h.send({ type: 'add', count });
    }
    await workers.waitFor(`registration of ${total}`, SETTLE_TIMEOUT_MS, () =>
      workers.handles.every((h) => h.added) ? true : undefined,
    );
    await settled(workers, total);
    // One line per quarter of the way.
    const quarter = Math.floor((4 * (total - before)) / (size - before));
    if (quarter > logged) {
      logged = quarter;
      log(`registered ${total}/${size}`);
    }
  }
  return performance.now() - startedAt;
}

/**
 * Every worker's members are ready, see `size` members and agree on one leader, and that
 * leader holds the claim. Returns its member key.
 */
async function settled(workers: Workers, size: number): Promise<string> {
  for (const h of workers.handles) {
    h.settledKey = undefined;
    h.send({ type: 'settle', size });
  }
  return workers.waitFor(`settling on one leader of ${size}`, SETTLE_TIMEOUT_MS, () => {
    const keys = new Set(workers.handles.map((h) => h.settledKey));
    const [key] = keys;
    if (keys.size !== 1 || key === undefined) return undefined;
    return workers.handles.some((h) => h.leader.key === key && h.leader.holds) ? key : undefined;
  });
}

async function revokeTrial(
  workers: Workers,
  admin: Etcd3,
  membersPrefix: string,
  oldKey: string,
): Promise<TrialResult> {
  const oldLeader = workers.idOf(oldKey);
  const leaseId = BigInt(`0x${oldKey.slice(membersPrefix.length)}`).toString();
  const revokedAt = performance.now();
  await admin.leaseClient.leaseRevoke({ ID: leaseId });
  const agreed = await workers
    .waitFor('agreement on a new leader', AGREE_TIMEOUT_MS, () => {
      const states = workers.handles.map((h) => h.leader);
      const key = states[0]?.key;
      if (key === undefined || key === oldKey || states.some((s) => s.key !== key))
        return undefined;
      if (!states.some((s) => s.holds)) return undefined;
      return {
        id: workers.idOf(key),
        agreedAt: Math.max(...states.map((s) => s.at)),
        firstAt: Math.min(...states.map((s) => s.firstAt ?? Infinity)),
        arrivedAt: Math.max(...workers.handles.map((h) => h.leaderArrivedAt)),
      };
    })
    .catch(() => undefined);
  return {
    oldLeader,
    newLeader: agreed?.id,
    agreedMs: agreed && agreed.agreedAt - revokedAt,
    firstSeenMs: agreed && agreed.firstAt - revokedAt,
    arrivedMs: agreed && agreed.arrivedAt - revokedAt,
  };
}

/** CPU, RSS and etcd requests over a window of `restMs` with nothing happening. */
async function atRest(
  workers: Workers,
  restMs: number,
  metricsUrls: string[],
): Promise<RestFigures> {
  const [before, etcdBefore] = await Promise.all([
    samples(workers, false),
    etcdCounters(metricsUrls),
  ]);
  // The window itself: nothing is awaited here, the pool is left alone for `restMs` (two
  // reconcile periods and more than three keep-alive periods in a full run).
  await delay(restMs);
  const [after, etcdAfter] = await Promise.all([samples(workers, true), etcdCounters(metricsUrls)]);
  const windowMs = Math.max(...after.map((s) => s.at)) - Math.min(...before.map((s) => s.at));
  const perSec = (delta: number) => (delta * 1000) / windowMs;
  const sum = (list: WorkerSample[], pick: (s: WorkerSample) => number) =>
    list.reduce((total, s) => total + pick(s), 0);
  const cpuMicros = sum(after, (s) => s.cpuMicros) - sum(before, (s) => s.cpuMicros);

  const memberRequestsPerSec: Record<string, number> = {};
  for (const [i, s] of after.entries()) {
    for (const [operation, count] of Object.entries(s.etcdRequests)) {
      const delta = count - (before[i]!.etcdRequests[operation] ?? 0);
      memberRequestsPerSec[operation] = (memberRequestsPerSec[operation] ?? 0) + perSec(delta);
    }
  }
  const etcdReceivedPerSec: Record<string, number> = {};
  if (etcdBefore && etcdAfter) {
    for (const [method, count] of Object.entries(etcdAfter.received)) {
      const delta = count - (etcdBefore.received[method] ?? 0);
      if (delta > 0) etcdReceivedPerSec[method] = perSec(delta);
    }
  }
  return {
    windowMs,
    rssBytes: sum(after, (s) => s.rssBytes),
    heapUsedBytes: sum(after, (s) => s.heapUsedBytes),
    cpuPercent: (cpuMicros / 1000 / windowMs) * 100,
    etcdReceivedPerSec,
    etcdReceivedTotalPerSec:
      etcdBefore && etcdAfter
        ? Object.values(etcdReceivedPerSec).reduce((total, v) => total + v, 0)
        : undefined,
    etcdCpuPercent:
      etcdBefore && etcdAfter
        ? ((etcdAfter.cpuSeconds - etcdBefore.cpuSeconds) * 1000 * 100) / windowMs
        : undefined,
    etcdRssBytes: etcdAfter?.rssBytes,
    memberRequestsPerSec,
    keepAliveFailures: sum(after, (s) => s.keepAliveFailures),
    watchResyncs: after.reduce<Record<string, number>>((total, s) => {
      for (const [reason, n] of Object.entries(s.watchResyncs))
        total[reason] = (total[reason] ?? 0) + n;
      return total;
    }, {}),
  };
}

/** `collect`: memory after a full garbage collection (CPU time is read before it). */
async function samples(workers: Workers, collect: boolean): Promise<WorkerSample[]> {
  for (const h of workers.handles) {
    h.sample = undefined;
    h.send({ type: 'sample', collect });
  }
  return workers.waitFor('samples', 10_000, () => {
    const all = workers.handles.map((h) => h.sample);
    return all.every((s) => s !== undefined) ? all : undefined;
  });
}

interface EtcdCounters {
  received: Record<string, number>;
  cpuSeconds: number;
  rssBytes: number;
}

/** Sums over etcd's members; undefined when one does not answer (e.g. over TLS). */
async function etcdCounters(urls: string[]): Promise<EtcdCounters | undefined> {
  const counters: EtcdCounters = { received: {}, cpuSeconds: 0, rssBytes: 0 };
  try {
    const bodies = await Promise.all(
      urls.map(async (url) => (await fetch(url, { signal: AbortSignal.timeout(2000) })).text()),
    );
    for (const body of bodies) {
      for (const line of body.split('\n')) {
        const received = /^grpc_server_msg_received_total\{([^}]*)\} (\S+)$/.exec(line);
        if (received) {
          const method = /grpc_method="([^"]+)"/.exec(received[1]!)?.[1] ?? '?';
          counters.received[method] = (counters.received[method] ?? 0) + Number(received[2]);
        } else if (line.startsWith('process_cpu_seconds_total ')) {
          counters.cpuSeconds += Number(line.split(' ')[1]);
        } else if (line.startsWith('process_resident_memory_bytes ')) {
          counters.rssBytes += Number(line.split(' ')[1]);
        }
      }
    }
    return counters;
  } catch {
    return undefined;
  }
}

function section(
  plan: Plan,
  results: SizeResult[],
  failure: Failure | undefined,
  srcChanges: unknown,
): Section {
  const main: Table = {
    caption:
      `Pools of ${plan.sizes.join(', ')} members on ${plan.workers} processes, TTL ${TTL_SECONDS} s: ` +
      `convergence after the leader's lease is revoked (${plan.trials} trial${plan.trials === 1 ? '' : 's'} ` +
      `per size), and the cost at rest`,
    header: [
      'members',
      'processes',
      'converged p50',
      'converged max',
      'RSS / member',
      'RSS / extra member',
      'CPU % / member',
      'etcd req/s',
    ],
    rows: results.map((r) => [
      String(r.members),
      String(r.processes),
      ms(r.agreedMs?.p50),
      ms(r.agreedMs?.max),
      mb(r.rest.rssBytes / r.members, 2),
      r.rssPerExtraMemberBytes === undefined ? '—' : mb(r.rssPerExtraMemberBytes, 3),
      (r.rest.cpuPercent / r.members).toFixed(3),
      fixed(r.rest.etcdReceivedTotalPerSec),
    ]),
  };
  if (failure) {
    main.rows.push([
      String(failure.members),
      String(plan.workers),
      `failed at ${failure.reached} registered`,
      ...main.header.slice(3).map(() => '—'),
    ]);
  }
  const breakdown: Table = {
    caption:
      'At rest, in detail: etcd requests received per second by method (gRPC messages, so each ' +
      'keep-alive on its stream counts), what the members counted themselves, and the processes',
    header: [
      'members',
      'keep-alives/s',
      'reads (Txn)/s',
      'other/s',
      'members counted/s',
      'RSS total',
      'CPU total',
      'etcd CPU',
      'new leader first seen p50',
    ],
    rows: results.map((r) => {
      const received = r.rest.etcdReceivedPerSec;
      const keepAlives = received.LeaseKeepAlive ?? 0;
      const txn = received.Txn ?? 0;
      const counted = Object.values(r.rest.memberRequestsPerSec).reduce((a, b) => a + b, 0);
      return [
        String(r.members),
        keepAlives.toFixed(0),
        txn.toFixed(0),
        r.rest.etcdReceivedTotalPerSec === undefined
          ? '—'
          : Math.max(0, r.rest.etcdReceivedTotalPerSec - keepAlives - txn).toFixed(0),
        counted.toFixed(0),
        mb(r.rest.rssBytes),
        `${r.rest.cpuPercent.toFixed(1)} %`,
        r.rest.etcdCpuPercent === undefined ? '—' : `${r.rest.etcdCpuPercent.toFixed(1)} %`,
        ms(r.firstSeenMs?.p50),
      ];
    }),
  };
  const plots: Plot[] = [
    {
      file: 'scale-convergence.svg',
      title: 'Every member agrees on the new leader, after the leader’s lease is revoked',
      xLabel: 'members',
      yLabel: 'ms',
      kind: 'line',
      logX: true,
      series: [
        { name: 'p50', points: points(results, (r) => r.agreedMs?.p50) },
        { name: 'max', points: points(results, (r) => r.agreedMs?.max) },
        { name: 'first member, p50', points: points(results, (r) => r.firstSeenMs?.p50) },
      ],
    },
    {
      file: 'scale-rss.svg',
      title: `RSS of the ${plan.workers} member processes at rest`,
      xLabel: 'members',
      yLabel: 'MB',
      kind: 'line',
      series: [{ name: 'RSS total', points: points(results, (r) => r.rest.rssBytes / 2 ** 20) }],
    },
  ];
  const largest = results[results.length - 1];
  const previous = results[results.length - 2];
  const at1000 = largest !== undefined && largest.members >= 1000;
  // What the figures stand for when they are not of 1 000 members.
  const scope = failure
    ? `${failure.members} members failed (${failure.error.split('\n')[0]}); largest completed: `
    : at1000
      ? ''
      : 'smoke run, not 1 000 members: ';
  const targets: TargetCheck[] = [
    {
      target: '1 000 members converge under 1 s after leader loss',
      measured: largest
        ? `${scope}${largest.members} members: p50 ${ms(largest.agreedMs?.p50)}, ` +
          `max ${ms(largest.agreedMs?.max)} over ${largest.trials.length} trials` +
          (largest.trials.some((t) => t.agreedMs === undefined) ? ' (some did not converge)' : '')
        : `${scope}—`,
      met:
        at1000 &&
        !failure &&
        largest.trials.every((t) => t.agreedMs !== undefined && t.agreedMs < 1000),
    },
    {
      target: 'under 1 MB RSS per extra member at rest',
      measured:
        largest?.rssPerExtraMemberBytes === undefined || previous === undefined
          ? `${scope}—`
          : `${scope}${mb(largest.rssPerExtraMemberBytes, 3)} per member added from ` +
            `${previous.members} to ${largest.members} members`,
      met:
        at1000 &&
        !failure &&
        largest.rssPerExtraMemberBytes !== undefined &&
        largest.rssPerExtraMemberBytes < 2 ** 20,
    },
  ];
  return {
    id: 'scale',
    title: 'Scale: pools of up to 1 000 members',
    method:
      `Members are the real election (no HTTP server), ${plan.workers} worker processes with one ` +
      `etcd client each, on the shared 3-member etcd; the pool grows ${plan.sizes.join(' → ')}. ` +
      `Convergence: the leader's lease is revoked from another etcd client; time from just before ` +
      `the revoke until every member's leader() names the same new leader and it isLeader(), ` +
      `detected from election events in the workers. At rest: worker CPU and RSS over ` +
      `${plan.restMs / 1000} s, etcd requests from etcd's own /metrics (gRPC messages received).`,
    tables: [main, breakdown],
    plots,
    targets,
    data: {
      plan,
      ttlSeconds: TTL_SECONDS,
      timing:
        'agreedMs/firstSeenMs: worker monotonic clocks shifted onto the parent’s by the ' +
        'difference of performance.timeOrigin; arrivedMs: when the IPC message arrived in the parent',
      sizes: results,
      failure,
      srcChanges,
    },
  };
}

/** The `msg` of a pino line (with its `err`, for keep-alive failures and such), or the line. */
function parseMessage(line: string): string {
  try {
    const { msg, reason } = JSON.parse(line) as { msg?: string; reason?: string };
    return reason === undefined ? String(msg) : `${msg} (${reason})`;
  } catch {
    return line.slice(0, 120);
  }
}

function points(
  results: SizeResult[],
  pick: (r: SizeResult) => number | undefined,
): [number, number][] {
  return results.flatMap((r) => {
    const y = pick(r);
    return y === undefined ? [] : [[r.members, y] as [number, number]];
  });
}

function mb(bytes: number, digits = 1): string {
  return `${(bytes / 2 ** 20).toFixed(digits)} MB`;
}

function fixed(value: number | undefined): string {
  return value === undefined ? '—' : value.toFixed(0);
}
