/**
 * Tickets: a leader-only sequence that never repeats and grows across failovers.
 *
 * The leader reserves blocks of `blockSize` numbers by raising a high-water mark in etcd in a
 * fenced transaction (it commits only while our claim is unchanged), then hands them out from
 * memory. Every ticket issued is at most the persisted mark, and the next leader starts above
 * it, so no ticket is issued twice. A block is bound to the term that reserved it; a new term
 * reserves a new block — unless the leader before it reserved one for it in the transaction
 * that handed the claim over (election/claimPursuit.ts, `handOff`), which creates the term.
 * Cost: one range and one txn per `blockSize` tickets.
 */
import type { IKeyValue } from 'etcd3';
import type { Logger } from 'pino';
import type { TicketBlock } from '../election/claim.js';
import { SETTLE_AFTER_STEP_MS, type EtcdHistory } from '../election/etcdHistory.js';
import { classifyEtcdError, describeEtcdError } from '../etcd/access.js';
import { isHttpError, NotLeaderError, PoolError } from '../errors.js';
import { retry, type BackoffSchedule } from '../util/backoff.js';
import { systemClock, type Clock } from '../util/time.js';
import type { PoolMetrics } from '../metrics/metrics.js';
import { storedMark, type TicketMark } from './ticketMark.js';

interface Block {
  term: bigint;
  next: bigint;
  last: bigint;
}

/** What the sequence needs of the pool's election (`PoolElection` has it). */
export interface TicketLeadership {
  readonly pool: string;
  /** Our term (fencing token) while we lead, else undefined: asked on every ticket. */
  readonly term: bigint | undefined;
  /** True once the election closed: the mark is no longer put back. */
  readonly closed: boolean;
  readonly view: {
    /** The highest mark this process has seen, and when etcd last went back in time. */
    readonly history: EtcdHistory;
    /** Emitted when etcd holds a mark below one this process has seen. */
    on(event: 'ticketMarkBack', listener: () => void): unknown;
  };
}

/** Where the sequence waits, and jitter's random source; tests pass fakes. */
export interface TicketTiming {
  clock?: Clock;
  random?: () => number;
}

/** Between two attempts to put the mark back: 100 ms doubling to 2 s, each 0.5–1.5× that. */
const RAISE_MARK_BACKOFF: BackoffSchedule = { initialMs: 100, maxMs: 2000, jitter: 0.5 };

export class TicketSequence {
  private block: Block | undefined;
  private reserving: Promise<Block> | undefined;
  private raising: Promise<void> | undefined;

  private readonly clock: Clock;
  private readonly random: (() => number) | undefined;

  constructor(
    private readonly mark: TicketMark,
    private readonly election: TicketLeadership,
    private readonly blockSize: number,
    private readonly metrics: PoolMetrics,
    private readonly logger: Logger,
    timing: TicketTiming = {},
  ) {
    this.clock = timing.clock ?? systemClock;
    this.random = timing.random;
    // Any member, leader or not, puts the mark back above what the pool has issued.
    election.view.on('ticketMarkBack', () => {
      this.raising ??= this.raiseMark().finally(() => (this.raising = undefined));
    });
  }

  /**
   * Reserves a block for `term` ahead of the first request, so that the first work after a
   * failover does not wait for two etcd round trips. `mark` is the high-water mark as read in
   * the claim's own transaction (`undefined` inside when the key is absent), which saves the
   * read; without it the mark is read first. `handed` is a block reserved for `term` in the
   * transaction that handed us the claim: it is taken as it is, with no write. Failures are
   * left to `next()` to retry.
   */
  prefetch(term: bigint, mark?: { kv: IKeyValue | undefined }, handed?: TicketBlock): void {
    if (this.block?.term === term || this.reserving) return;
    if (handed) {
      this.election.view.history.noteReserved(handed.last);
      this.block = { term, next: handed.first, last: handed.last };
      return;
    }
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
   * raised mark. Retries with backoff (100 ms doubling to 2 s apart; unref'd timers) while
   * etcd fails, until the mark is high enough or the election has closed (a wait under way
   * runs out first). One runs at a time.
   */
  private async raiseMark(): Promise<void> {
    await retry(() => this.raiseMarkOnce(), {
      schedule: RAISE_MARK_BACKOFF,
      unref: true,
      clock: this.clock,
      random: this.random,
      onRetry: (error) =>
        this.logger.warn(
          { err: describeEtcdError(error) },
          'cannot raise the ticket mark; retrying',
        ),
    });
  }

  /**
   * One attempt of `raiseMark`: resolves once the mark stands at or above the floor or the
   * election closed, reading it again whenever it moved under us; rejects when etcd fails.
   */
  private async raiseMarkOnce(): Promise<void> {
    while (!this.election.closed) {
      const floor = this.election.view.history.highestTicketMark;
      const current = await this.mark.read();
      const stored = current?.value ?? 0n;
      if (stored >= floor) return;
      if (await this.mark.raise(current, floor)) {
        this.logger.warn(
          { from: stored.toString(), to: floor.toString() },
          'raised the ticket mark back above every ticket this pool has issued',
        );
        return;
      }
      // The mark moved meanwhile: read it again.
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
    const settling = SETTLE_AFTER_STEP_MS - history.sinceLastStepMs(this.clock.now());
    if (settling > 0) {
      await this.clock.sleep(settling, { unref: true });
      mark = undefined; // read afresh: a member may have raised it meanwhile
    }
    for (let attempt = 0; attempt < 5; attempt++) {
      // The mark from the claim is exact: since then only this term may write it. A stale one
      // (never expected) just fails the revision guard below and is read again.
      const current = attempt === 0 && mark ? storedMark(mark.kv) : await this.mark.read();
      const stored = current?.value ?? 0n;
      // Never below a mark this member has seen: after a restore of etcd from an older backup
      // the stored one may be, and tickets above it were already issued.
      const seen = history.highestTicketMark;
      const highWater = stored > seen ? stored : seen;
      const size = BigInt(this.blockSize);
      if (await this.mark.raise(current, highWater + size, term)) {
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
