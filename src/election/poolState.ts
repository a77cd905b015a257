/**
 * The state of one pool as a member's view holds it: the valid members sorted by create
 * revision, the leader claim, how the last claim ended and the revision the view has reached.
 * Fed the key/values of a snapshot read and the events of the watch (poolView.ts does the
 * I/O); plain bookkeeping — synchronous, no etcd, no timers — that returns what changed for
 * the view to report.
 *
 * Several events can share one revision (a transaction, or a lease revoke deleting a member
 * key and the claim together), so events are filtered against the last snapshot's revision,
 * never the last event's.
 *
 * Foreign or invalid values under the prefix are ignored for the election and returned once
 * per key version, for the view to log and count — never a crash.
 */
import type { IEvent, IKeyValue } from 'etcd3';
import { leaseIdHex, type PoolKeys } from '../etcd/keys.js';
import {
  decodeShared,
  leaderClaimSchema,
  memberRecordSchema,
  type LeaderClaim,
  type MemberRecord,
} from '../membership/memberRecord.js';
import { causeOf, releaseNoteSchema, type ClaimEnd, type ReleaseNote } from './failover.js';
import { lowerBound, shareMember } from './sharedMembers.js';

/** A member as a strategy sees it: its etcd key and revisions, and its record. */
export interface MemberView {
  key: string;
  leaseId: string;
  createRevision: bigint;
  modRevision: bigint;
  record: MemberRecord;
}

export interface ClaimView {
  /** The claim's mod revision: the leader's term and fencing token. */
  term: bigint;
  leaseId: string;
  /** Undefined when the stored value is not a valid claim. */
  claim: LeaderClaim | undefined;
}

/** What was invalid: the `kind` label of service_pool_invalid_records_total. */
export const INVALID_KINDS = [
  'claim',
  'foreign_key',
  'member_key',
  'member_record',
  'release_note',
] as const;
export type InvalidKind = (typeof INVALID_KINDS)[number];

/** A value under the pool prefix that the election ignores, not reported before. */
export interface InvalidRecord {
  kind: InvalidKind;
  key: string;
  reason: string;
}

/** What one snapshot or one watch response changed, for the view to report. */
export interface PoolUpdate {
  /** Whether the members or the claim changed: what the election acts on. */
  changed: boolean;
  /** The ticket marks read, in order: 0 for a key missing from a snapshot, or deleted. */
  ticketMarks: bigint[];
  invalid: InvalidRecord[];
}

/**
 * The ticket mark as the view last saw it: its value and the revision of its last write (0
 * for both while the key is absent), the guard of a raise (election/claimPursuit.ts).
 */
export interface SeenTicketMark {
  value: bigint;
  modRevision: bigint;
}

/** A watch event; the view never asks etcd for the previous value. */
export type PoolEvent = Pick<IEvent, 'type' | 'kv'>;

/** What a reconcile probe counted (poolView.ts, `probe`). */
export interface ProbeCounts {
  /** Keys under the members prefix, valid or not. */
  memberKeys: number;
  /** Of those, how many were modified after the view's revision (0 when not scanned). */
  changed: number;
  /** The claim's mod revision, undefined without a claim. */
  claimTerm: bigint | undefined;
}

/**
 * Whether the view holds the state the probe saw. It does unless the watch has yet to
 * deliver a member that came or went (not as many keys as the view knows, valid or not), a
 * claim change, or — seen by a scanning probe — any put after the view's revision.
 */
export function agreesWith(
  probe: ProbeCounts,
  state: Pick<PoolState, 'memberKeys' | 'claim'>,
): boolean {
  return (
    probe.changed === 0 &&
    probe.memberKeys === state.memberKeys &&
    probe.claimTerm === state.claim?.term
  );
}

const ABSENT_MARK: SeenTicketMark = { value: 0n, modRevision: 0n };

export class PoolState {
  private sorted: MemberView[] = [];
  private byKey = new Map<string, MemberView>();
  /** Keys under the members prefix whose value is not a valid member (counted by the probe). */
  private invalidMembers = new Set<string>();
  private claimView: ClaimView | undefined;
  private lastClaimEnd: ClaimEnd | undefined;
  /** Undefined while the stored mark is not a number. */
  private mark: SeenTicketMark | undefined = ABSENT_MARK;
  private viewRevision = 0n;
  /** Revision of the last snapshot: watch events at or below it are already in the state. */
  private snapshotRevision = 0n;
  /** Invalid key versions already returned once (`key@modRevision`). */
  private reported = new Set<string>();
  /** What the update being applied has to report. */
  private pending: Omit<PoolUpdate, 'changed'> = { ticketMarks: [], invalid: [] };

