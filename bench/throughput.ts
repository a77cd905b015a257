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
 * - GET /work through nginx and through HAProxy (Debian's) in front of the leader: the
 *   reference hops (issue 16); and through a bare node:http hop (bench/nodeHop.ts): what a
 *   hop costs in Node.js with nothing in it, on the same machine;
 * - /work on the leader, via the follower, nginx, HAProxy and the bare node:http hop again
 *   with one connection: the hop's latency without a queue in front of it.
 *
 * Rounds are interleaved (every target once per round, in the same order), so a drift of the
 * machine during the run touches every target alike; each figure is the median over rounds,
 * and ratios and overheads are taken between runs of the same round.
 *
 * Every run is checked (bench/throughputChecks.ts): Little's law between req/s, mean latency
 * and connections, and the server side's count (the leader's tickets, the bare server's own
 * count) against the load generator's; a run that fails either fails the benchmark. The CPU
 * time of the serving process and of the hop (the follower, nginx's worker, the bare forward)
 * is read from /proc around each run, so a hop's cost per request is measured, not inferred.
 *
 * etcd requests are read from every member's `service_pool_etcd_requests_total` just before
 * and after each measured run. The members make some requests at rest (a reconciling read
 * every few seconds, lease keep-alives): that rate is measured during the reference runs,
 * when the pool gets no work at all, and subtracted to get the requests a call costs.
 *
 * This file runs the measurement, round by round. What is loaded and for how long is in
 * bench/throughputSettings.ts, the load generator and references in
 * bench/throughputProcesses.ts, the pool and its counters in bench/throughputPool.ts, the
 * arithmetic in bench/throughputFigures.ts and the section in bench/throughputReport.ts.
 * What blocks: each run for its warm-up and duration (seconds), SETTLE_MS after each of them,
 * and the counter reads and ticket probes around it.
 */
import { performance } from 'node:perf_hooks';
import { assertCliBuilt, type MemberProcess } from '../src/demo/memberProcess.js';
import { sleep } from '../src/util/time.js';
import { ProxyHop } from './proxyHop.js';
import { totalCpuMs } from './processCpu.js';
import { ms, type Benchmark } from './section.js';
import { rowProblems } from './throughputChecks.js';
import { runTiming, sum, throughputFigures, total, type RunRecord } from './throughputFigures.js';
import {
  MEMBER_IDS,
  minus,
  probeTicket,
  readCounters,
  settledLeader,
  startPool,
} from './throughputPool.js';
import {
  answeredBy,
  LoadGenerator,
  startNodeHop,
  startReferences,
  stopChild,
  type Reference,
} from './throughputProcesses.js';
import { reqs, report } from './throughputReport.js';
import {
  loadTargets,
  SETTINGS,
  type HopKey,
  type ServerKey,
  type Target,
} from './throughputSettings.js';

/**
 * A run's end leaves its last requests in flight (autocannon drops them, the pool finishes
 * them): a pause after each run, so that they land before the counters are read.
 */
const SETTLE_MS = 150;

export const throughput: Benchmark = async (context) => {
  assertCliBuilt();
  const base = context.smoke ? SETTINGS.smoke : SETTINGS.full;
  const settings = { ...base, rounds: Math.min(base.rounds, context.rounds ?? Infinity) };
  context.log(
    `starting a pool of ${MEMBER_IDS.length}, the bare references and the load generator`,
  );
  const generator = LoadGenerator.start();
  const references: Reference[] = [];
  const members: MemberProcess[] = [];
  let nginx: ProxyHop | undefined;
  let haproxy: ProxyHop | undefined;
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
    nginx = await ProxyHop.start('nginx', leader.url, '/work?payload=probe');
    haproxy = await ProxyHop.start('haproxy', leader.url, '/work?payload=probe');
    const nodeHop = await startNodeHop(leader.url, references);
    context.log(
      `pool settled: leader ${leader.id}, load through follower ${follower.id}, nginx ${nginx.url}, HAProxy ${haproxy.url} and a bare node:http hop ${nodeHop.url}`,
    );
    const targets = loadTargets(
      {
        bare: bare.url,
        hop: hop.url,
        leader: leader.url,
        follower: follower.url,
        nginx: nginx.url,
        haproxy: haproxy.url,
        nodeHop: nodeHop.url,
      },
      settings.connections,
    );
    const pidOf = (process: { pid?: number | undefined }) => (process.pid ? [process.pid] : []);
    const serverPids: Record<ServerKey, number[]> = {
      bare: pidOf(bare.child),
      leader: pidOf(leader),
    };
    const hopPids: Record<HopKey, number[]> = {
      forward: pidOf(hop.child),
      follower: pidOf(follower),
      nginx: nginx.workerPids,
      haproxy: haproxy.workerPids,
      node: pidOf(nodeHop.child),
    };
    const problems: string[] = [];

    async function measure(target: Target, round: number): Promise<RunRecord> {
      const single = target.connections === 1;
      const { url, connections } = target;
      // The warm-up is a run of its own, before the counters are read, so that the window
      // below covers the measured run only.
      const warmup = single ? settings.latencyWarmupSeconds : settings.warmupSeconds;
      await generator.run({ url, connections, durationSeconds: warmup });
      await sleep(SETTLE_MS);
      const ticketBefore = await probeTicket(leader);
      // The server side's own count: the bare server's, or the leader's tickets.
      const bareBefore = target.server === 'bare' ? await answeredBy(bare) : 0;
      const before = await Promise.all(members.map(readCounters));
      const hopPidsNow = target.hop === undefined ? [] : hopPids[target.hop];
      const serverCpuBefore = totalCpuMs(serverPids[target.server]);
      const hopCpuBefore = totalCpuMs(hopPidsNow);
      const startedAt = performance.now();
      const load = await generator.run({
        url,
        connections,
        durationSeconds: single ? settings.latencyDurationSeconds : settings.durationSeconds,
      });
      await sleep(SETTLE_MS);
      const serverCpuMs = totalCpuMs(serverPids[target.server]) - serverCpuBefore;
      const hopCpuMs = totalCpuMs(hopPidsNow) - hopCpuBefore;
      const after = await Promise.all(members.map(readCounters));
      const windowSeconds = (performance.now() - startedAt) / 1000;
      const ticketAfter = await probeTicket(leader);
      // Both probes took a ticket: the run's are the ones strictly between them.
      const tickets = ticketAfter - ticketBefore - 1;
      const served = target.server === 'bare' ? (await answeredBy(bare)) - bareBefore : tickets;
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
        tickets,
        served,
        serverCpuMs,
        hopCpuMs: target.hop === undefined ? undefined : hopCpuMs,
      };
      const found = rowProblems(runTiming(target, record));
      problems.push(...found);
      context.log(
        `round ${round}/${settings.rounds} ${target.name}, ${target.connections} conn.: ` +
          `${reqs(load.requestsPerSecond)} req/s, p50 ${ms(load.latencyMs.p50, 2)}, ` +
          `p99 ${ms(load.latencyMs.p99, 2)}, ${record.etcdRequests} etcd requests, ` +
          `${load.non2xx + load.errors} failed; served ${served} of ${load.requests} counted` +
          (found.length > 0 ? `; INCONSISTENT: ${found.join('; ')}` : ''),
      );
      return record;
    }

    // Interleaved: every target once per round, in the same order.
    const runs: RunRecord[] = [];
    for (let round = 1; round <= settings.rounds; round++) {
      for (const target of targets) runs.push(await measure(target, round));
    }
    const figures = throughputFigures(targets, runs, leader.id);
    return { ...report(figures, runs, settings, leader.id, follower.id), errors: problems };
  } finally {
    await nginx?.close();
    await haproxy?.close();
    await generator.close();
    await Promise.all(references.map((ref) => stopChild(ref.child)));
    await Promise.all(members.map((m) => m.kill()));
  }
};
