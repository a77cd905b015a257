/**
 * When in the lease renewal cycle a crash trial's SIGKILL lands (bench/failover.ts), so that
 * every system is killed at the same phases.
 *
 * Timing model. Every system in the crash comparison keeps its lease alive every TTL/3 (ours:
 * src/membership/lease.ts; etcd3 1.1.2: its Lease's keep-alive timer). etcd expires a lease TTL
 * after the last keep-alive it received and checks for expired leases about every 500 ms, so
 * "signal → successor leads" ≈ TTL − (time from the last renewal to the signal, the *phase*)
 * + up to 500 ms + the successor's own reaction. A kill at a random moment adds a phase drawn
 * from 0 to TTL/3 to each trial — 667 ms of spread at TTL 2 s, more than the check's — and
 * nothing makes two systems draw alike: a system whose trials take a little longer meets the
 * renewal cycle at other phases. With ten trials the p50 ratio of ours
 * to etcd3's swung between 0.80× and 1.14× from run to run.
 *
 * So each crash trial first learns when the leader last renewed — the send of its last
 * answered keep-alive, on this process's monotonic clock (`performance.now()`, ms) — and
 * signals a set phase after a renewal: trial k of n at ((s + 0.5) / n) × TTL/3, with s a
 * stratum of the cycle, each stratum used once (`crashPhases`). The strata come in a spread
 * order (the ranks of the van der Corput sequence), so that any first trials, and a run cut
 * short with `--rounds`, cover the cycle, and a drift of the machine during the run does not
 * line up with the phase. bench/failover.ts hands trial k's phase to our pool and to every
 * peer, so all see the same phases; what is left between them is etcd's expiry check and
 * their reactions.
 *
 * How a system's renewals are read is its own (`RenewalClock`): ours from the leader's GET
 * /pool `leaseTimeLeftMs` (bench/failoverPool.ts), etcd3's from its candidate's `renewed`
 * lines (bench/peerPool.ts). `signalMoment` picks, for any trial, that moment or (graceful,
 * restart) a quiet machine. What blocks: `phaseTarget` until a renewal with its phase still
 * ahead is known (about one renewal interval, TTL/3, at most a TTL); `signalMoment` as long,
 * or until the machine is quiet (≤ 5 s); `sleepUntil` until its moment. Nothing here cancels:
 * every wait is bounded.
 */
import { performance } from 'node:perf_hooks';
import { sleep } from '../src/util/time.js';
import { machineQuiet } from './machineQuiet.js';

/** How often both systems renew their lease (ms): every TTL/3. */
export function renewalIntervalMs(ttlSeconds: number): number {
  return (ttlSeconds * 1000) / 3;
}

/**
 * A moment chosen must be at least this far ahead (ms) when it is found, so that the timer
 * that signals fires on it, not late.
 */
export const SIGNAL_LEAD_MS = 5;

/** The `k`-th value (k ≥ 0) of the base-2 van der Corput sequence: 0, ½, ¼, ¾, ⅛, …. */
function vanDerCorput(k: number): number {
  let value = 0;
  for (let bit = 0.5, rest = k; rest > 0; bit /= 2, rest = Math.floor(rest / 2)) {
    if (rest % 2 === 1) value += bit;
  }
  return value;
}

/**
 * The phase of each of `trials` crash trials (ms after a renewal, trial order): the middles
 * of `trials` equal strata of the renewal interval, each once, in a spread order.
 * `crashPhases(4, 2)`: [83.3, 416.7, 250, 583.3].
 */
export function crashPhases(trials: number, ttlSeconds: number): number[] {
  const intervalMs = renewalIntervalMs(ttlSeconds);
  const byValue = Array.from({ length: trials }, (_, k) => k).sort(
    (a, b) => vanDerCorput(a) - vanDerCorput(b),
  );
  const stratum = new Array<number>(trials);
  for (const [rank, k] of byValue.entries()) stratum[k] = rank;
  return stratum.map((s) => ((s + 0.5) / trials) * intervalMs);
}

/**
 * A system's renewals of one lease. A renewal is the moment its keep-alive was sent (the
 * answer proves etcd renewed it then), in ms on this process's `performance.now()`.
 */
export interface RenewalClock {
  /** The latest renewal known now; undefined when none is. Blocks for one read at most. */
  latest(): Promise<number | undefined>;
  /**
   * The first renewal later than `after` (any, when undefined), as soon as it is known;
   * undefined after `timeoutMs`.
   */
  next(after: number | undefined, timeoutMs: number): Promise<number | undefined>;
}

/** When to signal: `phaseMs` after the renewal at `renewedAt` (ms, `performance.now()`). */
export interface PhaseTarget {
  renewedAt: number;
  at: number;
}

/** What `phaseTarget` looks for, and whose lease it is (for the error). */
export interface PhaseWanted {
  /** ms after a renewal; below the renewal interval (TTL/3). */
  phaseMs: number;
  /** The lease's TTL (s): a lease that shows no renewal for a whole TTL is given up on. */
  ttlSeconds: number;
  /** For the error: `leader a`, `etcd3 leader b.3`. */
  whose: string;
}

/**
 * The first moment `phaseMs` after a renewal that is still ahead by SIGNAL_LEAD_MS: after the
 * latest renewal when its phase has not passed, else after the next renewal to come (or the
 * one after, when the next was learnt too late for a short phase). Throws when no such
 * renewal is known within a TTL. `now`: the clock the renewals are on.
 */
export async function phaseTarget(
  renewals: RenewalClock,
  { phaseMs, ttlSeconds, whose }: PhaseWanted,
  now: () => number = () => performance.now(),
): Promise<PhaseTarget> {
  const timeoutMs = ttlSeconds * 1000;
  const deadline = now() + timeoutMs;
  let renewedAt = await renewals.latest();
  for (;;) {
    if (renewedAt !== undefined && renewedAt + phaseMs >= now() + SIGNAL_LEAD_MS) {
      return { renewedAt, at: renewedAt + phaseMs };
    }
    const left = deadline - now();
    const next = left > 0 ? await renewals.next(renewedAt, left) : undefined;
    if (next === undefined) {
      throw new Error(`${whose}: no lease renewal seen within ${timeoutMs} ms`);
    }
    renewedAt = next;
  }
}

/**
 * When a trial may signal its leader: with `phaseMs` (a crash), the phase's moment after one
 * of `renewals` (`phaseTarget`); without, once the machine is quiet (a graceful handover or a
 * restart, machineQuiet.ts), which it returns with how long that took.
 */
export async function signalMoment(
  renewals: RenewalClock,
  phaseMs: number | undefined,
  wanted: Omit<PhaseWanted, 'phaseMs'>,
): Promise<{ target?: PhaseTarget; quiet?: { quiet: boolean; waitedMs: number } }> {
  if (phaseMs === undefined) return { quiet: await machineQuiet() };
  return { target: await phaseTarget(renewals, { ...wanted, phaseMs }) };
}

/** Resolves at `at` (ms, `performance.now()`), at once when it has passed. */
export function sleepUntil(at: number): Promise<void> {
  return sleep(Math.max(0, at - performance.now()));
}
