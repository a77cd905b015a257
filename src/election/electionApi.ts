/**
 * The election as a library user holds it: `member.election` (the first pool) or
 * `member.electionOf(pool)`. In the manner of etcd's `concurrency.Election` — who leads,
 * am I leading, under which term, a fenced write, resign, observe — without the lifecycle:
 * the member starts, leaves and closes its elections itself (member.ts, member/shutdown.ts).
 *
 * Timing (docs/design.md, "Election"): `isLeader()` is decided locally from the lease deadline
 * minus LEASE_SAFETY_MARGIN_MS, so a member cut off from etcd stops acting as leader before
 * etcd can let another claim; the term is the claim's etcd revision, the fencing token that
 * `fenced(term)` compares. Nothing here polls: waits wake on the election's `change` event.
 */
import type { ComparatorBuilder } from 'etcd3';
import { PoolError } from '../errors.js';
import { valueOnEvent } from '../util/waitUntil.js';
import type { PoolElection } from './election.js';
import type { LeaderInfo } from './leaderLog.js';
import { watchLeadership, type LeadershipCallbacks } from './leadership.js';
import type { LeadershipEndReason } from './leadershipEnd.js';

/**
 * Adds (`on`, `once`) or removes (`off`) a listener of one of the election's events, typed
 * per event as etcd3's emitters are. Listeners are called synchronously; what one throws
 * goes to the emitter (an uncaught exception), so keep them small.
 */
export interface ElectionSubscribe {
  /** Anything that may change `isLeader()`, `term`, `leader()` or `isReady()`: re-read them. */
  (event: 'change', listener: () => void): Election;
  /**
   * The pool's leader as this member's view sees it changed: another member, another term,
   * or none (`undefined`); `previous` is the one before.
   */
  (
    event: 'leaderChanged',
    listener: (leader: LeaderInfo | undefined, previous: LeaderInfo | undefined) => void,
  ): Election;
  /**
   * This member gave up the term it held, or saw its claim change in etcd, for `reason`;
   * `isLeader()` is false from now on. Not emitted when only the lease deadline passed:
   * `leadership()` reports that too.
   */
  (event: 'released', listener: (term: bigint, reason: LeadershipEndReason) => void): Election;
}

/**
 * One member's election in one pool. Every method is cheap and local unless it says that it
 * blocks; every one that blocks takes an `AbortSignal`.
 */
