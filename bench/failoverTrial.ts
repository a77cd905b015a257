/**
 * One failover trial of the failover benchmark (bench/failover.ts): a client loops on a
 * follower while the leader gets its signal, and the trial reads, on this process's monotonic
 * clock (`performance.now()`, ms from the signal), when the new leader first served and
 * claimed, and which calls failed in between.
 *
 * A crash trial is given a phase: the SIGKILL lands that many ms after one of the leader's
 * lease renewals, read from its GET /pool (bench/crashPhase.ts), so that our crashes and the
 * peers' meet the renewal cycle at the same points; the trial records the phase it hit.
 *
 * What blocks: `failoverTrial` until the pool has settled, (crash) the phase's moment has come
 * (≤ about one renewal interval, TTL/3, and at most TTL), the new leader has served and
 * claimed (≤ TTL + FAILOVER_SLACK_MS) and the pool is back to its size; each client call
 * ≤ 5 s.
 */
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { pollUntil } from '../src/demo/childProcesses.js';
import { sleep } from '../src/util/time.js';
import { signalMoment, sleepUntil } from './crashPhase.js';
import type { BenchPool } from './failoverPool.js';
import { FAILOVER_SLACK_MS, type TrialKind } from './failoverScenarios.js';

export interface TrialResult {
  kind: TrialKind;
  ttlSeconds: number;
  /** How long the trial waited for a quiet machine before its signal (graceful, restart). */
  quietWaitMs?: number | undefined;
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
  /** Crash only: ms from the leader's last lease renewal (its keep-alive sent) to the signal. */
  phaseMs: number | undefined;
}

/** The client's loop starts this long (ms) before the signal, so its connection is warm. */
const WARM_MS = 30;

interface CallRecord {
  startedAt: number;
  endedAt: number;
  status: number;
  performedBy: string | undefined;
}

/**
 * Calls GET /work on `url` back to back until stopped, recording every call, over one
 * kept-alive connection of node:http's: the client shares the machine with what it measures,
 * and fetch (undici) cost this process 3–4 times the CPU per call (130–150 µs against 37–40 on
 * the benchmark machine, a local server answering) — time the members and etcd waited for.
 */
class WorkLoop {
  readonly records: CallRecord[] = [];
  private running = true;
  private readonly done: Promise<void>;
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

  constructor(url: string) {
    this.done = this.run(`${url}/work?payload=bench`);
  }

  private async run(url: string): Promise<void> {
    while (this.running) {
      const startedAt = performance.now();
      const { status, performedBy } = await this.call(url);
      this.records.push({ startedAt, endedAt: performance.now(), status, performedBy });
    }
    this.agent.destroy();
  }

  /** One call: its status and who performed it; status 0 when it failed (refused, reset, 5 s). */
  private call(url: string): Promise<{ status: number; performedBy: string | undefined }> {
    return new Promise((resolve) => {
      const failed = () => resolve({ status: 0, performedBy: undefined });
      const req = http.get(url, { agent: this.agent, timeout: 5000 }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', failed);
        res.on('end', () => {
          let performedBy: string | undefined;
          try {
            performedBy = (JSON.parse(Buffer.concat(chunks).toString()) as { performedBy?: string })
              .performedBy;
          } catch {
            // not JSON: the status says what happened
          }
          resolve({ status: res.statusCode ?? 0, performedBy });
        });
      });
      req.on('timeout', () => req.destroy());
      req.on('error', failed);
    });
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

/**
 * One failover: signal the settled leader (SIGTERM for `graceful`, SIGKILL otherwise; with
 * `phaseMs`, that many ms after one of its lease renewals), wait for the new leader to serve
 * and claim, then bring the pool back to `size` members — for `restart`, the killed member is
 * started again at once, same id and port, as part of the trial.
 */
export async function failoverTrial(
  pool: BenchPool,
  kind: TrialKind,
  size: number,
  phaseMs?: number,
): Promise<TrialResult> {
  const { leader, observer } = await pool.settled(size);
  // A graceful handover on a quiet machine, a crash at its phase, as every peer's.
  const { quiet, target } = await signalMoment(pool.leaseRenewals(leader), phaseMs, {
    ttlSeconds: pool.ttlSeconds,
    whose: `leader ${leader}`,
  });
  // A few calls first, so the connection is open and warm when the signal goes; not longer
  // before a phase's moment than that, since the loop loads the machine while it runs.
  if (target !== undefined) await sleepUntil(target.at - WARM_MS);
  const loop = new WorkLoop(pool.member(observer).url);
  await (target === undefined ? sleep(WARM_MS) : sleepUntil(target.at));
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
    quietWaitMs: quiet?.waitedMs,
    leader,
    observer,
    servedBy: served?.performedBy,
    servedMs: served === undefined ? undefined : served.endedAt - since,
    claimedBy: claim?.id,
    claimedMs: claim === undefined ? undefined : claim.at - since,
    failed: during.filter((r) => r.status !== 200).length,
    calls: during.length,
    phaseMs: target === undefined ? undefined : since - target.renewedAt,
  };
}
