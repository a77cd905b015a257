/**
 * Leadership as callbacks, in the shape of client-go's `LeaderCallbacks`: a term starts with
 * an `AbortSignal` that aborts the moment it ends, and every end says why.
 *
 * The watcher decides from the election's synchronous state (`isLeader()`, `term`,
 * `leader()`) on every `change` event, and on a timer set to the local lease deadline (minus
 * the safety margin): a lease that is not renewed ends leadership without any event from
 * etcd, and the signal aborts then, not at the election's next tick.
 *
 * Why a term ended comes from the election's `released` event, emitted the moment it gives a
 * term up (a release of its own, or a claim it saw change in etcd) and checked at once; a
 * term that ends without one ended at its deadline.
 */
import type { PoolElection } from './election.js';
import type { LeaderInfo } from './leaderLog.js';
import { LeadershipEndedError, type LeadershipEndReason } from './leadershipEnd.js';

/**
 * Called synchronously from the election's events; none of them is awaited, so a callback
 * that starts long work returns at once and watches `signal` (or `onStoppedLeading`). A
 * callback that throws disturbs neither the election nor the other callbacks: its error goes
 * to `onError`. In one evaluation the order is `onStoppedLeading`, `onNewLeader`,
 * `onStartedLeading`.
 */
export interface LeadershipCallbacks {
  /**
   * This member leads under `term` (the fencing token for `fenced(term)`). `signal` aborts,
   * with a `LeadershipEndedError` as its reason, the moment the term ends. A term whose
   * deadline passed can start again (a late renewal): then with a new signal.
   */
  onStartedLeading?: (term: bigint, signal: AbortSignal) => void;
  /** The term ended; its signal has already aborted with `reason`. */
  onStoppedLeading?: (term: bigint, reason: LeadershipEndedError) => void;
  /**
   * The pool's leader as this member's view sees it changed (another member, another term,
   * or none: undefined), ourselves included. Fired once at subscription with the leader then.
   */
  onNewLeader?: (leader: LeaderInfo | undefined) => void;
}

/**
 * Watches `election` and calls `callbacks`; returns the unsubscribe, which aborts a running
 * term with reason `unsubscribed`. Never blocks. `onError` gets what a callback threw
 * (default: rethrown on a later turn, an uncaught exception, as an unguarded listener's).
 */
export function watchLeadership(
  election: PoolElection,
  callbacks: LeadershipCallbacks,
  onError: (error: unknown) => void = (error) =>
    queueMicrotask(() => {
      throw error;
    }),
): () => void {
  const call = (callback: () => void) => {
    try {
      callback();
    } catch (error) {
      onError(error);
    }
  };
  let leading: { term: bigint; controller: AbortController } | undefined;
  let leaderSeen: LeaderInfo | undefined;
  let endedAs: { term: bigint; reason: LeadershipEndReason } | undefined;
  let deadline: NodeJS.Timeout | undefined;
  let first = true;

  const stop = (reason: LeadershipEndReason) => {
    if (!leading) return;
    const { term, controller } = leading;
    leading = undefined;
    const error = new LeadershipEndedError(term, reason);
    controller.abort(error);
    call(() => callbacks.onStoppedLeading?.(term, error));
  };

  const check = () => {
    clearTimeout(deadline);
    const term = election.term;
    if (leading && leading.term !== term) {
      stop(endedAs?.term === leading.term ? endedAs.reason : 'deadline');
    }
    const leader = election.leader();
    if (first || leader?.memberKey !== leaderSeen?.memberKey || leader?.term !== leaderSeen?.term) {
      first = false;
      leaderSeen = leader;
      call(() => callbacks.onNewLeader?.(leader));
    }
    if (!leading && term !== undefined) {
      const controller = new AbortController();
      leading = { term, controller };
      call(() => callbacks.onStartedLeading?.(term, controller.signal));
    }
    if (leading) {
      deadline = setTimeout(check, election.leadershipTimeLeftMs() + 1);
      deadline.unref();
    }
  };
  const released = (term: bigint, reason: LeadershipEndReason) => {
    endedAs = { term, reason };
    check();
  };

  election.on('released', released);
  election.on('change', check);
  check();
  return () => {
    clearTimeout(deadline);
    election.off('released', released);
    election.off('change', check);
    stop('unsubscribed');
  };
}
