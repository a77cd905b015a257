/**
 * What one member does next in its pool's election, decided from what it knows at one instant:
 * the pool view, its registration, the term it holds, its claims in flight and released, the
 * strategy's choice and the hold-down, and `now` (monotonic milliseconds). Pure: no etcd, no
 * timers, no clock of its own. The campaign (campaign.ts) gathers the state on every view
 * change, lease renewal and tick, and carries the steps out: claims and releases in
 * claimPursuit.ts, the hold-down in preemption.ts, registering in membership/registration.ts.
 *
 * The safety argument is not here but in etcd: every claim and release is a compare-and-swap,
 * so a decision made on a view a little behind etcd can fail, never do harm. What is here is
 * when a member acts as leader (`leads`): only while its lease deadline, minus the safety
 * margin, is ahead — a paused or cut-off leader stops before etcd can let another claim.
 */
import type { KeptLease } from '../membership/lease.js';
import type { Registered } from '../membership/registration.js';
import { carriedBlock, verifiedClaim, type TicketBlock } from './claim.js';
import { serviceConflict, type ServiceConflictError } from './poolIdentity.js';
import type { MemberView, PoolView } from './poolView.js';

/** How long a released claim may still name us before we delete it again (milliseconds). */
export const RELEASE_SETTLE_MS = 1000;

/** What the decision reads of our registration (membership/registration.ts). */
export type OwnRegistration = Pick<Registered, 'memberKey' | 'createRevision'> & {
  lease: Pick<KeptLease, 'id' | 'isAlive' | 'leaseDeadline'>;
};

/** What the decision reads of our claims (claimPursuit.ts). */
export interface ClaimsState {
  /** A claim transaction (or the take-back of an unwanted claim) is in flight. */
  inFlight: boolean;
  /** After a failed claim, no new attempt before this (monotonic ms). */
  notBefore: number;
  /** The claim we released last, and when (monotonic ms): it is never adopted again. */
  released: { term: bigint; at: number } | undefined;
}

/** The hold-down before a handover (preemption.ts); times in monotonic milliseconds. */
export interface HoldDown {
  /** Since when another member has been preferred while we lead; undefined: it is not. */
  since: number | undefined;
  /** How long it must stay preferred (PREEMPT_AFTER_MS). */
  holdMs: number;
  /** When the process's gate lets one of its pools hand over next. */
  gateOpensAt: number;
}

export interface ElectionState {
  /** Monotonic milliseconds. */
  now: number;
  view: Pick<PoolView, 'revision' | 'members' | 'claim' | 'member'>;
  /** Our service, pool and prefix: a claim or a pool of another service is not ours. */
  identity: { service: string | undefined; pool: string; prefix: string };
  /** Our registration in place, if any; `pending` while one is being made. */
  registration: { current: OwnRegistration | undefined; pending: boolean; leaving: boolean };
  /** The term we hold, if any (also while its lease deadline has passed). */
  heldTerm: bigint | undefined;
  /** LEASE_SAFETY_MARGIN_MS: we stop acting as leader this long before the lease deadline. */
  safetyMarginMs: number;
  /** The member the strategy prefers (preemption.ts); undefined when no member may lead. */
  preferred: MemberView | undefined;
  /** Whether the strategy hands leadership over to a member it prefers to the holder. */
  preempts: boolean;
  holdDown: HoldDown;
  claims: ClaimsState;
}

/** Why a member does nothing now. */
export type WaitReason =
  | 'registering'
  | 'leaving'
  | 'view behind'
  | 'follower'
  | 'claiming'
  | 'backing off'
  | 'lease lost'
  | 'released'
  | 'deadline passed';

/**
 * One thing to do. A decision is zero or more of `stepDown` then `adopt` or `takeOver`, then
 * one of the others.
 */
export type Step =
  /** The claim of the term we hold changed in etcd: stop acting as leader ('claim lost'). */
  | { kind: 'stepDown'; term: bigint }
  | { kind: 'register' }
  /** Our member key vanished from the view: drop the registration and register anew. */
  | { kind: 'reregister'; memberKey: string }
  /** The pool belongs to another service: leave it and stop. */
  | { kind: 'withdraw'; conflict: ServiceConflictError }
  /** Claim the absent claim key, or replace the invalid value at `replaceTerm`. */
  | { kind: 'claim'; replaceTerm: bigint | undefined }
  /** The claim is ours but we never saw its answer (a timeout): hold it. */
  | { kind: 'adopt'; term: bigint }
  /**
   * The leader `from` handed its claim to us in one transaction (claimPursuit.ts, `handOff`):
   * hold it under its revision, and issue `tickets` first (reserved in that transaction).
   */
  | { kind: 'takeOver'; term: bigint; from: string; tickets: TicketBlock | undefined }
  /** Go on leading under `term`. */
  | { kind: 'lead'; term: bigint }
  /** Another member is preferred: hand over to it in `dueInMs` unless that changes. */
  | { kind: 'holdDown'; term: bigint; successor: MemberView; dueInMs: number }
  /** Release the claim of `term` to `successor` now. */
  | { kind: 'handOver'; term: bigint; successor: MemberView }
  /** The claim we released still stands: delete it again. */
  | { kind: 'releaseAgain'; term: bigint }
  | { kind: 'wait'; why: WaitReason };

