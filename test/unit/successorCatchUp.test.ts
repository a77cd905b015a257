/**
 * A forward reaching a member about to lead under the term the sender saw: a successor whose
 * own watch has not delivered the claim handed to it yet (graceful handover,
 * docs/design-choices.md "Handoff in one write") — also one the leaver named to the sender in
 * its "not leader" — or a member whose claim committed but whose claim's answer is still on
 * its way (restart takeover). It waits for that and serves the
 * request, rather than answering "not leader" and leaving the follower to wait out its retry
 * backoff for a view change that already came (the slow tails of the graceful failover and
 * the restart takeover benchmarks). The election is a stand-in exposing only what the router
 * reads; its events are emitted by the test.
 */
import { EventEmitter } from 'node:events';
import { expect } from 'chai';
import { pino } from 'pino';
import type { PoolElection } from '../../src/election/election.js';
import { createMetrics } from '../../src/metrics/metrics.js';
import { monotonicNow } from '../../src/util/time.js';
import { waitUntil } from '../../src/util/waitUntil.js';
import type { WorkContext } from '../../src/work/handler.js';
import { WorkRouter } from '../../src/work/router.js';
import { failureOf } from '../support/rejection.js';

/** Not leading, its view at `revision`, until `takeOver` (what its watch would bring). */
class SuccessorElection extends EventEmitter {
  readonly pool = 'default';
  readonly memberId = 'b';
  term: bigint | undefined = undefined;
  readonly memberKey = '/pool/members/b';
  /** The pool as the view has it: no other member to keep a connection to. */
  readonly view: { revision: bigint; members: never[] };
  /** The claim in the view, when it is this member's own. */
  private ownClaim: bigint | undefined;

  constructor(revision: bigint) {
    super();
    this.view = { revision, members: [] };
  }

  isLeader() {
    return this.term !== undefined;
  }

  /** Shutting down: the claim in the view is ours, let go (PoolElection.awaitsOwnClaim). */
  leaving = false;
  /** Another member's claim in the view (`seeOthersClaim`). */
  private othersClaim: bigint | undefined;
  /** Leaving, the member we hand our claim of that term to (PoolElection.successorOf). */
  handingTo: { term: bigint; successor: { id: string; url: string } } | undefined;

  leader() {
    if (this.othersClaim !== undefined) return { self: false, term: this.othersClaim };
    return this.ownClaim === undefined ? undefined : { self: true, term: this.ownClaim };
  }

  successorOf(term: bigint) {
    return this.handingTo?.term === term ? this.handingTo.successor : undefined;
  }

  released(term: bigint) {
    return this.handingTo?.term === term;
  }

  /** The watch shows another member's claim at `revision`. */
  seeOthersClaim(revision: bigint): void {
    this.view.revision = revision;
    this.othersClaim = revision;
    this.emit('change');
  }

  awaitsOwnClaim(term: bigint) {
    return !this.leaving && this.term === undefined && this.ownClaim === term;
  }

  waitFor(ready: (e: this) => boolean, timeoutMs: number): Promise<boolean> {
    return waitUntil(this, 'change', () => ready(this), timeoutMs);
  }

  /** The watch event of the handoff at `revision` arrives: we lead under it. */
  takeOver(revision: bigint): void {
    this.othersClaim = undefined;
    this.view.revision = revision;
    this.term = revision;
    this.emit('change');
  }

  /** The watch shows our own claim at `revision`; its transaction's answer is yet to come. */
  seeOwnClaim(revision: bigint): void {
    this.view.revision = revision;
    this.ownClaim = revision;
    this.emit('change');
  }

  /** Our claim's answer arrives: we lead under it. */
  claimAnswered(): void {
    this.term = this.ownClaim;
    this.emit('change');
  }

  /** A watch event at `revision` that does not hand us anything. */
  seeRevision(revision: bigint): void {
    this.view.revision = revision;
    this.emit('change');
  }
}

/** The bound on the catch-up (VIEW_CATCH_UP_MS in src/work/router.ts). */
const CATCH_UP_MS = 250;

function successor(revision: bigint) {
  const election = new SuccessorElection(revision);
  const executed: bigint[] = [];
  const router = new WorkRouter(
    undefined as never,
    election as unknown as PoolElection,
    (_request, context: WorkContext) => {
      executed.push(context.term);
      return Promise.resolve({ performedBy: 'b' });
    },
    undefined as never,
    // Forwards nothing here: it only keeps connections to the next leaders.
    { keepWarm: () => undefined } as never,
    { leaderlessWaitMs: 5000, maxHops: 3, forwardTimeoutMs: 10_000 },
    createMetrics('test'),
    pino({ level: 'silent' }),
  );
  return { election, router, executed };
}

/** A forward from follower c, which saw the claim of `termSeen`. */
const forwardSeeing = (termSeen: bigint) => ({ payload: 1, via: ['c'], hops: 1, termSeen });

