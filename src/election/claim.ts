/**
 * The leader claim: the value at the pool's leader key, bound to its holder's lease, whose mod
 * revision is the term (docs/design-choices.md, "Election"). This module says which claim
 * counts (`verifiedClaim`), who leads by it (`leaderOf`) and how a write is fenced on it
 * (`fencedOn`). Pure, apart from building the fence; the transactions that make and release
 * claims are in claimPursuit.ts.
 */
import type { ComparatorBuilder, Etcd3 } from 'etcd3';
import type { PoolKeys } from '../etcd/keys.js';
import type { LeaderClaim, MemberRecord } from '../membership/memberRecord.js';
import type { LeaderInfo } from './leaderLog.js';
import { runsService } from './poolIdentity.js';
import type { PoolView } from './poolView.js';

/**
 * The claim, if it is valid and names a registered member under the claim's own lease with
 * the URL that member registered, of `service` (or of none named). Work is only ever
 * forwarded to such a URL: a forged claim cannot redirect it, nor can another service's
 * leader get our work in the moment before we find the pool is not ours.
 */
export function verifiedClaim(
  view: Pick<PoolView, 'claim' | 'member'>,
  service: MemberRecord['service'],
): LeaderClaim | undefined {
  const claimView = view.claim;
  const claim = claimView?.claim;
  if (!claimView || !claim) return undefined;
  const member = view.member(claim.memberKey);
  const genuine =
    member !== undefined &&
    member.leaseId === claimView.leaseId &&
    member.record.url === claim.url &&
    member.record.id === claim.id &&
    runsService(member, service);
  return genuine ? claim : undefined;
}

/**
 * The leader by the verified claim (`verifiedClaim`), or undefined while the pool has none;
 * `self` when it names `ownMemberKey`.
 */
export function leaderOf(
  view: Pick<PoolView, 'claim' | 'member'>,
  service: MemberRecord['service'],
  ownMemberKey: string | undefined,
): LeaderInfo | undefined {
  const claimView = view.claim;
  const claim = verifiedClaim(view, service);
  if (!claimView || !claim) return undefined;
  const { id, url, memberKey } = claim;
  return { id, url, memberKey, term: claimView.term, self: memberKey === ownMemberKey };
}

/**
 * A transaction that commits only while `term` is still the claim's revision: a stale
 * leader's write fails. Builds the guard only; the caller adds the operations and commits.
 */
export function fencedOn(etcd: Etcd3, keys: PoolKeys, term: bigint): ComparatorBuilder {
  return etcd.if(keys.leader, 'Mod', '==', term.toString());
}

/** A block of tickets, first and last number inclusive, reserved for one term. */
export interface TicketBlock {
  first: bigint;
  last: bigint;
}

/** The ticket block a handed-over claim carries (claimPursuit.ts, `handOff`), if any. */
export function carriedBlock(claim: LeaderClaim | undefined): TicketBlock | undefined {
  const tickets = claim?.tickets;
  if (!tickets) return undefined;
  const block = { first: BigInt(tickets.first), last: BigInt(tickets.last) };
  return block.first <= block.last ? block : undefined;
}
