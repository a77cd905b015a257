/**
 * The lease deadline (src/membership/lease.ts): etcd expires a lease TTL after the keep-alive
 * it last *received*, so the only safe deadline counts from when a keep-alive was *sent*. The
 * etcd calls are a stand-in and the clock is fake: these pin the rule, the integration tests
 * (leaseThread, leadership) prove it against etcd.
 */
import { EventEmitter } from 'node:events';
import { expect } from 'chai';
import { MemberLease, type LeaseCalls } from '../../src/membership/lease.js';
import { FakeClock } from '../support/fakeClock.js';

const TTL_S = 6;
const TTL_MS = TTL_S * 1000;
const CALL_TIMEOUT_MS = 1000;
const SAFETY_MARGIN_MS = 500;

/** One keep-alive stream: what was written on it; the test emits etcd's answers. */
class StandInStream extends EventEmitter {
  readonly written: { ID: string }[] = [];
  write(request: { ID: string }): void {
    this.written.push(request);
  }
  end(): void {}
  answer(ttlSeconds: number): void {
    this.emit('data', { TTL: String(ttlSeconds) });
  }
}

/** etcd's lease calls: grants take `grantTakesMs` of the fake clock; streams are recorded. */
class StandInLeases implements LeaseCalls {
  readonly streams: StandInStream[] = [];
  constructor(
    private readonly clock: FakeClock,
    private readonly grantTakesMs = 0,
  ) {}
  leaseClient = {
    leaseGrant: ({ TTL }: { TTL: number }) => {
      this.clock.advance(this.grantTakesMs);
      return Promise.resolve({ ID: '7587', TTL: String(TTL) });
    },
    leaseKeepAlive: () => {
      const stream = new StandInStream();
      this.streams.push(stream);
      return Promise.resolve(stream);
    },
    leaseRevoke: () => Promise.resolve({}),
  };
  get stream(): StandInStream {
    const stream = this.streams.at(-1);
    if (!stream) throw new Error('no keep-alive stream opened');
    return stream;
  }
}

/** Lets the lease open its stream and write (it does so a few promise turns later). */
const settle = () => new Promise((resolve) => setImmediate(resolve));

/** What the election asks before acting as leader (election.ts `isLeader`). */
const mayAct = (lease: MemberLease, now: number) =>
  lease.isAlive && now < lease.leaseDeadline - SAFETY_MARGIN_MS;

describe('Lease deadline: measured from when the keep-alive was sent', () => {
  const leases: MemberLease[] = [];
  afterEach(() => leases.splice(0).forEach((lease) => lease.abandon()));

  async function granted(clock: FakeClock, etcd: StandInLeases, callTimeoutMs = CALL_TIMEOUT_MS) {
    const lease = await MemberLease.grant(etcd, TTL_S, callTimeoutMs, clock.now);
    leases.push(lease);
    return lease;
  }

  /** A lease granted on a fake clock and, `sinceGrantMs` later, a keep-alive sent for it. */
  async function keepAliveSent(sinceGrantMs: number, callTimeoutMs = CALL_TIMEOUT_MS) {
    const clock = new FakeClock();
    const etcd = new StandInLeases(clock);
    const lease = await granted(clock, etcd, callTimeoutMs);
    const grantDeadline = lease.leaseDeadline;
    clock.advance(sinceGrantMs);
    const sentAt = clock.now();
    lease.keepAlive();
    await settle();
    return { clock, etcd, lease, sentAt, grantDeadline };
  }

  it('a grant answered 800 ms after it was sent lives until send + TTL', async () => {
    const clock = new FakeClock();
    const sentAt = clock.now();
    const lease = await granted(clock, new StandInLeases(clock, 800));
    expect(lease.leaseDeadline).to.equal(sentAt + TTL_MS);
    expect(lease.timeLeftMs()).to.equal(TTL_MS - 800);
  });

  it('a keep-alive answered 1.5 s late renews to its send time + TTL, not its answer + TTL', async () => {
    const { clock, etcd, lease, sentAt } = await keepAliveSent(2000);
    expect(etcd.stream.written).to.deep.equal([{ ID: '7587' }]);
    clock.advance(1500);
    const renewed: number[] = [];
    lease.on('renewed', (deadline) => renewed.push(deadline));
    etcd.stream.answer(TTL_S);
    expect(lease.leaseDeadline).to.equal(sentAt + TTL_MS);
    expect(renewed).to.deep.equal([sentAt + TTL_MS]);
    expect(lease.timeLeftMs()).to.equal(TTL_MS - 1500);
  });

  it('two keep-alives in flight: each answer renews from its own send time', async () => {
    const { clock, etcd, lease, sentAt: firstSentAt } = await keepAliveSent(1000);
    clock.advance(2000);
    const secondSentAt = clock.now();
    lease.keepAlive();
    clock.advance(3000);
    etcd.stream.answer(TTL_S);
    expect(lease.leaseDeadline).to.equal(firstSentAt + TTL_MS);
    etcd.stream.answer(TTL_S);
    expect(lease.leaseDeadline).to.equal(secondSentAt + TTL_MS);
  });

  it('an answer granting less time than already known does not shorten the deadline', async () => {
    const { etcd, lease, grantDeadline } = await keepAliveSent(1000);
    etcd.stream.answer(2);
    expect(lease.leaseDeadline).to.equal(grantDeadline);
  });

  it('an answer that arrives on a stream replaced for being slow still renews from its send', async () => {
    // The answer window is max(50 ms, min(call timeout, TTL/6)): 50 ms of real time here.
    const { clock, etcd, lease, sentAt } = await keepAliveSent(2000, 50);
    const slow = etcd.stream;
    clock.advance(1000);
    const failed = new Promise<Error>((resolve) => lease.once('keepAliveFailed', resolve));
    expect((await failed).message).to.equal('keep-alive unanswered for 1000 ms');
    await settle();
    expect(etcd.streams).to.have.length(2);
    clock.advance(500);
    slow.answer(TTL_S);
    expect(lease.leaseDeadline).to.equal(sentAt + TTL_MS);
  });

  it('with no answer, the leader may act until deadline − margin; then the check says expired', async () => {
    const { clock, lease, grantDeadline } = await keepAliveSent(0);
    clock.advance(TTL_MS - SAFETY_MARGIN_MS - 1);
    expect(mayAct(lease, clock.now())).to.equal(true);
    clock.advance(1);
    expect(mayAct(lease, clock.now())).to.equal(false);
    clock.advance(SAFETY_MARGIN_MS - 1);
    expect(lease.timeLeftMs()).to.equal(1);
    clock.advance(1);
    expect(clock.now()).to.equal(grantDeadline);
    expect(lease.timeLeftMs()).to.equal(0);
    clock.advance(60_000);
    expect(lease.timeLeftMs()).to.equal(0);
    // A passed deadline is not a lost lease: etcd may still extend it after regaining quorum.
    expect(lease.isAlive).to.equal(true);
  });

  it('etcd answering TTL 0 marks the lease lost: no time left, whatever the deadline', async () => {
    const { clock, etcd, lease } = await keepAliveSent(0);
    const lost: string[] = [];
    lease.on('lost', (reason) => lost.push(reason));
    etcd.stream.answer(0);
    expect(lost).to.deep.equal(['etcd reports the lease expired']);
    expect(lease.isAlive).to.equal(false);
    expect(lease.timeLeftMs()).to.equal(0);
    expect(mayAct(lease, clock.now())).to.equal(false);
  });
});