/**
 * Routes a forward that saw term 12 on `member`, which comes to act (`acts`) while the forward
 * waits: it is executed here, under term 12.
 */
async function servedOnceItActs(
  { router, executed }: ReturnType<typeof successor>,
  acts: () => void,
): Promise<void> {
  const answer = router.route(forwardSeeing(12n));
  setImmediate(acts);
  expect(await answer).to.deep.include({ role: 'leader', status: 200 });
  expect(executed).to.deep.equal([12n]);
}

describe('WorkRouter: a forward that reaches the next leader before it acts', function () {
  this.timeout(10_000);

  it('is held until the handoff arrives here, then served under the handed-over term', async () => {
    const member = successor(10n);
    // The handoff's watch event reaches the successor after the forward did.
    await servedOnceItActs(member, () => member.election.takeOver(12n));
  });

  it('is held while the claim it saw is our own and its answer is on its way, then served', async () => {
    const member = successor(10n);
    member.election.seeOwnClaim(12n);
    await servedOnceItActs(member, () => member.election.claimAnswered());
  });

  it('is answered "not leader" after the bound when our own claim never comes to act', async () => {
    const { election, router, executed } = successor(10n);
    election.seeOwnClaim(12n);
    const startedAt = monotonicNow();
    const error = await failureOf(router.route(forwardSeeing(12n)));
    expect(error.code).to.equal('NOT_LEADER');
    expect(monotonicNow() - startedAt).to.be.at.least(CATCH_UP_MS - 1);
    expect(executed).to.deep.equal([]);
  });

  it('naming the claim its leaving holder hands to us (the leaver named us): held until the handoff arrives, then served', async () => {
    const member = successor(10n);
    member.election.seeOthersClaim(12n);
    const answer = member.router.route(forwardSeeing(12n));
    setImmediate(() => member.election.takeOver(14n));
    expect(await answer).to.deep.include({ role: 'leader', status: 200 });
    expect(member.executed).to.deep.equal([14n]);
  });

  /**
   * A member handing its claim of term 12 over to c, its view showing that claim as `shown`:
   * a forward naming term 12 is answered "not leader" at once, naming c, and not executed.
   */
  async function answeredAtOnceNamingC(shown: (election: SuccessorElection) => void) {
    const { election, router, executed } = successor(12n);
    shown(election);
    election.handingTo = { term: 12n, successor: { id: 'c', url: 'http://127.0.0.1:3003' } };
    const startedAt = monotonicNow();
    const error = await failureOf(router.route(forwardSeeing(12n)));
    expect(error.code).to.equal('NOT_LEADER');
    expect(error.details).to.deep.equal({
      successor: { id: 'c', url: 'http://127.0.0.1:3003' },
    });
    expect(monotonicNow() - startedAt, 'not held for the catch-up bound').to.be.below(CATCH_UP_MS);
    expect(executed).to.deep.equal([]);
  }

  it('is answered "not leader" at once by a leaver whose view still shows its own claim, naming its successor', async () => {
    await answeredAtOnceNamingC((election) => {
      election.seeOwnClaim(12n);
      election.leaving = true;
    });
  });

  it('is answered "not leader" at once by a member resigning the claim the forward names, which its view shows as no longer its own', async () => {
    // Resigning detaches the registration: the claim reads as another member's.
    await answeredAtOnceNamingC((election) => election.seeOthersClaim(12n));
  });

  it('is answered "not leader" at once when the view has reached that term without leading', async () => {
    const { router, executed } = successor(12n);
    const startedAt = monotonicNow();
    const error = await failureOf(router.route(forwardSeeing(12n)));
    expect(error.code).to.equal('NOT_LEADER');
    expect(monotonicNow() - startedAt).to.be.below(CATCH_UP_MS / 2);
    expect(executed).to.deep.equal([]);
  });

  it('is answered "not leader" as soon as the view passes that term without handing it here', async () => {
    const { election, router, executed } = successor(10n);
    const startedAt = monotonicNow();
    const answer = failureOf(router.route(forwardSeeing(12n)));
    setImmediate(() => election.seeRevision(13n));
    const error = await answer;
    expect(error.code).to.equal('NOT_LEADER');
    expect(monotonicNow() - startedAt).to.be.below(CATCH_UP_MS / 2);
    expect(executed).to.deep.equal([]);
  });

  it('is answered "not leader" after the bound when the view never catches up (a forged term)', async () => {
    const { router, executed } = successor(10n);
    const startedAt = monotonicNow();
    const error = await failureOf(router.route(forwardSeeing(10n ** 20n)));
    const waitedMs = monotonicNow() - startedAt;
    expect(error.code).to.equal('NOT_LEADER');
    expect(waitedMs).to.be.at.least(CATCH_UP_MS - 1);
    expect(waitedMs).to.be.below(CATCH_UP_MS * 4);
    expect(executed).to.deep.equal([]);
  });
});
