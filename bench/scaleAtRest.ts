/**
 * The cost of a pool at rest, for the scale benchmark (bench/scale.ts): over a window in which
 * nothing happens, the worker processes' CPU time and their RSS at its end, and the requests
 * etcd received meanwhile beside those the members counted themselves.
 *
 * Two counts of the same traffic, from both sides: etcd's `grpc_server_msg_received_total`
 * from each etcd member's /metrics on its client URL (every gRPC message, so each keep-alive
 * on its stream counts), and the members' own `service_pool_etcd_requests_total` (unary calls
 * and stream opens), sent by the workers in their samples.
 *
 * What blocks: `atRest` for the window (`restMs`) plus two rounds of samples (≤ 10 s each) and
 * of etcd's /metrics (≤ 2 s each). Units: ms, bytes, CPU % of one core, requests per second.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { WorkerSample } from './scaleWorker.js';
import type { Workers } from './scaleWorkerProcesses.js';

export interface RestFigures {
  /** From the first worker's sample before the window to the last one's after it. */
  windowMs: number;
  /** Summed over the workers, after a full garbage collection. */
  rssBytes: number;
  heapUsedBytes: number;
  /** CPU time of all the workers over the window, in % of one core. */
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

/** CPU, RSS and etcd requests over a window of `restMs` with nothing happening. */
export async function atRest(
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
