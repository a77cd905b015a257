/**
 * Preemption's clock work (src/election/preemption.ts) on a fake clock: when the hold-down
 * starts, what it schedules and after how many milliseconds, what cancels it, the gate shared
 * by the pools of one process, and the strategy's choice with its fallback. With decision.ts
 * it makes the whole handover timing: the last scenario drives both, no etcd and no waiting.
 */
import { expect } from 'chai';
import { pino } from 'pino';
import { decide, type ElectionState } from '../../src/election/decision.js';
import { HandoverGate, Preemption } from '../../src/election/preemption.js';
import { StrategyFallback, weighted, type LeaderStrategy } from '../../src/election/strategy.js';
import { createMetrics } from '../../src/metrics/metrics.js';
import { FakeClock } from '../support/fakeClock.js';
import { memberView } from '../support/memberView.js';

const HOLD_MS = 500;
const a = memberView('a', 10n, { weight: 1 });
const b = memberView('b', 20n, { weight: 8 });

function logLines() {
  const lines: { msg: string }[] = [];
  const logger = pino(
    { level: 'info', base: null },
    { write: (line: string) => lines.push(JSON.parse(line) as { msg: string }) },
  );
  return { logger, lines };
}

function onFakeClock(
  options: { strategy?: LeaderStrategy; gate?: HandoverGate; random?: number } = {},
) {
  const clock = new FakeClock();
  const { logger, lines } = logLines();
  const preemption = new Preemption({
    pool: 'default',
    strategy: options.strategy ?? weighted,
    preemptAfterMs: HOLD_MS,
    handovers: options.gate,
    logger,
    metrics: createMetrics('test'),
    clock,
    random: () => options.random ?? 0,
  });
  let due = 0;
  preemption.on('due', () => due++);
  return { preemption, clock, lines, due: () => due };
}

describe('preemption on a fake clock', () => {
  it('a better member is preferred: the hold-down starts now and `due` comes after PREEMPT_AFTER_MS + 10 ms', () => {
    const { preemption, clock, due } = onFakeClock();
    preemption.holdDownFor(b, HOLD_MS);
    expect(preemption.holdDown.since).to.equal(clock.now());
    expect(clock.pending).to.deep.equal([HOLD_MS + 10]);
    clock.advance(HOLD_MS + 9);
    expect(due()).to.equal(0);
    clock.advance(1);
    expect(due()).to.equal(1);
  });

  it('the jitter adds at most a fifth of the hold-down, so pools of one process do not decide together', () => {
    const { preemption, clock } = onFakeClock({ random: 0.999 });
    preemption.holdDownFor(b, HOLD_MS);
    expect(clock.pending[0]).to.be.closeTo(HOLD_MS + HOLD_MS / 5 + 10, 0.2);
  });

  it('asked again while its timer is pending, it neither restarts the hold-down nor sets a second timer', () => {
    const { preemption, clock } = onFakeClock();
    preemption.holdDownFor(b, HOLD_MS);
    const since = preemption.holdDown.since;
    clock.advance(100);
    preemption.holdDownFor(b, HOLD_MS - 100);
    expect(preemption.holdDown.since).to.equal(since);
    expect(clock.pending).to.deep.equal([HOLD_MS + 10]);
  });

  it('after its timer fired, a handover still not due (the gate) sets a timer for what is left', () => {
    const { preemption, clock, due } = onFakeClock();
    preemption.holdDownFor(b, HOLD_MS);
    clock.advance(HOLD_MS + 10);
    preemption.holdDownFor(b, 200);
    expect(clock.pending).to.deep.equal([210]);
    clock.advance(210);
    expect(due()).to.equal(2);
  });

  it('clear() (preferred again, or no longer leading) cancels the timer, and the hold-down starts over', () => {
    const { preemption, clock, due } = onFakeClock();
    preemption.holdDownFor(b, HOLD_MS);
    preemption.clear();
    expect(preemption.holdDown.since).to.equal(undefined);
    clock.advance(10 * HOLD_MS);
    expect(due()).to.equal(0);
  });

  it('handing over closes the gate of every pool of the process for PREEMPT_AFTER_MS', () => {
    const gate = new HandoverGate();
    const first = onFakeClock({ gate });
    const second = onFakeClock({ gate });
    expect(second.preemption.holdDown.gateOpensAt).to.equal(-Infinity);
    first.preemption.holdDownFor(b, HOLD_MS);
    first.preemption.handingOver();
    expect(first.clock.pending, 'the handover cancels its own timer').to.deep.equal([]);
    expect(first.preemption.holdDown.since).to.equal(undefined);
    expect(second.preemption.holdDown.gateOpensAt).to.equal(first.clock.now() + HOLD_MS);
  });

  it('the strategy chooses once per view revision: the 250 ms tick does not run it again', () => {
    let calls = 0;
    const counting = {
      ...weighted,
      select: (...args: Parameters<LeaderStrategy['select']>) => {
        calls++;
        return weighted.select(...args);
      },
    };
    const { preemption } = onFakeClock({ strategy: counting });
    const view = { revision: 7n, members: [a, b] };
    expect(preemption.preferred(view, a.key)?.record.id).to.equal('b');
    expect(preemption.preferred(view, a.key)?.record.id).to.equal('b');
    expect(calls).to.equal(1);
    preemption.preferred({ ...view, revision: 8n }, a.key);
    expect(calls).to.equal(2);
  });

  it("the successor of a leader that leaves is the strategy's choice among the others, never itself", () => {
    const c = memberView('c', 30n, { weight: 4 });
    const observer = memberView('o', 5n, { weight: 9, candidate: false });
    const { preemption } = onFakeClock();
    const members = [observer, a, b, c];
    expect(preemption.successor({ members }, b.key)?.record.id, 'weighted, b leaving').to.equal(
      'c',
    );
    expect(preemption.successor({ members }, a.key)?.record.id).to.equal('b');
    expect(preemption.successor({ members: [observer, a] }, a.key), 'no candidate').to.equal(
      undefined,
    );
    const naming: LeaderStrategy = { ...weighted, select: () => b };
    const { preemption: stubborn } = onFakeClock({ strategy: naming });
    expect(stubborn.successor({ members: [a, b] }, b.key), 'a choice outside the others').to.equal(
      undefined,
    );
  });

  it('a strategy that keeps failing: oldest decides, logged once per reason and minute', () => {
    const failing: LeaderStrategy = {
      name: 'module',
      preempt: true,
      select: () => {
        throw new StrategyFallback('slow', 'selectLeader took 80 ms');
      },
    };
    const { preemption, clock, lines } = onFakeClock({ strategy: failing });
    const logged = () => lines.filter((l) => l.msg === 'leader strategy failed; using oldest');
    for (let revision = 1n; revision <= 3n; revision++) {
      expect(preemption.preferred({ revision, members: [a, b] }, b.key)?.record.id).to.equal('a');
      clock.advance(20_000);
    }
    expect(logged()).to.have.length(1);
    clock.advance(1);
    preemption.preferred({ revision: 4n, members: [a, b] }, b.key);
    expect(logged()).to.have.length(2);
  });
});

