/**
 * What a member does next in its pool's election (src/election/decision.ts), decided from
 * plain state and a clock the test sets: no etcd, no timers. Members a, b and c registered in
 * that order (a is the oldest); each scenario says which of them decides.
 */
import { expect } from 'chai';
import {
  decide,
  leads,
  RELEASE_SETTLE_MS,
  type ElectionState,
  type Step,
} from '../../src/election/decision.js';
import type { ClaimView, MemberView } from '../../src/election/poolView.js';
import type { MemberRecord } from '../../src/membership/memberRecord.js';
import { memberView } from '../support/memberView.js';

/** A member with a lease of its own (`lease-<id>`). */
function member(id: string, createRevision: bigint, record: Partial<MemberRecord> = {}) {
  return { ...memberView(id, createRevision, record), leaseId: `lease-${id}` };
}

const a = member('a', 10n);
const b = member('b', 20n);
const c = member('c', 30n);

/** The claim of `term` naming `holder`, under its lease. */
function claimBy(holder: MemberView, term: bigint): ClaimView {
  const { id, url } = holder.record;
  const claimedAt = '2026-12-01T10:00:00.000Z';
  return { term, leaseId: holder.leaseId, claim: { memberKey: holder.key, id, url, claimedAt } };
}

/** Monotonic now, in milliseconds. */
const NOW = 1_000_000;
const MARGIN_MS = 300;
const HOLD_MS = 500;

interface Scenario {
  /** The member deciding. */
  self: MemberView;
  members?: MemberView[];
  claim?: ClaimView;
  revision?: bigint;
  heldTerm?: bigint;
  /** Default: 5 s ahead. */
  leaseDeadline?: number;
  leaseAlive?: boolean;
  /** Default: registered as `self`. */
  registered?: boolean;
  pending?: boolean;
  leaving?: boolean;
  service?: string;
  /** The strategy's choice; default the oldest, a. */
  preferred?: MemberView | undefined;
  preempts?: boolean;
  holdDown?: Partial<ElectionState['holdDown']>;
  claims?: Partial<ElectionState['claims']>;
}

function state(scenario: Scenario): ElectionState {
  const members = scenario.members ?? [a, b, c];
  const { self } = scenario;
  const current = {
    memberKey: self.key,
    createRevision: self.createRevision,
    lease: {
      id: self.leaseId,
      isAlive: scenario.leaseAlive ?? true,
      leaseDeadline: scenario.leaseDeadline ?? NOW + 5000,
    },
  };
  return {
    now: NOW,
    view: {
      revision: scenario.revision ?? 100n,
      members,
      claim: scenario.claim,
      member: (key) => members.find((m) => m.key === key),
    },
    identity: { service: scenario.service, pool: 'default', prefix: '/p' },
    registration: {
      current: scenario.registered === false ? undefined : current,
      pending: scenario.pending ?? false,
      leaving: scenario.leaving ?? false,
    },
    heldTerm: scenario.heldTerm,
    safetyMarginMs: MARGIN_MS,
    preferred: 'preferred' in scenario ? scenario.preferred : members[0],
    preempts: scenario.preempts ?? true,
    holdDown: { since: undefined, holdMs: HOLD_MS, gateOpensAt: -Infinity, ...scenario.holdDown },
    claims: { inFlight: false, notBefore: 0, released: undefined, ...scenario.claims },
  };
}

const decided = (scenario: Scenario): Step[] => decide(state(scenario));

/** The step kinds, with the detail a scenario is about. */
function summary(steps: Step[]): string[] {
  return steps.map((step) => {
    switch (step.kind) {
      case 'wait':
        return `wait: ${step.why}`;
      case 'claim':
        return `claim replacing ${step.replaceTerm ?? 'nothing'}`;
      case 'holdDown':
        return `holdDown for ${step.successor.record.id} due in ${step.dueInMs} ms`;
      case 'handOver':
        return `handOver ${step.term} to ${step.successor.record.id}`;
      case 'register':
      case 'reregister':
      case 'withdraw':
        return step.kind;
      default:
        return `${step.kind} ${step.term}`;
    }
  });
}

