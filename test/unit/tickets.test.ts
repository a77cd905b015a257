/**
 * The ticket sequence (src/work/tickets.ts): blocks reserved by raising the high-water mark
 * in a transaction fenced by the leader's term, then handed out from memory. The mark is a
 * stand-in that keeps etcd's rules (a revision guard, a fence on the claim's term) and the
 * clock is fake; the integration tests (election, tokens, chaos) prove it on etcd.
 */
import { EventEmitter } from 'node:events';
import { expect } from 'chai';
import type { IKeyValue } from 'etcd3';
import { pino } from 'pino';
import { EtcdHistory } from '../../src/election/etcdHistory.js';
import { createMetrics } from '../../src/metrics/metrics.js';
import type { StoredMark, TicketMark } from '../../src/work/ticketMark.js';
import { TicketSequence, type TicketLeadership } from '../../src/work/tickets.js';
import { FakeClock } from '../support/fakeClock.js';
import { failureOf } from '../support/rejection.js';

const BLOCK = 5;

/** The mark as etcd keeps it, with the claim's term that fences a leader's raise. */
class StandInMark extends EventEmitter implements TicketMark {
  value: bigint | undefined;
  private revision = 0;
  /** The claim's current revision: a raise fenced by another term does not commit. */
  claimTerm: bigint | undefined;
  /** Reads that fail from now on, as etcd timing out would. */
  failingReads = 0;
  /** Reads answered so far. */
  reads = 0;
  /** Every raise asked for: its target and the term that fenced it. */
  readonly raises: { to: bigint; term: bigint | undefined; committed: boolean }[] = [];
  /** Runs once just before the next raise is judged (another writer gets in first). */
  beforeRaise: (() => void) | undefined;

  constructor(value?: bigint) {
    super();
    if (value !== undefined) this.write(value);
  }

  /** The mark as the claim's own transaction read it (an etcd key-value). */
  asKeyValue(): IKeyValue {
    return {
      key: Buffer.from('tickets'),
      value: Buffer.from(String(this.value)),
      create_revision: '1',
      mod_revision: String(this.revision),
      version: String(this.revision),
      lease: '0',
    };
  }

  write(value: bigint): void {
    this.value = value;
    this.revision += 1;
  }

  read(): Promise<StoredMark | undefined> {
    if (this.failingReads > 0) {
      this.failingReads--;
      return Promise.reject(new Error('etcdserver: request timed out'));
    }
    this.reads++;
    return Promise.resolve(
      this.value === undefined
        ? undefined
        : { value: this.value, modRevision: String(this.revision) },
    );
  }

  raise(expected: StoredMark | undefined, to: bigint, term?: bigint): Promise<boolean> {
    const before = this.beforeRaise;
    this.beforeRaise = undefined;
    before?.();
    const unchanged = (expected?.modRevision ?? '0') === String(this.revision);
    const fenceHolds = term === undefined || term === this.claimTerm;
    const committed = unchanged && fenceHolds;
    this.raises.push({ to, term, committed });
    if (committed) {
      this.write(to);
      this.emit('written', to);
    }
    return Promise.resolve(committed);
  }
}

/** The election as the sequence sees it: the test sets the term and emits the view's events. */
class StandInElection implements TicketLeadership {
  readonly pool = 'default';
  term: bigint | undefined;
  closed = false;
  readonly view = Object.assign(new EventEmitter(), { history: new EtcdHistory() });
}

function sequenceOver(markValue?: bigint) {
  const clock = new FakeClock();
  const mark = new StandInMark(markValue);
  const election = new StandInElection();
  const tickets = new TicketSequence(
    mark,
    election,
    BLOCK,
    createMetrics('test'),
    pino({ level: 'silent' }),
    { clock, random: () => 0.5 },
  );
  /** This member leads under `term` from now on (its claim in etcd, its election's view). */
  const lead = (term: bigint) => {
    mark.claimTerm = term;
    election.term = term;
  };
  /** `count` tickets under `term`, each checked against the mark persisted when it is issued. */
  const issue = async (term: bigint, count: number) => {
    const issued: bigint[] = [];
    for (let i = 0; i < count; i++) {
      const ticket = await tickets.next(term);
      expect(ticket <= (mark.value ?? 0n), `ticket ${ticket} above the persisted mark`).to.equal(
        true,
      );
      issued.push(ticket);
    }
    return issued;
  };
  return { clock, mark, election, tickets, lead, issue };
}

