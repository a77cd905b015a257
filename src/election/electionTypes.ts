/**
 * What a PoolElection emits and what it is built from (election.ts). Types only.
 */
import type { IKeyValue } from 'etcd3';
import type { RegistrationOptions } from '../membership/registration.js';
import type { TicketBlock } from './claim.js';
import type { LeaderInfo } from './leaderLog.js';
import type { LeadershipEndReason } from './leadershipEnd.js';
import type { ServiceConflictError } from './poolIdentity.js';
import type { HandoverGate } from './preemption.js';
import type { LeaderStrategy } from './strategy.js';

export interface ElectionEvents {
  /** Anything that may change `isLeader()`, `leader()` or readiness. */
  change: [];
  leaderChanged: [leader: LeaderInfo | undefined, previous: LeaderInfo | undefined];
  /**
   * We hold the claim under `term`: `reads` are the `readOnClaim` keys as of the claim, or
   * undefined when we adopted a claim whose answer we never saw or that was handed to us;
   * `tickets` is the block the leader before us reserved for this term when it handed the
   * claim over (`handoffTickets`), else undefined.
   */
  claimed: [
    term: bigint,
    reads: (IKeyValue | undefined)[] | undefined,
    tickets: TicketBlock | undefined,
  ];
  /**
   * We gave up the term we held, or saw its claim change in etcd, for `reason`; `isLeader()`
   * is false from now on. Not emitted when only the lease deadline passed (leadership.ts).
   */
  released: [term: bigint, reason: LeadershipEndReason];
  /**
   * Another process with our MEMBER_ID holds a registration while ours is gone (it took ours
   * over while we were frozen or cut off). We do not register again: two members with one id
   * cannot be told apart. The election stops; the owner should exit.
   */
  superseded: [other: { memberKey: string; url: string; pid: number; startedAt: string }];
  /**
   * The pool belongs to another service, whose member registered before ours (two services
   * registering at once: the later withdraws). We revoked our registration; the election
   * stops. The owner should exit with the error's message.
   */
  refused: [error: ServiceConflictError];
}

/** What the election needs; the registration's part is documented in registration.ts. */
export interface ElectionOptions extends RegistrationOptions {
  safetyMarginMs: number;
  reconcileIntervalMs: number;
  strategy?: LeaderStrategy;
  /** How long a better member must stay preferred before the leader hands over to it. */
  preemptAfterMs?: number;
  /**
   * Shared by the pools of one process: at most one of them hands over per hold-down, so
   * that pools whose preferences depend on each other (`avoid` with AVOID_POOLS) settle one
   * change at a time instead of swapping leaders back and forth.
   */
  handovers?: HandoverGate;
  /**
   * Keys read in the claim's own transaction. Their values as of the claim come with the
   * `claimed` event, so leader-owned state (the ticket mark) costs no extra read on the path
   * of the first request after a failover.
   */
  readOnClaim?: string[];
  /**
   * How many tickets a leader that hands its claim over (stop, resign, preemption) reserves
   * for its successor in the handoff's own transaction, carried in the claim: the successor's
   * first tickets need no write. Undefined or 0: none (the successor reserves its own).
   */
  handoffTickets?: number;
}