describe('a handover, decision and hold-down together on a fake clock', () => {
  it('a heavier member joins while a leads: a hands over to it once the hold-down is over, and only once', () => {
    const { preemption, clock, due } = onFakeClock();
    const members = [a, b];
    let held: bigint | undefined = 25n;
    let released: { term: bigint; at: number } | undefined;
    const claimedAt = '2026-12-01T10:00:00.000Z';
    const state = (): ElectionState => ({
      now: clock.now(),
      view: {
        revision: 30n,
        members,
        claim: {
          term: 25n,
          leaseId: a.leaseId,
          claim: { memberKey: a.key, id: 'a', url: a.record.url, claimedAt },
        },
        member: (key) => members.find((m) => m.key === key),
      },
      identity: { service: undefined, pool: 'default', prefix: '/p' },
      registration: {
        current: {
          memberKey: a.key,
          createRevision: a.createRevision,
          lease: { id: a.leaseId, isAlive: true, leaseDeadline: clock.now() + 5000 },
        },
        pending: false,
        leaving: false,
      },
      heldTerm: held,
      safetyMarginMs: 300,
      preferred: preemption.preferred({ revision: 30n, members }, a.key),
      preempts: preemption.preempts,
      holdDown: preemption.holdDown,
      claims: { inFlight: false, notBefore: 0, released },
    });
    const joinedAt = clock.now();
    const handedOverAt: number[] = [];
    // What the election does with the steps, as far as the hold-down goes.
    const evaluate = () => {
      for (const step of decide(state())) {
        if (step.kind === 'holdDown') preemption.holdDownFor(step.successor, step.dueInMs);
        if (step.kind === 'handOver') {
          preemption.handingOver();
          handedOverAt.push(clock.now());
          held = undefined;
          released = { term: step.term, at: clock.now() };
        }
      }
    };
    preemption.on('due', evaluate);
    evaluate();
    // Ticks evaluate too (every 200 ms here): nothing happens before the hold-down is over,
    // and nothing after the handover.
    for (let i = 0; i < 5; i++) {
      clock.advance(200);
      evaluate();
    }
    expect(due()).to.equal(1);
    expect(handedOverAt.map((at) => at - joinedAt)).to.deep.equal([HOLD_MS + 10]);
  });
});
