/**
 * Member versions shared across the views of one process, and the search over a view's
 * members sorted by create revision.
 */
import type { MemberView } from './poolState.js';

/** Members remembered by `shareMember`: a few hundred bytes each. */
const SHARED_MEMBERS = 4096;
const sharedMembers = new Map<string, MemberView>();

/**
 * The one frozen object for a member version, shared by every view of the process that holds
 * it. A member of a pool of n holds n members; a process hosting many members of one pool (the
 * scale benchmark, tests) would otherwise hold n copies of each — O(n²) memory where O(n) does.
 * A version is its key at its mod revision with the same lease, create revision and decoded
 * record (`decodeShared` gives the same object for the same bytes), so views of different etcd
 * clusters that happen to share a key and revision are never mixed. Oldest go first.
 */
export function shareMember(member: MemberView): MemberView {
  const id = `${member.key}@${member.modRevision}`;
  const known = sharedMembers.get(id);
  if (
    known !== undefined &&
    known.record === member.record &&
    known.leaseId === member.leaseId &&
    known.createRevision === member.createRevision
  ) {
    return known;
  }
  sharedMembers.delete(id);
  sharedMembers.set(id, Object.freeze(member));
  if (sharedMembers.size > SHARED_MEMBERS) {
    sharedMembers.delete(sharedMembers.keys().next().value!);
  }
  return member;
}

/** Index of the first member whose create revision is >= `revision` (binary search). */
export function lowerBound(members: readonly MemberView[], revision: bigint): number {
  let low = 0;
  let high = members.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (members[mid]!.createRevision < revision) low = mid + 1;
    else high = mid;
  }
  return low;
}
