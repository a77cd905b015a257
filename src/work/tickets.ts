/**
 * Tickets: a leader-only sequence that never repeats and grows across failovers.
 *
 * The leader reserves blocks of `blockSize` numbers by raising a high-water mark in etcd in a
 * fenced transaction (it commits only while our claim is unchanged), then hands them out from
 * memory. Every ticket issued is at most the persisted mark, and the next leader starts above
 * it, so no ticket is issued twice. A block is bound to the term that reserved it; a new term
 * reserves a new block. Cost: one range and one txn per `blockSize` tickets.
 */
import type { Etcd3, IKeyValue } from 'etcd3';
import type { PoolElection } from '../election/election.js';
import { isPoolError, NotLeaderError, PoolError } from '../errors.js';
import type { PoolMetrics } from '../metrics/metrics.js';

interface Block {
  term: bigint;
  next: bigint;
  last: bigint;
}

export class TicketSequence {
  private block: Block | undefined;
  private reserving: Promise<Block> | undefined;

  constructor(
    private readonly etcd: Etcd3,
    private readonly election: PoolElection,
    private readonly key: string,
    private readonly blockSize: number,
    private readonly metrics: PoolMetrics,
  ) {}

  /**
   * Reserves a block for `term` ahead of the first request, so that the first work after a
   * failover does not wait for two etcd round trips. `mark` is the high-water mark as read in
   * the claim's own transaction (`undefined` inside when the key is absent), which saves the
   * read; without it the mark is read first. Failures are left to `next()` to retry.
   */
  prefetch(term: bigint, mark?: { kv: IKeyValue | undefined }): void {
    if (this.block?.term === term || this.reserving) return;
    this.reserving = this.reserve(term, mark).finally(() => (this.reserving = undefined));
    this.reserving.catch(() => undefined);
  }

  /** The next ticket, issued under `term`. Throws NotLeaderError when `term` is not ours. */
  async next(term: bigint): Promise<bigint> {
    for (;;) {
      // Re-checked on every ticket: a handler that asks after its term ended must not get an
      // old-term number once the successor has issued higher ones.
      if (this.election.term !== term) throw new NotLeaderError('leadership was lost');
      const block = this.block;
      if (block && block.term === term && block.next <= block.last) {
        return block.next++;
      }
      this.reserving ??= this.reserve(term).finally(() => (this.reserving = undefined));
      const reserved = await this.reserving;
      if (reserved.term !== term)
        throw new NotLeaderError('the term changed while reserving tickets');
    }
  }

  private async reserve(term: bigint, mark?: { kv: IKeyValue | undefined }): Promise<Block> {
    try {
      return await this.reserveBlock(term, mark);
    } catch (error) {
      if (isPoolError(error)) throw error;
      throw new PoolError('ETCD_UNAVAILABLE', 'could not reserve tickets in etcd', undefined, {
        cause: error,
      });
    }
  }

  private async reserveBlock(term: bigint, mark?: { kv: IKeyValue | undefined }): Promise<Block> {
    for (let attempt = 0; attempt < 5; attempt++) {
      // The mark from the claim is exact: since then only this term may write it. A stale one
      // (never expected) just fails the Mod guard below and is read again.
      const current =
        attempt === 0 && mark ? mark.kv : (await this.etcd.get(this.key).exec()).kvs[0];
      const highWater = current ? parseHighWater(current.value.toString()) : 0n;
      const size = BigInt(this.blockSize);
      const result = await this.election
        .fenced(term)
        .and(this.key, 'Mod', '==', current ? current.mod_revision : 0)
        .then(this.etcd.put(this.key).value((highWater + size).toString()))
        .commit();
      if (result.succeeded) {
        this.metrics.ticketBlocks.inc({ pool: this.election.pool });
        const block = { term, next: highWater + 1n, last: highWater + size };
        this.block = block;
        return block;
      }
      if (this.election.term !== term) throw new NotLeaderError('leadership was lost');
    }
    throw new NotLeaderError('could not reserve tickets: the high-water mark kept changing');
  }
}

/** A damaged mark must not restart the sequence at 0: refuse rather than repeat tickets. */
function parseHighWater(value: string): bigint {
  if (!/^\d{1,30}$/.test(value)) {
    throw new Error(`the ticket high-water mark holds "${value.slice(0, 40)}", not a number`);
  }
  return BigInt(value);
}
