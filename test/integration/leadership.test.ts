/**
 * Leadership as callbacks, on a real etcd: every way a term can end aborts its signal with
 * the reason, and a follower hears of every new leader. Then the waits, the fencing and the
 * events of the `Election` a member hands out. Members run in this process
 * (`PoolMember.start`); the one that must lose etcd talks to it through a TCP proxy.
 */
import { expect } from 'chai';
import { pino } from 'pino';
import { loadConfig } from '../../src/config/config.js';
import type { LeaderInfo } from '../../src/election/leaderLog.js';
import { isLeadershipEnded, LeadershipEndedError } from '../../src/election/leadershipEnd.js';
import { isPoolError } from '../../src/errors.js';
import { PoolMember } from '../../src/member.js';
import { freePorts } from '../../src/demo/ports.js';
import { monotonicNow } from '../../src/util/time.js';
import { EtcdCluster } from '../support/etcdCluster.js';
import { TcpProxy } from '../support/tcpProxy.js';

/** What one member's callbacks reported, with promises for the next of each. */
class Recorder {
  readonly started: { term: bigint; signal: AbortSignal }[] = [];
  readonly stopped: { term: bigint; reason: LeadershipEndedError }[] = [];
  readonly leaders: (LeaderInfo | undefined)[] = [];
  private waiters: { ready: () => boolean; resolve: () => void }[] = [];

  readonly callbacks = {
    onStartedLeading: (term: bigint, signal: AbortSignal) =>
      this.record(() => this.started.push({ term, signal })),
    onStoppedLeading: (term: bigint, reason: LeadershipEndedError) =>
      this.record(() => this.stopped.push({ term, reason })),
    onNewLeader: (leader: LeaderInfo | undefined) => this.record(() => this.leaders.push(leader)),
  };

