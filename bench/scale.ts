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
 * This file runs the measurement: the growth, the trials and the window at rest, size by size.
 * The plan is in bench/scalePlan.ts, the worker processes in bench/scaleWorkerProcesses.ts, the
 * window at rest in bench/scaleAtRest.ts and the section it returns in bench/scaleReport.ts.
 * What blocks: every wait ends on a worker message, bounded by bench/scalePlan.ts's timeouts.
 */
import { performance } from 'node:perf_hooks';
import { Etcd3 } from 'etcd3';
import { poolKeys } from '../src/etcd/keys.js';
import { ms, type Benchmark } from './section.js';
import { summarize } from './stats.js';
import { atRest } from './scaleAtRest.js';
import {
  AGREE_TIMEOUT_MS,
  FULL,
  POOL,
  SETTLE_TIMEOUT_MS,
  SMOKE,
  TTL_SECONDS,
  type Plan,
} from './scalePlan.js';
import {
  fixed,
  mb,
  readSrcChanges,
  section,
  type Failure,
  type SizeResult,
  type TrialResult,
} from './scaleReport.js';
import { Workers } from './scaleWorkerProcesses.js';

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

/**
 * One convergence trial: revokes the lease of the leader at `oldKey` and waits (at most
 * AGREE_TIMEOUT_MS) until every member names one new leader that holds the claim. A trial that
 * times out has no times rather than failing the size.
 */
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