  constructor(
    private readonly pool: string,
    private readonly keys: PoolKeys,
  ) {}

  /** Members with valid records, oldest (lowest create revision) first. */
  get members(): readonly MemberView[] {
    return this.sorted;
  }

  get claim(): ClaimView | undefined {
    return this.claimView;
  }

  /** The ticket mark as of `revision`; undefined while its value is not a number. */
  get ticketMark(): SeenTicketMark | undefined {
    return this.mark;
  }

  /** The highest revision applied; never goes back, except to a new snapshot's. */
  get revision(): bigint {
    return this.viewRevision;
  }

  /** Keys under the members prefix, valid or not: what a probe counts. */
  get memberKeys(): number {
    return this.byKey.size + this.invalidMembers.size;
  }

  /**
   * How the claim of `term` ended, if its delete came in the events (not in a snapshot, which
   * shows only that it is gone).
   */
  claimEnded(term: bigint): ClaimEnd | undefined {
    return this.lastClaimEnd?.term === term ? this.lastClaimEnd : undefined;
  }

  member(key: string): MemberView | undefined {
    return this.byKey.get(key);
  }

  /** Replaces the state with a snapshot read at `revision`: members, claim and ticket mark. */
  applySnapshot(revision: bigint, kvs: readonly IKeyValue[]): PoolUpdate {
    this.sorted = [];
    this.byKey.clear();
    this.invalidMembers.clear();
    this.claimView = undefined;
    this.mark = ABSENT_MARK;
    this.viewRevision = revision;
    this.snapshotRevision = revision;
    for (const kv of kvs) this.applyPut(kv);
    if (!kvs.some((kv) => kv.key.toString() === this.keys.ticketHighWater)) {
      this.pending.ticketMarks.push(0n);
    }
    return this.take(true);
  }

  /**
   * Applies one watch response: its `events` and its header's revision. `now` (monotonic
   * milliseconds) dates a claim's end.
   */
  applyEvents(events: readonly PoolEvent[], headerRevision: bigint, now: number): PoolUpdate {
    let changed = false;
    const { keys } = this;
    // etcd sends the events of one revision together: a claim delete (or its handoff, a put
    // naming another holder), and the release note or its holder's member key going with it,
    // arrive in one response (see failover.ts).
    let ended: { claim: ClaimView; revision: bigint } | undefined;
    const notes = new Map<bigint, ReleaseNote>();
    for (const event of events) {
      const revision = BigInt(event.kv.mod_revision);
      if (revision <= this.snapshotRevision) continue;
      if (revision > this.viewRevision) this.viewRevision = revision;
      const key = event.kv.key.toString();
      if (event.type === 'Put') {
        if (key === keys.released) {
          const note = this.releaseNote(event.kv);
          if (note) notes.set(revision, note);
        } else if (key === keys.leader && this.claimView) {
          ended = { claim: this.claimView, revision };
        }
        changed = this.applyPut(event.kv) || changed;
      } else {
        if (key === keys.leader && this.claimView) ended = { claim: this.claimView, revision };
        changed = this.applyDelete(key) || changed;
      }
    }
    if (ended) {
      const { claim, revision } = ended;
      // Looked for only when a claim ended (rare), not kept for every delete.
      const holderKey = keys.member(claim.leaseId);
      const holderKeyDeleted = events.some(
        (event) =>
          event.type === 'Delete' &&
          BigInt(event.kv.mod_revision) === revision &&
          event.kv.key.toString() === holderKey,
      );
      this.lastClaimEnd = {
        term: claim.term,
        leaderId: claim.claim?.id,
        cause: causeOf({ note: notes.get(revision), holderKeyDeleted }),
        observedAt: now,
      };
    }
    // A watch may be served by an etcd member that lags behind: never back.
    if (headerRevision > this.viewRevision) this.viewRevision = headerRevision;
    return this.take(changed);
  }

  /** The valid members among `kvs` (a fresh read of the members prefix), oldest first. */
  validMembers(kvs: readonly IKeyValue[]): { members: MemberView[]; invalid: InvalidRecord[] } {
    const members = kvs
      .map((kv) => this.classifyMember(kv))
      .filter((member): member is MemberView => member !== undefined)
      .sort((a, b) => (a.createRevision < b.createRevision ? -1 : 1));
    return { members, invalid: this.take(false).invalid };
  }

