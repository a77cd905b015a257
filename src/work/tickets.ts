/**
 * Tickets: a leader-only sequence that never repeats and grows across failovers.
 *
 * The leader reserves blocks of `blockSize` numbers by raising a high-water mark in etcd in a
 * fenced transaction (it commits only while our claim is unchanged), then hands them out from
 * memory. Every ticket issued is at most the persisted mark, and the next leader starts above
 * it, so no ticket is issued twice. A block is bound to the term that reserved it; a new term
 * reserves a new block. Cost: one range and one txn per `blockSize` tickets.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { Etcd3, IKeyValue } from 'etcd3';
import type { PoolElection } from '../election/election.js';
import type { Logger } from 'pino';
import { classifyEtcdError, describeEtcdError } from '../etcd/access.js';
import { isHttpError, NotLeaderError, PoolError } from '../errors.js';
import { monotonicNow } from '../util/time.js';
import type { PoolMetrics } from '../metrics/metrics.js';

interface Block {
  term: bigint;
  next: bigint;
  last: bigint;
}

/**
 * After etcd was seen going back in time, a leader's first reservation waits this long, so that
 * every member that remembers a higher mark has put it back first (they do within milliseconds
 * of their view's resync) and no member's floor lags behind another's.
 */
const SETTLE_AFTER_STEP_MS = 2000;

export class TicketSequence {
  private block: Block | undefined;
  private reserving: Promise<Block> | undefined;
  private raising: Promise<void> | undefined;

  constructor(
    private readonly etcd: Etcd3,
    private readonly election: PoolElection,
    private readonly key: string,
    private readonly blockSize: number,
    private readonly metrics: PoolMetrics,
    private readonly logger: Logger,
  ) {
    // Any member, leader or not, puts the mark back above what the pool has issued.
    election.view.on('ticketMarkBack', () => {
      this.raising ??= this.raiseMark().finally(() => (this.raising = undefined));
    });
  }

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

  /**
   * Puts the mark back to at least the highest mark this member has seen, after etcd lost part
   * of its history. Safe from any member: a higher mark only makes the next reservation skip
   * numbers, and a leader's own reservation compares the mark's revision, so it re-reads a
   * raised mark. Retries with backoff (up to 2 s apart; unref'd timers) while etcd refuses,
   * until the mark is high enough or the election has closed. One runs at a time.
   */
  private async raiseMark(): Promise<void> {
    let delayMs = 100;
    while (!this.election.closed) {
      const floor = this.election.view.history.highestTicketMark;
      try {
        const current = (await this.etcd.get(this.key).exec()).kvs[0];
        const stored = current ? parseHighWater(current.value.toString()) : 0n;
        if (stored >= floor) return;
        const result = await this.etcd
          .if(this.key, 'Mod', '==', current ? current.mod_revision : 0)
          .then(this.etcd.put(this.key).value(floor.toString()))
          .commit();
        if (result.succeeded) {
          this.logger.warn(
            { from: stored.toString(), to: floor.toString() },
            'raised the ticket mark back above every ticket this pool has issued',
          );
          return;
        }
        continue; // the mark moved meanwhile: read it again
      } catch (error) {
        this.logger.warn(
          { err: describeEtcdError(error) },
          'cannot raise the ticket mark; retrying',
        );
      }
      await delay(delayMs * (0.5 + Math.random()), undefined, { ref: false });
      delayMs = Math.min(delayMs * 2, 2000);
    }
  }

  private async reserve(term: bigint, mark?: { kv: IKeyValue | undefined }): Promise<Block> {
    try {
      return await this.reserveBlock(term, mark);
    } catch (error) {
      if (isHttpError(error)) throw error;
      const problem = classifyEtcdError(error);
      throw new PoolError(
        'ETCD_UNAVAILABLE',
        `could not reserve tickets in etcd: ${problem.message}`,
        { etcd: problem.kind },
        { cause: error },
      );
    }
  }

  private async reserveBlock(term: bigint, mark?: { kv: IKeyValue | undefined }): Promise<Block> {
    const history = this.election.view.history;
    const settling = SETTLE_AFTER_STEP_MS - history.sinceLastStepMs(monotonicNow());
    if (settling > 0) {
      await delay(settling, undefined, { ref: false });
      mark = undefined; // read afresh: a member may have raised it meanwhile
    }
    for (let attempt = 0; attempt < 5; attempt++) {
      // The mark from the claim is exact: since then only this term may write it. A stale one
      // (never expected) just fails the Mod guard below and is read again.
      const current =
        attempt === 0 && mark ? mark.kv : (await this.etcd.get(this.key).exec()).kvs[0];
      const stored = current ? parseHighWater(current.value.toString()) : 0n;
      // Never below a mark this member has seen: after a restore of etcd from an older backup
      // the stored one may be, and tickets above it were already issued.
      const seen = history.highestTicketMark;
      const highWater = stored > seen ? stored : seen;
      const size = BigInt(this.blockSize);
      const result = await this.election
        .fenced(term)
        .and(this.key, 'Mod', '==', current ? current.mod_revision : 0)
        .then(this.etcd.put(this.key).value((highWater + size).toString()))
        .commit();
      if (result.succeeded) {
        history.noteReserved(highWater + size);
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