describe('the election decision: who claims', () => {
  it('no claim: the oldest member claims the absent claim key', () => {
    expect(summary(decided({ self: a }))).to.deep.equal(['claim replacing nothing']);
  });

  it('no claim: a younger member waits for the oldest to claim; nobody claims when the strategy prefers nobody', () => {
    expect(summary(decided({ self: b }))).to.deep.equal(['wait: follower']);
    expect(summary(decided({ self: a, preferred: undefined }))).to.deep.equal(['wait: follower']);
  });

  it('the oldest leads: a follower waits, whatever the strategy prefers', () => {
    const claim = claimBy(a, 50n);
    expect(summary(decided({ self: b, claim }))).to.deep.equal(['wait: follower']);
    expect(summary(decided({ self: c, claim, preferred: c }))).to.deep.equal(['wait: follower']);
  });

  it('the claim names a member no longer in the view: the preferred member replaces it, compare-and-swap on its term', () => {
    const claim = claimBy(member('gone', 5n), 50n);
    expect(summary(decided({ self: a, claim }))).to.deep.equal(['claim replacing 50']);
    expect(summary(decided({ self: b, claim }))).to.deep.equal(['wait: follower']);
  });

  it('a forged claim (a URL the member never registered) counts as none and is replaced', () => {
    const forged = claimBy(b, 50n);
    forged.claim = { ...forged.claim!, url: 'http://evil:1' };
    expect(summary(decided({ self: a, claim: forged }))).to.deep.equal(['claim replacing 50']);
  });

  it('no claim while one is in flight, during the backoff after a failed one, or with a lost lease', () => {
    expect(summary(decided({ self: a, claims: { inFlight: true } }))).to.deep.equal([
      'wait: claiming',
    ]);
    expect(summary(decided({ self: a, claims: { notBefore: NOW + 1 } }))).to.deep.equal([
      'wait: backing off',
    ]);
    expect(summary(decided({ self: a, claims: { notBefore: NOW } }))).to.deep.equal([
      'claim replacing nothing',
    ]);
    expect(summary(decided({ self: a, leaseAlive: false }))).to.deep.equal(['wait: lease lost']);
  });
});

describe('the election decision: a member not (yet) in the pool never claims', () => {
  it('leaving (SIGTERM): waits, though preferred and the claim key is free', () => {
    expect(summary(decided({ self: a, leaving: true }))).to.deep.equal(['wait: leaving']);
    expect(summary(decided({ self: a, leaving: true, registered: false }))).to.deep.equal([
      'wait: leaving',
    ]);
  });

  it('unregistered: registers, or waits while a registration is under way and until the view shows it', () => {
    expect(summary(decided({ self: a, registered: false }))).to.deep.equal(['register']);
    expect(summary(decided({ self: a, registered: false, pending: true }))).to.deep.equal([
      'wait: registering',
    ]);
    expect(summary(decided({ self: a, revision: 9n }))).to.deep.equal(['wait: view behind']);
  });

  it('our member key vanished from the view: registers again instead of claiming', () => {
    expect(summary(decided({ self: a, members: [b, c], preferred: a }))).to.deep.equal([
      'reregister',
    ]);
  });

  it('the pool belongs to an older member of another service: withdraws instead of claiming', () => {
    const billing = member('x', 5n, { service: 'billing' });
    const steps = decided({ self: a, service: 'reports', members: [billing, a], preferred: a });
    expect(summary(steps)).to.deep.equal(['withdraw']);
    expect(steps[0]).to.have.nested.property('conflict.conflict.poolService', 'billing');
  });
});