describe('Tickets: blocks reserved by raising the mark, handed out in order', () => {
  it("a leader's first tickets come in order from one block above the stored mark", async () => {
    const { mark, lead, issue } = sequenceOver(40n);
    lead(7n);
    expect(await issue(7n, BLOCK)).to.deep.equal([41n, 42n, 43n, 44n, 45n]);
    expect(mark.value).to.equal(45n);
    expect(mark.raises).to.deep.equal([{ to: 45n, term: 7n, committed: true }]);
  });

  it('the block exhausted, the next ticket first raises the mark by another block', async () => {
    const { mark, lead, issue } = sequenceOver(40n);
    lead(7n);
    await issue(7n, BLOCK);
    expect(await issue(7n, 2)).to.deep.equal([46n, 47n]);
    expect(mark.value).to.equal(50n);
    expect(mark.raises.map((raise) => raise.to)).to.deep.equal([45n, 50n]);
  });

  it('with no mark in etcd yet, the first ticket is 1', async () => {
    const { lead, issue } = sequenceOver();
    lead(1n);
    expect(await issue(1n, 2)).to.deep.equal([1n, 2n]);
  });

  it('every reservation is fenced by the term it serves', async () => {
    const { mark, lead, issue } = sequenceOver(0n);
    lead(3n);
    await issue(3n, BLOCK + 1);
    lead(4n);
    await issue(4n, 1);
    expect(mark.raises.map((raise) => raise.term)).to.deep.equal([3n, 3n, 4n]);
  });

  it('a new term starts a new block above the old one; the old term gets no more tickets', async () => {
    const { mark, lead, issue, tickets } = sequenceOver(40n);
    lead(7n);
    const first = await issue(7n, 2);
    lead(8n);
    const error = await failureOf(tickets.next(7n));
    expect(error.code).to.equal('NOT_LEADER');
    const second = await issue(8n, 2);
    expect(second).to.deep.equal([46n, 47n]);
    expect(mark.value).to.equal(50n);
    expect([...first, ...second]).to.deep.equal([41n, 42n, 46n, 47n]);
  });

  it('a deposed leader that has not noticed yet writes nothing: the fence refuses its raise', async () => {
    const { mark, election, lead, tickets } = sequenceOver(40n);
    lead(7n);
    mark.claimTerm = 9n; // another member claimed; our view still says term 7
    mark.beforeRaise = () => (election.term = undefined); // and then our view catches up
    const error = await failureOf(tickets.next(7n));
    expect(error.code).to.equal('NOT_LEADER');
    expect(mark.value).to.equal(40n);
    expect(mark.raises).to.deep.equal([{ to: 45n, term: 7n, committed: false }]);
  });

  it('the mark moved between the read and the raise: it is read again and the block goes above it', async () => {
    const { mark, lead, issue } = sequenceOver(40n);
    lead(7n);
    mark.beforeRaise = () => mark.write(60n); // a member put the mark back meanwhile
    expect(await issue(7n, 1)).to.deep.equal([61n]);
    expect(mark.raises.map(({ to, committed }) => ({ to, committed }))).to.deep.equal([
      { to: 45n, committed: false },
      { to: 65n, committed: true },
    ]);
  });

  it("a block reserved on the claim's own read of the mark costs no read of its own", async () => {
    const { mark, lead, issue, tickets } = sequenceOver(40n);
    lead(7n);
    tickets.prefetch(7n, { kv: mark.asKeyValue() });
    expect(await issue(7n, 2)).to.deep.equal([41n, 42n]);
    expect(mark.reads).to.equal(0);
  });

  it('a block handed over with the claim is issued with no read and no write; the next one is reserved above it', async () => {
    const { mark, lead, issue, tickets, election } = sequenceOver(40n);
    // The leaver raised the mark to 45 in the transaction that handed us the claim (term 9).
    mark.write(45n);
    lead(9n);
    tickets.prefetch(9n, undefined, { first: 41n, last: 45n });
    expect(election.view.history.highestTicketMark).to.equal(45n);
    expect(await issue(9n, BLOCK)).to.deep.equal([41n, 42n, 43n, 44n, 45n]);
    expect(mark.reads).to.equal(0);
    expect(mark.raises).to.deep.equal([]);
    expect(await issue(9n, 1)).to.deep.equal([46n]);
    expect(mark.raises).to.deep.equal([{ to: 50n, term: 9n, committed: true }]);
    tickets.prefetch(9n, undefined, { first: 41n, last: 45n });
    expect(await issue(9n, 1), 'the same handoff seen again is not issued twice').to.deep.equal([
      47n,
    ]);
  });

  it("the claim's read was stale: the mark is read afresh and the block goes above it", async () => {
    const { mark, lead, issue, tickets } = sequenceOver(40n);
    lead(7n);
    const claimRead = mark.asKeyValue();
    mark.write(52n);
    tickets.prefetch(7n, { kv: claimRead });
    expect(await issue(7n, 1)).to.deep.equal([53n]);
    expect(mark.reads).to.equal(1);
  });

  it('etcd fails the reservation: ETCD_UNAVAILABLE, and the next ticket continues the sequence', async () => {
    const { mark, lead, issue, tickets } = sequenceOver(40n);
    lead(7n);
    expect(await issue(7n, BLOCK)).to.deep.equal([41n, 42n, 43n, 44n, 45n]);
    mark.failingReads = 1;
    expect((await failureOf(tickets.next(7n))).code).to.equal('ETCD_UNAVAILABLE');
    expect(await issue(7n, 1)).to.deep.equal([46n]);
  });

  it('after etcd went back in time, the first reservation waits 2 s and goes above every mark seen', async () => {
    const { clock, mark, election, lead, issue } = sequenceOver(10n);
    const history = election.view.history;
    history.noteTicketMark(45n, clock.now());
    expect(history.noteTicketMark(10n, clock.now())).to.deep.equal({ highest: 45n, now: 10n });
    clock.advance(500);
    lead(7n);
    expect(await issue(7n, 1)).to.deep.equal([46n]);
    expect(clock.waits).to.deep.equal([1500]);
    expect(clock.unrefs).to.deep.equal([true]);
    expect(mark.value).to.equal(50n);
  });
});

