/**
 * Who may lead: the members every strategy chooses from. A member registered with
 * CANDIDATE=false (an edge pod, a small machine) routes work but never leads. It is left out
 * here, before any strategy decides, so that no strategy — built in or a user's module — can
 * choose it, and the handover that follows a strategy's choice never goes to it. So is a
 * member of another service than the pool's, for the moment it takes to withdraw
 * (poolIdentity.ts).
 */
import { poolServiceMember, runsService } from './poolIdentity.js';
import type { MemberView } from './poolView.js';

/** The members that may lead, oldest first (the order of `members`). */
export function candidates(members: readonly MemberView[]): readonly MemberView[] {
  const service = poolServiceMember(members)?.record.service;
  const mayLead = (member: MemberView) => member.record.candidate && runsService(member, service);
  return members.every(mayLead) ? members : members.filter(mayLead);
}

/** Why no member of a non-empty pool may lead; undefined when one may. */
export function whyNoCandidate(members: readonly MemberView[]): string | undefined {
  if (members.length === 0 || candidates(members).length > 0) return undefined;
  const count = members.length === 1 ? 'its only member is' : `all ${members.length} members are`;
  return `no member may lead: ${count} CANDIDATE=false; a member with CANDIDATE=true (the default) that joins will lead`;
}
