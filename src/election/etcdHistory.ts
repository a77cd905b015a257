/**
 * What this process has seen of etcd's history, to notice when etcd goes back in time: after
 * a restore from an older backup (`etcdctl snapshot restore`), etcd answers with a lower
 * revision than it already gave us, and the pool's ticket mark may stand below tickets the
 * pool has already issued. Members outlive such a restore, so they remember.
 *
 * Two signals, each reported once per step back:
 * - the revision of an answer is below the highest seen (a restore without
 *   `--bump-revision`);
 * - the ticket high-water mark is below the one seen last (any restore that lost a block
 *   reservation, with or without `--bump-revision`).
 * Plain bookkeeping: synchronous, no I/O.
 */

export interface RevisionStep {
  /** Highest revision seen before. */
  seen: bigint;
  /** The revision etcd answered with now. */
  now: bigint;
}

export interface TicketMarkStep {
  /** Highest ticket mark ever seen: no ticket above it was issued by this pool's leaders. */
  highest: bigint;
  /** The mark etcd holds now (0 when the key is gone). */
  now: bigint;
}

export class EtcdHistory {
  private highestRevision = 0n;
  private lastMark: bigint | undefined;
  private highestMarkSeen = 0n;

  /** The highest ticket mark seen, across steps back: the floor of any new reservation. */
  get highestTicketMark(): bigint {
    return this.highestMarkSeen;
  }

  /**
   * Records the revision of an answer. Returns the step back when it is below the highest
   * seen; the new revision then becomes the reference, so one restore is reported once.
   */
  noteRevision(revision: bigint): RevisionStep | undefined {
    if (revision >= this.highestRevision) {
      this.highestRevision = revision;
      return undefined;
    }
    const step = { seen: this.highestRevision, now: revision };
    this.highestRevision = revision;
    return step;
  }

  /**
   * Records the ticket mark as etcd holds it (0 for a missing key). Returns the step back when
   * it is below the last mark seen. Only the pool's leaders raise the mark, so a lower one is
   * etcd's history lost, not a writer of ours.
   */
  noteTicketMark(mark: bigint): TicketMarkStep | undefined {
    const last = this.lastMark;
    this.lastMark = mark;
    if (mark > this.highestMarkSeen) this.highestMarkSeen = mark;
    if (last === undefined || mark >= last) return undefined;
    return { highest: this.highestMarkSeen, now: mark };
  }
}