describe('Tickets: the mark put back after etcd lost part of its history', () => {
  /** Resolves with the next value written to the mark. */
  const nextWrite = (mark: StandInMark) =>
    new Promise<bigint>((resolve) => mark.once('written', resolve));

  it('a raise that etcd fails is retried after 100, 200, 400 ms (unref), then puts the mark back', async () => {
    const { clock, mark, election, lead } = sequenceOver(10n);
    lead(7n);
    const history = election.view.history;
    history.noteTicketMark(45n, clock.now());
    history.noteTicketMark(10n, clock.now());
    mark.failingReads = 3;
    const written = nextWrite(mark);
    election.view.emit('ticketMarkBack');
    expect(await written).to.equal(45n);
    expect(clock.waits).to.deep.equal([100, 200, 400]);
    expect(clock.unrefs).to.deep.equal([true, true, true]);
    // Unfenced, even from the leader: any member may put the mark back.
    expect(mark.raises).to.deep.equal([{ to: 45n, term: undefined, committed: true }]);
  });

  it('after 5 failures the retries stay 2 s apart', async () => {
    const { clock, mark, election } = sequenceOver(10n);
    election.view.history.noteTicketMark(45n, clock.now());
    mark.failingReads = 7;
    const written = nextWrite(mark);
    election.view.emit('ticketMarkBack');
    await written;
    expect(clock.waits).to.deep.equal([100, 200, 400, 800, 1600, 2000, 2000]);
  });

  it('the election closed: the mark is no longer put back', () => {
    const { clock, mark, election } = sequenceOver(10n);
    election.view.history.noteTicketMark(45n, clock.now());
    mark.failingReads = 2;
    election.closed = true;
    // The first read would be sent at once, in the event's own turn.
    election.view.emit('ticketMarkBack');
    expect(mark.failingReads).to.equal(2);
    expect(mark.raises).to.deep.equal([]);
    expect(clock.waits).to.deep.equal([]);
  });
});