  private take(changed: boolean): PoolUpdate {
    const update = { changed, ...this.pending };
    this.pending = { ticketMarks: [], invalid: [] };
    return update;
  }

  /** Returns whether the election-relevant state changed. */
  private applyPut(kv: IKeyValue): boolean {
    const key = kv.key.toString();
    const { keys } = this;
    if (key === keys.leader) {
      const decoded = decodeShared(leaderClaimSchema, kv.value);
      if (!decoded.ok) this.reportInvalid('claim', key, kv, decoded.reason);
      this.claimView = {
        term: BigInt(kv.mod_revision),
        leaseId: kv.lease,
        claim: decoded.ok ? decoded.value : undefined,
      };
      return true;
    }
    if (key.startsWith(keys.membersPrefix)) {
      const member = this.classifyMember(kv);
      const wasThere = this.removeMember(key);
      if (member) {
        this.insertMember(member);
        this.invalidMembers.delete(key);
      } else {
        this.invalidMembers.add(key);
      }
      return member !== undefined || wasThere;
    }
    if (key === keys.ticketHighWater) {
      const mark = kv.value.toString();
      const valid = /^\d{1,30}$/.test(mark);
      this.mark = valid ? { value: BigInt(mark), modRevision: BigInt(kv.mod_revision) } : undefined;
      if (valid) this.pending.ticketMarks.push(BigInt(mark));
    } else if (!key.startsWith(keys.statePrefix)) {
      this.reportInvalid('foreign_key', key, kv, 'not a key of the pool layout');
    }
    return false;
  }

  /** The release note in `kv`, or undefined (reported) when it is not one. */
  private releaseNote(kv: IKeyValue): ReleaseNote | undefined {
    const decoded = decodeShared(releaseNoteSchema, kv.value);
    if (decoded.ok) return decoded.value;
    this.reportInvalid('release_note', kv.key.toString(), kv, decoded.reason);
    return undefined;
  }

  private applyDelete(key: string): boolean {
    this.forgetReports(key);
    if (key === this.keys.ticketHighWater) {
      this.mark = ABSENT_MARK;
      this.pending.ticketMarks.push(0n);
    }
    if (key === this.keys.leader) {
      const had = this.claimView !== undefined;
      this.claimView = undefined;
      return had;
    }
    this.invalidMembers.delete(key);
    return this.removeMember(key);
  }

  /** A valid member, or undefined (reported) for a foreign key or an invalid record. */
  private classifyMember(kv: IKeyValue): MemberView | undefined {
    const key = kv.key.toString();
    const suffix = key.slice(this.keys.membersPrefix.length);
    if (kv.lease === '0' || suffix !== leaseIdHex(kv.lease)) {
      this.reportInvalid('member_key', key, kv, 'key is not bound to the lease its name says');
      return undefined;
    }
    const decoded = decodeShared(memberRecordSchema, kv.value);
    if (!decoded.ok) {
      this.reportInvalid('member_record', key, kv, decoded.reason);
      return undefined;
    }
    if (decoded.value.pool !== this.pool) {
      this.reportInvalid('member_record', key, kv, `record names pool "${decoded.value.pool}"`);
      return undefined;
    }
    return shareMember({
      key,
      leaseId: kv.lease,
      createRevision: BigInt(kv.create_revision),
      modRevision: BigInt(kv.mod_revision),
      record: decoded.value,
    });
  }

  private insertMember(member: MemberView): void {
    this.byKey.set(member.key, member);
    const at = lowerBound(this.sorted, member.createRevision);
    this.sorted.splice(at, 0, member);
  }

  private removeMember(key: string): boolean {
    const member = this.byKey.get(key);
    if (!member) return false;
    this.byKey.delete(key);
    const at = lowerBound(this.sorted, member.createRevision);
    if (this.sorted[at]?.key === key) this.sorted.splice(at, 1);
    return true;
  }

  private reportInvalid(kind: InvalidKind, key: string, kv: IKeyValue, reason: string): void {
    const id = `${key}@${kv.mod_revision}`;
    if (this.reported.has(id)) return;
    this.reported.add(id);
    this.pending.invalid.push({ kind, key, reason });
  }

  private forgetReports(key: string): void {
    for (const id of this.reported) if (id.startsWith(`${key}@`)) this.reported.delete(id);
  }
}