  /** Resolves once `ready()` holds, checked on every callback. */
  until(ready: () => boolean, timeoutMs = 15_000): Promise<void> {
    if (ready()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('callbacks not seen in time')), timeoutMs);
      this.waiters.push({
        ready,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }

  /** The reason the first term's signal aborted with, once it has. */
  async firstTermEnded(): Promise<LeadershipEndedError> {
    await this.until(() => this.started.length > 0);
    const { signal } = this.started[0]!;
    if (!signal.aborted) {
      await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
    }
    return signal.reason as LeadershipEndedError;
  }

  /** The ids of the leaders seen, in order, the leaderless moments left out. */
  get leaderIds(): string[] {
    return this.leaders.flatMap((leader) => (leader ? [leader.id] : []));
  }

  private record(add: () => void): void {
    add();
    this.waiters = this.waiters.filter((waiter) => {
      if (!waiter.ready()) return true;
      waiter.resolve();
      return false;
    });
  }
}

describe('leadership callbacks', function () {
  this.timeout(60_000);
  let etcd: EtcdCluster;
  let proxy: TcpProxy;
  let prefix: string;
  const members: PoolMember[] = [];

  before(async () => {
    etcd = await EtcdCluster.start({ size: 1 });
    proxy = await TcpProxy.start(etcd.endpoints[0]!);
  });

  after(async () => {
    await proxy?.close();
    await etcd?.close();
  });

  beforeEach(() => {
    prefix = `/leadership-${Date.now()}-${Math.random().toString(16).slice(2)}`;
  });

  afterEach(async () => {
    proxy.heal();
    await Promise.all(members.splice(0).map((member) => member.shutdown()));
  });

  /** Starts member `id` in this process; `viaProxy`: its etcd traffic passes the proxy. */
  async function startMember(
    id: string,
    recorder: Recorder,
    options: { viaProxy?: boolean; env?: Record<string, string> } = {},
  ): Promise<PoolMember> {
    const [port] = await freePorts(1);
    const config = loadConfig({
      MEMBER_ID: id,
      PORT: String(port),
      HOST: '127.0.0.1',
      ADVERTISE_URL: `http://127.0.0.1:${port}`,
      ETCD_ENDPOINTS: options.viaProxy ? proxy.url : etcd.endpoints.join(','),
      ETCD_PREFIX: prefix,
      LEASE_TTL_SECONDS: '2',
      LEASE_SAFETY_MARGIN_MS: '300',
      ETCD_CALL_TIMEOUT_MS: '500',
      SHUTDOWN_TIMEOUT_MS: '3000',
      SHUTDOWN_LINGER_MS: '0',
      ADMIN_TOKEN: 'admin-secret-of-the-test',
      ...options.env,
    });
    const member = await PoolMember.start({ config, logger: pino({ level: 'silent' }) });
    members.push(member);
    member.leadership(recorder.callbacks);
    return member;
  }

  /** Resolves once `member` is ready: registered, its own key in its view of the pool. */
  function ready(member: PoolMember): Promise<void> {
    return new Promise((resolve) => {
      const check = () => {
        if (!member.isReady()) return;
        member.election.off('change', check);
        resolve();
      };
      member.election.on('change', check);
      check();
    });
  }

  /**
   * a leads, b follows: both have seen a as leader, and b is registered — b's view can name
   * the leader before b's own key is in etcd, and until it is, a is still the oldest member.
   */
  async function leaderAndFollower(aOptions: { viaProxy?: boolean } = {}) {
    const a = new Recorder();
    const aMember = await startMember('a', a, aOptions);
    await a.until(() => a.started.length === 1);
    const b = new Recorder();
    const bMember = await startMember('b', b);
    await b.until(() => b.leaderIds.includes('a'));
    await ready(bMember);
    return { a, aMember, b, bMember };
  }

  it('shutdown (SIGTERM): the leader’s signal aborts with "shutdown", then onStoppedLeading; the follower hears of a, then of itself, and starts leading', async () => {
    const { a, aMember, b } = await leaderAndFollower();
    const term = a.started[0]!.term;
    const shutdown = aMember.shutdown();
    const reason = await a.firstTermEnded();
    expect(reason).to.be.instanceOf(LeadershipEndedError);
    expect(reason).to.include({ reason: 'shutdown', term });
    await shutdown;
    expect(a.stopped.map((s) => [s.term, s.reason.reason])).to.deep.equal([[term, 'shutdown']]);
    await b.until(() => b.started.length === 1 && b.leaderIds.at(-1) === 'b');
    expect(b.leaderIds).to.deep.equal(['a', 'b']);
    expect(b.leaders.at(-1)).to.include({ id: 'b', self: true, term: b.started[0]!.term });
    expect(b.started[0]!.term > term).to.equal(true);
  });

  it('resign: the signal aborts with "resigned"; the follower takes over and hears of it', async () => {
    const { a, aMember, b } = await leaderAndFollower();
    expect(await aMember.election.resign()).to.equal(true);
    expect((await a.firstTermEnded()).reason).to.equal('resigned');
    expect(a.stopped).to.have.length(1);
    await b.until(() => b.started.length === 1 && b.leaderIds.at(-1) === 'b');
    await a.until(() => a.leaderIds.at(-1) === 'b');
    expect(b.leaderIds).to.deep.equal(['a', 'b']);
  });

  it('preemption: a heavier member joins; after the hold-down the leader’s signal aborts with "handed over", then onStoppedLeading; the newcomer starts leading under a larger term', async () => {
    const env = { ELECTION_STRATEGY: 'weighted', PREEMPT_AFTER_MS: '200' };
    const a = new Recorder();
    await startMember('a', a, { env: { ...env, WEIGHT: '1' } });
    await a.until(() => a.started.length === 1);
    const term = a.started[0]!.term;
    const b = new Recorder();
    await startMember('b', b, { env: { ...env, WEIGHT: '8' } });
    const reason = await a.firstTermEnded();
    expect(reason).to.be.instanceOf(LeadershipEndedError);
    expect(isLeadershipEnded(reason)).to.equal(true);
    expect(reason).to.include({ reason: 'handed over', term });
    expect(a.stopped.map((s) => [s.term, s.reason.reason])).to.deep.equal([[term, 'handed over']]);
    await b.until(() => b.started.length === 1);
    expect(b.started[0]!.term > term).to.equal(true);
    await a.until(() => a.leaderIds.at(-1) === 'b');
    expect(a.leaders.at(-1)).to.include({ id: 'b', self: false, term: b.started[0]!.term });
    expect(a.started, 'a does not take it back').to.have.length(1);
  });

  it('the lease revoked in etcd (etcdctl lease revoke): the signal aborts with "claim lost"; the follower claims', async () => {
    const { a, aMember, b } = await leaderAndFollower();
    const leaseHex = aMember.election.leader()!.memberKey.split('/').at(-1)!;
    const revoke = await etcd.etcdctl(['lease', 'revoke', leaseHex]);
    expect(revoke.code, revoke.stderr).to.equal(0);
    expect((await a.firstTermEnded()).reason).to.equal('claim lost');
    await b.until(() => b.started.length === 1 && b.leaderIds.at(-1) === 'b');
    expect(b.leaderIds).to.deep.equal(['a', 'b']);
  });

  it('unsubscribing during a term aborts its signal with "unsubscribed"; leadership and other watchers go on', async () => {
    const a = new Recorder();
    const aMember = await startMember('a', a);
    await a.until(() => a.started.length === 1);
    const second = new Recorder();
    const unsubscribe = aMember.leadership(second.callbacks);
    expect(second.started.map((s) => s.term)).to.deep.equal([a.started[0]!.term]);
    unsubscribe();
    expect((await second.firstTermEnded()).reason).to.equal('unsubscribed');
    expect(second.stopped).to.have.length(1);
    expect(aMember.election.isLeader()).to.equal(true);
    expect(a.started[0]!.signal.aborted).to.equal(false);
  });

  it('a callback that throws disturbs neither the election nor the callbacks after it', async () => {
    const a = new Recorder();
    const aMember = await startMember('a', a);
    await a.until(() => a.started.length === 1);
    const throwing = new Recorder();
    const unsubscribe = aMember.leadership({
      ...throwing.callbacks,
      onNewLeader: () => {
        throw new Error('a bug in the callback');
      },
    });
    expect(throwing.started.map((s) => s.term)).to.deep.equal([a.started[0]!.term]);
    unsubscribe();
    expect(aMember.election.isLeader()).to.equal(true);
  });

  it('etcd cut off: the signal aborts with "deadline" at the lease deadline minus the margin, with no event from etcd', async () => {
    const { a, aMember, b } = await leaderAndFollower({ viaProxy: true });
    proxy.cut('blackhole');
    const cutAt = monotonicNow();
    const leftMs = aMember.election.leadershipTimeLeftMs();
    const reason = await a.firstTermEnded();
    const endedAfterMs = monotonicNow() - cutAt;
    expect(reason.reason).to.equal('deadline');
    expect(aMember.election.isLeader()).to.equal(false);
    // The promise: not before the deadline, and before the lease's own deadline (the margin,
    // LEASE_SAFETY_MARGIN_MS 300, later), after which etcd may let another member claim. How
    // close to the deadline it came is a figure: a loaded machine delays any timer.
    expect(endedAfterMs).to.be.within(leftMs - 20, leftMs + 300);
    console.log(
      `      measured: signal aborted ${Math.round(endedAfterMs - leftMs)} ms after the deadline`,
    );
    await b.until(() => b.started.length === 1 && b.leaderIds.at(-1) === 'b');
    expect(b.leaderIds).to.deep.equal(['a', 'b']);
  });

  it('POST /resign while etcd is cut off answers 503 ETCD_UNAVAILABLE within the bound, and the term ends with "resigned"', async () => {
    const a = new Recorder();
    // A long lease, so that a stays leader while the resign waits for etcd.
    const aMember = await startMember('a', a, { viaProxy: true, env: { LEASE_TTL_SECONDS: '10' } });
    await a.until(() => a.started.length === 1);
    proxy.cut('blackhole');
    const boundMs = aMember.election.resignBoundMs;
    expect(boundMs).to.equal(1500);
    const sentAt = monotonicNow();
    const answer = await fetch(`http://127.0.0.1:${aMember.port}/resign`, {
      method: 'POST',
      headers: { authorization: 'Bearer admin-secret-of-the-test' },
      signal: AbortSignal.timeout(boundMs * 4),
    });
    const tookMs = monotonicNow() - sentAt;
    expect(answer.status).to.equal(503);
    const body = (await answer.json()) as { error: { code: string; message: string } };
    expect(body.error.code).to.equal('ETCD_UNAVAILABLE');
    expect(body.error.message).to.include('did not confirm the resign within 1500 ms');
    expect(body.error.message).to.include('in the background');
    expect(tookMs).to.be.within(boundMs - 50, boundMs + 500);
    expect((await a.firstTermEnded()).reason).to.equal('resigned');
    expect(aMember.election.isLeader()).to.equal(false);
  });

  it("the Election's waits: a member's wait for leadership resolves with its term, a follower's wait for a leader names it; an aborted wait rejects with the signal's reason; after a failover an old term's fenced write does not commit", async () => {
    const a = new Recorder();
    const aMember = await startMember('a', a);
    const aTerm = await aMember.election.waitForLeadership(AbortSignal.timeout(15_000));
    expect(aTerm).to.equal(aMember.election.term);
    await a.until(() => a.started.length === 1);
    expect(a.started[0]!.term).to.equal(aTerm);
    expect(aMember.electionOf('default')).to.equal(aMember.election);
    expect(() => aMember.electionOf('other')).to.throw('this member is in no pool named other');

    const b = new Recorder();
    const bMember = await startMember('b', b);
    const leader = await bMember.election.waitForLeader(AbortSignal.timeout(15_000));
    expect(leader).to.include({ id: 'a', term: aTerm, self: false });
    const controller = new AbortController();
    const waiting = bMember.election.waitForLeadership(controller.signal);
    const reason = new Error('the caller gave up');
    controller.abort(reason);
    expect(
      await waiting.then(
        () => 'resolved',
        (error: unknown) => error,
      ),
    ).to.equal(reason);

    // The typed event: b hears of itself as the new leader (a few milliseconds after it
    // starts leading: the watch event of its own claim).
    const bNamed = new Promise<LeaderInfo>((resolve) => {
      const onLeaderChanged = (leader: LeaderInfo | undefined) => {
        if (leader?.id !== 'b') return;
        bMember.election.off('leaderChanged', onLeaderChanged);
        resolve(leader);
      };
      bMember.election.on('leaderChanged', onLeaderChanged);
    });
    const bLeads = bMember.election.waitForLeadership(AbortSignal.timeout(15_000));
    await aMember.shutdown();
    const bTerm = await bLeads;
    expect(bTerm > aTerm).to.equal(true);
    expect(await bNamed).to.include({ id: 'b', term: bTerm, self: true });
    const write = (term: bigint) =>
      bMember.election.fenced(term).then(bMember.etcd.put(`${prefix}/fenced`).value(String(term)));
    expect((await write(aTerm).commit()).succeeded).to.equal(false);
    expect((await write(bTerm).commit()).succeeded).to.equal(true);
  });

  it('a wait for leadership on a member that may not lead ends with SHUTTING_DOWN when the member shuts down', async () => {
    const a = new Recorder();
    await startMember('a', a);
    await a.until(() => a.started.length === 1);
    const edge = await startMember('edge', new Recorder(), { env: { CANDIDATE: 'false' } });
    const waiting = edge.election.waitForLeadership(new AbortController().signal).then(
      () => undefined,
      (rejected: unknown) => rejected,
    );
    await edge.shutdown();
    const error = await waiting;
    expect(isPoolError(error) && error.code).to.equal('SHUTTING_DOWN');
  });
});