/**
 * Whether a member holding `heldTerm` under `registered` acts as leader at `now`: its lease
 * is alive and its deadline, minus `safetyMarginMs`, is ahead.
 */
export function leads(
  heldTerm: bigint | undefined,
  registered: OwnRegistration | undefined,
  safetyMarginMs: number,
  now: number,
): boolean {
  return (
    heldTerm !== undefined &&
    registered !== undefined &&
    registered.lease.isAlive &&
    now < registered.lease.leaseDeadline - safetyMarginMs
  );
}

/** What to do now, in order (see `Step`). */
export function decide(state: ElectionState): Step[] {
  const { view, heldTerm } = state;
  // A claim term above what the view has seen is one whose watch event has not arrived.
  const claimLost =
    heldTerm !== undefined && view.claim?.term !== heldTerm && view.revision >= heldTerm;
  const held = claimLost ? undefined : heldTerm;
  const next = registrationStep(state) ?? pursue(state, held);
  return claimLost ? [{ kind: 'stepDown', term: heldTerm }, ...next] : next;
}

/** A step that keeps us registered in a pool of our service, if one is needed first. */
function registrationStep(state: ElectionState): Step[] | undefined {
  const { view, registration } = state;
  const registered = registration.current;
  if (registration.leaving) return [{ kind: 'wait', why: 'leaving' }];
  if (!registered) {
    return [registration.pending ? { kind: 'wait', why: 'registering' } : { kind: 'register' }];
  }
  if (view.revision < registered.createRevision) return [{ kind: 'wait', why: 'view behind' }];
  if (!view.member(registered.memberKey)) {
    return [{ kind: 'reregister', memberKey: registered.memberKey }];
  }
  const conflict = serviceConflict(view.members, state.identity);
  return conflict ? [{ kind: 'withdraw', conflict }] : undefined;
}

/** Claim, lead, hand over or wait: we are registered, in the view, in a pool of our service. */
function pursue(state: ElectionState, held: bigint | undefined): Step[] {
  const { view, preferred, claims, now } = state;
  const registered = state.registration.current!;
  const preferredIsMe = preferred?.key === registered.memberKey;
  const claimView = view.claim;
  if (held !== undefined && claimView?.term !== held) {
    // We claimed after the view's revision: the watch event of our claim is on its way.
    return [leading(state, held)];
  }
  if (!claimView || !verifiedClaim(view, state.identity.service)) {
    // No claim, or a foreign or forged value at the claim key: the member the strategy
    // prefers replaces it, compare-and-swap on its revision, rather than leaving the pool
    // leaderless forever.
    if (!preferredIsMe) return [{ kind: 'wait', why: 'follower' }];
    if (claims.inFlight) return [{ kind: 'wait', why: 'claiming' }];
    if (now < claims.notBefore) return [{ kind: 'wait', why: 'backing off' }];
    if (!registered.lease.isAlive) return [{ kind: 'wait', why: 'lease lost' }];
    return [{ kind: 'claim', replaceTerm: claimView?.term }];
  }
  const claimIsMine =
    claimView.claim?.memberKey === registered.memberKey &&
    claimView.leaseId === registered.lease.id;
  if (!claimIsMine) return [{ kind: 'wait', why: 'follower' }];
  const term = claimView.term;
  const steps: Step[] = [];
  if (held === undefined) {
    if (claims.released?.term === term) {
      const settled = now - claims.released.at > RELEASE_SETTLE_MS;
      return [settled ? { kind: 'releaseAgain', term } : { kind: 'wait', why: 'released' }];
    }
    if (claims.inFlight) return [{ kind: 'wait', why: 'claiming' }];
    const handedBy = claimView.claim?.handedBy;
    steps.push(
      handedBy === undefined
        ? { kind: 'adopt', term }
        : { kind: 'takeOver', term, from: handedBy, tickets: carriedBlock(claimView.claim) },
    );
  }
  const step = leading(state, term);
  if (step.kind !== 'lead' || !preferred || preferredIsMe || !state.preempts) {
    return [...steps, step];
  }
  const { since, holdMs, gateOpensAt } = state.holdDown;
  const dueAt = Math.max((since ?? now) + holdMs, gateOpensAt);
  return [
    ...steps,
    dueAt <= now
      ? { kind: 'handOver', term, successor: preferred }
      : { kind: 'holdDown', term, successor: preferred, dueInMs: dueAt - now },
  ];
}

/** Lead under `term`, or wait while its lease deadline (minus the margin) has passed. */
function leading(state: ElectionState, term: bigint): Step {
  return leads(term, state.registration.current, state.safetyMarginMs, state.now)
    ? { kind: 'lead', term }
    : { kind: 'wait', why: 'deadline passed' };
}
