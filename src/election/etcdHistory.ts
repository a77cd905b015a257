/**
 * What this process has seen of etcd's history, to notice when etcd goes back in time: after
 * a restore from an older backup (`etcdctl snapshot restore`), etcd answers with a lower
 * revision than it already gave us, and the pool's ticket mark may stand below tickets the
 * pool has already issued. Members outlive such a restore, so they remember.
 *
 * Two signals:
 * - a linearizable read answers with a revision below the highest one received before that
 *   read was sent (a restore without `--bump-revision`). Only "before it was sent": reads in
 *   flight together may come back in any order;
 * - the ticket high-water mark stands below the highest one seen (any restore that lost a block
 *   reservation, with or without `--bump-revision`).
 * Plain bookkeeping: synchronous, no I/O. Times are monotonic milliseconds.
 */

export interface RevisionStep {
  /** Highest revision received before the read was sent. */
  seen: bigint;
  /** The revision etcd answered with. */
  now: bigint;
}

export interface TicketMarkStep {
  /** Highest ticket mark ever seen: no ticket above it was issued by this pool's leaders. */
  highest: bigint;
  /** The mark etcd holds now (0 when the key is gone). */
  now: bigint;
}

/**
 * After etcd was seen going back in time, a leader's first reservation of tickets waits this
 * long (and a handoff reserves none for its successor), so that every member that remembers a
 * higher mark has put it back first (they do within milliseconds of their view's resync) and
 * no member's floor lags behind another's.
 */
export const SETTLE_AFTER_STEP_MS = 2000;

export class EtcdHistory {
  private highestRevision = 0n;
  private highestMark = 0n;
  private lastStepAt = -Infinity;

  /** The highest ticket mark seen or reserved: the floor of any new reservation. */
  get highestTicketMark(): bigint {
    return this.highestMark;
  }

  /** The revision to pass to `noteRevision` for a read sent now. */
  get revisionFloor(): bigint {
    return this.highestRevision;
  }

  /** Milliseconds since etcd was last seen going back; Infinity if never. */
  sinceLastStepMs(now: number): number {
    return now - this.lastStepAt;
  }

  /** Whether `SETTLE_AFTER_STEP_MS` has passed since etcd was last seen going back. */
  settled(now: number): boolean {
    return this.sinceLastStepMs(now) >= SETTLE_AFTER_STEP_MS;
  }

  /**
   * Records the revision of a linearizable read's answer; `floor` is `revisionFloor` as it
   * was when the read was sent. Returns the step back when the answer is below it, and the
   * answer then becomes the reference, so one restore is reported once.
   */
  noteRevision(revision: bigint, floor: bigint, now: number): RevisionStep | undefined {
    if (revision >= floor) {
      if (revision > this.highestRevision) this.highestRevision = revision;
      return undefined;
    }
    this.highestRevision = revision;
    this.lastStepAt = now;
    return { seen: floor, now: revision };
  }

  /**
   * Records the ticket mark as etcd holds it (0 for a missing key). Returns the step back
   * whenever it stands below the highest mark seen: only the pool's leaders raise the mark,
   * never lower it, so a lower one is etcd's history lost.
   */
  noteTicketMark(mark: bigint, now: number): TicketMarkStep | undefined {
    if (mark >= this.highestMark) {
      this.highestMark = mark;
      return undefined;
    }
    this.lastStepAt = now;
    return { highest: this.highestMark, now: mark };
  }

  /** Records a block this process reserved: the mark it wrote, seen before any watch says so. */
  noteReserved(mark: bigint): void {
    if (mark > this.highestMark) this.highestMark = mark;
  }
}