describe('the election decision: holding the claim', () => {
  const mine = claimBy(a, 50n);

  it('the leader goes on leading, also while the watch event of a claim newer than the view is on its way', () => {
    expect(summary(decided({ self: a, claim: mine, heldTerm: 50n }))).to.deep.equal(['lead 50']);
    expect(summary(decided({ self: a, heldTerm: 120n, revision: 100n }))).to.deep.equal([
      'lead 120',
    ]);
  });

  it('leads while the lease deadline minus the safety margin is ahead, not a millisecond longer', () => {
    const registered = {
      memberKey: a.key,
      createRevision: a.createRevision,
      lease: { id: a.leaseId, isAlive: true, leaseDeadline: NOW + MARGIN_MS + 1 },
    };
    expect(leads(50n, registered, MARGIN_MS, NOW)).to.equal(true);
    expect(leads(50n, registered, MARGIN_MS, NOW + 1)).to.equal(false);
    expect(leads(undefined, registered, MARGIN_MS, NOW)).to.equal(false);
    expect(
      leads(50n, { ...registered, lease: { ...registered.lease, isAlive: false } }, 0, NOW),
    ).to.equal(false);
  });

  it('a leader whose lease deadline has passed stops acting: it neither leads nor hands over', () => {
    const steps = decided({
      self: a,
      claim: mine,
      heldTerm: 50n,
      leaseDeadline: NOW + MARGIN_MS,
      preferred: b,
      holdDown: { since: NOW - HOLD_MS },
    });
    expect(summary(steps)).to.deep.equal(['wait: deadline passed']);
  });

  it('the claim of our term changed in etcd: steps down, then claims again while still preferred', () => {
    expect(summary(decided({ self: a, heldTerm: 50n, revision: 60n }))).to.deep.equal([
      'stepDown 50',
      'claim replacing nothing',
    ]);
    expect(summary(decided({ self: a, heldTerm: 50n, claim: claimBy(b, 55n) }))).to.deep.equal([
      'stepDown 50',
      'wait: follower',
    ]);
  });

  it('our claim committed but its answer was lost: adopts it and leads', () => {
    expect(summary(decided({ self: a, claim: mine }))).to.deep.equal(['adopt 50', 'lead 50']);
  });

  it('a claim handed to us in one transaction: takes it over at once, with the ticket block it carries', () => {
    const base = claimBy(b, 70n);
    const handed: ClaimView = {
      ...base,
      claim: { ...base.claim!, handedBy: 'a', tickets: { first: '201', last: '300' } },
    };
    // a left the pool in that transaction.
    const after = { members: [b, c], preferred: b };
    const steps = decided({ self: b, claim: handed, ...after });
    expect(summary(steps)).to.deep.equal(['takeOver 70', 'lead 70']);
    expect(steps[0]).to.deep.include({ from: 'a', tickets: { first: 201n, last: 300n } });
    const noBlock: ClaimView = { ...base, claim: { ...base.claim!, handedBy: 'a' } };
    expect(decided({ self: b, claim: noBlock, ...after })[0]).to.deep.include({
      tickets: undefined,
    });
    expect(summary(decided({ self: b, claim: handed, claims: { inFlight: true } }))).to.deep.equal([
      'wait: claiming',
    ]);
    expect(summary(decided({ self: c, claim: handed })), 'another member').to.deep.equal([
      'wait: follower',
    ]);
    expect(summary(decided({ self: b, claim: handed, leaving: true }))).to.deep.equal([
      'wait: leaving',
    ]);
  });

  it('a claim handed to our member key but bound to another lease is not ours to take over', () => {
    const base = claimBy(b, 70n);
    const forged: ClaimView = {
      ...base,
      leaseId: a.leaseId,
      claim: { ...base.claim!, handedBy: 'a', tickets: { first: '201', last: '300' } },
    };
    expect(summary(decided({ self: b, claim: forged, preferred: a }))).to.deep.equal([
      'wait: follower',
    ]);
  });

  it('never adopts a claim it released; deletes it again once the release had time to settle', () => {
    const releasedAt = (at: number) => ({ claims: { released: { term: 50n, at } } });
    expect(summary(decided({ self: a, claim: mine, ...releasedAt(NOW - 10) }))).to.deep.equal([
      'wait: released',
    ]);
    expect(
      summary(decided({ self: a, claim: mine, ...releasedAt(NOW - RELEASE_SETTLE_MS - 1) })),
    ).to.deep.equal(['releaseAgain 50']);
  });
});

describe('the election decision: preemption', () => {
  const mine = claimBy(a, 50n);
  const leader = { self: a, claim: mine, heldTerm: 50n, preferred: b };

  it('the strategy prefers another member: the hold-down starts, the handover due in PREEMPT_AFTER_MS', () => {
    expect(summary(decided(leader))).to.deep.equal(['holdDown for b due in 500 ms']);
  });

  it('within the hold-down the leader holds on; once it is over, it hands over', () => {
    expect(summary(decided({ ...leader, holdDown: { since: NOW - HOLD_MS + 1 } }))).to.deep.equal([
      'holdDown for b due in 1 ms',
    ]);
    expect(summary(decided({ ...leader, holdDown: { since: NOW - HOLD_MS } }))).to.deep.equal([
      'handOver 50 to b',
    ]);
  });

  it('another pool of the process just handed over: the handover waits for the gate to open', () => {
    const holdDown = { since: NOW - 10 * HOLD_MS, gateOpensAt: NOW + 200 };
    expect(summary(decided({ ...leader, holdDown }))).to.deep.equal([
      'holdDown for b due in 200 ms',
    ]);
  });

  it('a strategy that does not preempt (oldest) keeps its leader, whoever it prefers', () => {
    const holdDown = { since: NOW - 10 * HOLD_MS };
    expect(summary(decided({ ...leader, preempts: false, holdDown }))).to.deep.equal(['lead 50']);
  });

  it('the strategy prefers the leader again: it leads on, however long the hold-down ran', () => {
    const holdDown = { since: NOW - 10 * HOLD_MS };
    expect(summary(decided({ ...leader, preferred: a, holdDown }))).to.deep.equal(['lead 50']);
  });
});
