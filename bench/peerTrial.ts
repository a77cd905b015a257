/**
 * One handover of the peer benchmark (bench/peer.ts): signal the leader of etcd3's `Election`
 * and time, on this process's monotonic clock (`performance.now()`, ms from the signal), until
 * its key is deleted, a new leader is observed, and the new leader's campaign says `elected`.
 * A crash trial is given a phase: the SIGKILL lands that many ms after one of the leader's
 * lease renewals (its `renewed` lines, bench/crashPhase.ts), the same phase as our pool's
 * trial of the round; the trial records the phase it hit.
 *
 * What blocks: `peerTrial` until the pool's leader has settled, (crash) the phase's moment has
 * come (≤ about one renewal interval, TTL/3, and at most TTL), the three events have arrived or
 * TTL + FAILOVER_SLACK_MS have passed, the signalled candidate has exited, and, with
 * `restart`, its successor process is campaigning.
 */
import { performance } from 'node:perf_hooks';
import { describeExit } from '../src/demo/childProcesses.js';
import { signalMoment, sleepUntil } from './crashPhase.js';
import { FAILOVER_SLACK_MS, type TrialKind } from './failoverScenarios.js';
import type { PeerPool } from './peerPool.js';
import type { ValueEvent } from './peerTimeline.js';

/** The failover benchmark's kinds but restart takeover, which etcd3's Election has no part in. */
export type PeerTrialKind = Exclude<TrialKind, 'restart'>;

export interface PeerTrialResult {
  kind: PeerTrialKind;
  ttlSeconds: number;
  /** How long the trial waited for a quiet machine before its signal (graceful only). */
  quietWaitMs?: number | undefined;
  /** Campaign values (`<id>.<incarnation>`): the leader that was signalled, and its successor. */
  leader: string;
  deletedMs: number | undefined;
  observedLeader: string | undefined;
  observedMs: number | undefined;
  electedLeader: string | undefined;
  electedMs: number | undefined;
  /** Graceful only: how long `resign()` took inside the old leader, by its own clock. */
  resignMs: number | undefined;
  /** How the signalled candidate ended, e.g. `exit code 0` or `signal SIGKILL`. */
  exit: string;
  /** Crash only: ms from the leader's last lease renewal (its keep-alive sent) to the signal. */
  phaseMs: number | undefined;
}

/**
 * One handover: signal the settled leader (SIGTERM for `graceful`, SIGKILL for `crash`; with
 * `phaseMs`, that many ms after one of its lease renewals), wait until the observer and the
 * successor's campaign both name someone else, then, with `restart`, start the signalled
 * candidate again so the pool is back to three.
 */
export async function peerTrial(
  pool: PeerPool,
  kind: PeerTrialKind,
  restart: boolean,
  phaseMs?: number,
): Promise<PeerTrialResult> {
  const leader = await pool.settledLeader();
  const isNew = (since: number) => (event: ValueEvent) =>
    event.at >= since && event.value !== undefined && event.value !== leader.value;
  const bound = pool.ttlSeconds * 1000 + FAILOVER_SLACK_MS;

  // A graceful handover on a quiet machine, a crash at its phase, as ours.
  const { quiet, target } = await signalMoment(pool.leaseRenewals(leader), phaseMs, {
    ttlSeconds: pool.ttlSeconds,
    whose: `${pool.system.key} leader ${leader.value}`,
  });
  if (target !== undefined) await sleepUntil(target.at);
  const since = performance.now();
  leader.signal(kind === 'graceful' ? 'SIGTERM' : 'SIGKILL');
  const [deleted, observed, elected, status] = await Promise.all([
    pool.deleted.waitFor((event) => event.at >= since && event.value === leader.value, bound),
    pool.observed.waitFor(isNew(since), bound),
    pool.elected.waitFor(isNew(since), bound),
    leader.exited,
  ]);
  const resigned = pool.resigned.find((event) => event.value === leader.value);
  if (restart) await pool.startCandidate(leader.id);
  return {
    kind,
    ttlSeconds: pool.ttlSeconds,
    quietWaitMs: quiet?.waitedMs,
    leader: leader.value,
    deletedMs: deleted === undefined ? undefined : deleted.at - since,
    observedLeader: observed?.value,
    observedMs: observed === undefined ? undefined : observed.at - since,
    electedLeader: elected?.value,
    electedMs: elected === undefined ? undefined : elected.at - since,
    resignMs: resigned?.ms,
    exit: describeExit(status),
    phaseMs: target === undefined ? undefined : since - target.renewedAt,
  };
}