export interface Election {
  /** The pool this election chooses a leader for. */
  readonly pool: string;
  /** This member's id (MEMBER_ID). */
  readonly memberId: string;
  /**
   * Whether this member leads: the claim is its own and its lease deadline, minus
   * LEASE_SAFETY_MARGIN_MS, is ahead on the monotonic clock. Synchronous and local, so it can
   * be asked on every request; never blocks.
   */
  isLeader(): boolean;
  /** The term (fencing token, the claim's etcd revision) while `isLeader()`, else undefined. */
  readonly term: bigint | undefined;
  /** The pool's leader as this member's view of etcd sees it, or undefined while it has none. */
  leader(): LeaderInfo | undefined;
  /** Registered, synced with etcd, etcd reachable and the lease safely alive: /readyz's answer. */
  isReady(): boolean;
  /**
   * Milliseconds until `isLeader()` turns false unless the lease is renewed first (the lease
   * deadline minus the safety margin, on the monotonic clock); 0 when not leading.
   */
  leadershipTimeLeftMs(): number;
  /**
   * The fencing comparator: an etcd3 transaction that commits only while `term` is still the
   * claim's revision. Pass all the guarded operations to one `.then(...)` (a second call
   * replaces them) and `.commit()`; `succeeded === false` means that term is over and nothing
   * was written. Building it never blocks; `commit()` is one etcd call, bounded by
   * ETCD_CALL_TIMEOUT_MS.
   */
  fenced(term: bigint): ComparatorBuilder;
  /**
   * Resolves with the term once this member leads (at once if it does). Blocks until then:
   * it may never happen (another member leads, `candidate: false`). Rejects with `signal`'s
   * reason when it aborts (`AbortSignal.timeout(ms)` bounds the wait), and with a
   * `PoolError` `SHUTTING_DOWN` when the election stops (shutdown, `onSuperseded`, `onRefused`).
   */
  waitForLeadership(signal: AbortSignal): Promise<bigint>;
  /**
   * Resolves with the pool's leader once there is one (at once if there is), this member
   * included. Blocks, cancels and rejects as `waitForLeadership` does.
   */
  waitForLeader(signal: AbortSignal): Promise<LeaderInfo>;
  /**
   * Resolves once `condition(election)` holds (at once if it does), checked on every `change`
   * event, never on a timer. Blocks, cancels and rejects as `waitForLeadership` does.
   */
  waitFor(condition: (election: Election) => boolean, signal: AbortSignal): Promise<void>;
  /**
   * Hands leadership over, as `POST /resign` does: `isLeader()` is false at once, the claim
   * and the member key are deleted in one transaction and the member registers again as the
   * youngest, so the next in line claims. Resolves whether this member was the leader.
   * Blocks until registered again or until `signal` aborts (default: `resignBoundMs`), then
   * rejects with its reason while the rest goes on in the background.
   */
  resign(signal?: AbortSignal): Promise<boolean>;
  /** How long `resign()` waits by default, in milliseconds: 3 × ETCD_CALL_TIMEOUT_MS. */
  readonly resignBoundMs: number;
  /**
   * Calls `callbacks` as this member's leadership starts and ends and as the pool's leader
   * changes (see `LeadershipCallbacks`): `onStartedLeading` gets a signal that aborts the
   * moment the term ends. Returns the unsubscribe, which aborts a running term's signal with
   * reason `unsubscribed`. Never blocks; what a callback throws is logged.
   */
  leadership(callbacks: LeadershipCallbacks): () => void;
  /** Adds a listener of an event: `change`, `leaderChanged`, `released`. */
  on: ElectionSubscribe;
  /** Adds a listener called at the event's next emission only. */
  once: ElectionSubscribe;
  /** Removes a listener added with `on` or `once`. */
  off: ElectionSubscribe;
}

/**
 * `election` as a library user holds it. `onCallbackError` gets what a leadership callback
 * throws.
 */
export function electionApi(
  election: PoolElection,
  onCallbackError: (error: unknown) => void,
): Election {
  /** `value()` once defined, unless the election stops or `signal` aborts first. */
  const whenDefined = <T>(value: () => T | undefined, signal: AbortSignal) =>
    valueOnEvent(
      election,
      'change',
      () => {
        if (election.closed) {
          throw new PoolError('SHUTTING_DOWN', `the election of pool ${election.pool} stopped`);
        }
        return value();
      },
      signal,
    );
  const subscribe =
    (method: 'on' | 'once' | 'off'): ElectionSubscribe =>
    (event: 'change' | 'leaderChanged' | 'released', listener: (...args: never[]) => void) => {
      election[method](event, listener);
      return api;
    };
  const api: Election = {
    pool: election.pool,
    memberId: election.memberId,
    isLeader: () => election.isLeader(),
    get term() {
      return election.term;
    },
    leader: () => election.leader(),
    isReady: () => election.isReady(),
    leadershipTimeLeftMs: () => election.leadershipTimeLeftMs(),
    fenced: (term) => election.fenced(term),
    waitForLeadership: (signal) => whenDefined(() => election.term, signal),
    waitForLeader: (signal) => whenDefined(() => election.leader(), signal),
    waitFor: async (condition, signal) => {
      await whenDefined(() => condition(api) || undefined, signal);
    },
    resign: (signal) => election.resign(signal),
    resignBoundMs: election.resignBoundMs,
    leadership: (callbacks) => watchLeadership(election, callbacks, onCallbackError),
    on: subscribe('on'),
    once: subscribe('once'),
    off: subscribe('off'),
  };
  return api;
}
