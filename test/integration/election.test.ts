/**
 * The pool's promises, with members as real child processes on a real 3-member etcd cluster.
 * Failover figures are printed as "measured:" lines; the closing notes quote them.
 */
import { expect } from 'chai';
import { EtcdCluster } from '../support/etcdCluster.js';
import {
  eventually,
  expectUniqueTickets,
  TestPool,
  workLoop,
  grantLease,
} from '../support/pool.js';
import { freePorts } from '../../src/demo/ports.js';

describe('a pool on a real etcd cluster', function () {
  this.timeout(60_000);
  let etcd: EtcdCluster;
  let pool: TestPool | undefined;

  before(async () => {
    etcd = await EtcdCluster.start({ size: 3 });
  });

  after(async () => {
    await etcd?.close();
  });

  afterEach(async function () {
    if (this.currentTest?.state === 'failed' && pool) {
      for (const member of pool.members.values()) {
        console.log(
          `--- member ${member.id} ---\n${member.recentOutput().split('\n').slice(-30).join('\n')}`,
        );
      }
    }
    await pool?.close();
    pool = undefined;
  });

  it('three members agree on one leader, the oldest; /work on every member is performed by it', async () => {
    pool = new TestPool(etcd, { LEASE_TTL_SECONDS: '2' });
    await pool.start(['a', 'b', 'c']);
    expect(await pool.agreedLeader()).to.equal('a');

    const answers = await Promise.all(['a', 'b', 'c'].map((id) => pool!.work(id, { from: id })));
    for (const [i, answer] of answers.entries()) {
      const from = ['a', 'b', 'c'][i]!;
      expect(answer.status).to.equal(200);
      expect(answer.body.performedBy).to.equal('a');
      expect(answer.body.payload).to.deep.equal({ from });
      expect(answer.body.via).to.deep.equal(from === 'a' ? ['a'] : [from, 'a']);
    }
    expectUniqueTickets(answers);

    const view = await pool.view('c');
    expect(view.members.map((m) => m.id)).to.deep.equal(['a', 'b', 'c']);
    // `elect -l` observes forever: stop it once it has named the leader (key and value).
    const elect = await etcd.etcdctl(['elect', '-l', `${pool.prefix}/pools/default/members`], {
      until: (out) => out.split('\n').length > 2,
    });
    expect(elect.timedOut, elect.stderr).to.equal(false);
    const [key, value] = elect.stdout.trim().split('\n');
    expect(key).to.equal(view.leader?.memberKey);
    expect((JSON.parse(value!) as { id: string }).id).to.equal('a');
    // The README's one-shot form names the same key and ends by itself.
    const oldest = await etcd.etcdctl([
      'get',
      `${pool.prefix}/pools/default/members/`,
      '--prefix',
      '--sort-by=CREATE',
      '--order=ASCEND',
      '--limit=1',
    ]);
    expect(oldest.code, oldest.stderr).to.equal(0);
    expect(oldest.stdout.trim().split('\n')[0]).to.equal(view.leader?.memberKey);
  });

  it('a member turns ready only once it sees itself in the pool (its /pool lists it at its first 200 /readyz)', async () => {
    pool = new TestPool(etcd, { LEASE_TTL_SECONDS: '2' });
    const ids = ['a', 'b', 'c', 'd', 'e', 'f'];
    const missing: string[] = [];
    for (const id of ids) {
      const port = (await freePorts(1))[0]!;
      const starting = pool.startMember(id, port);
      // The first 200 from /readyz, caught as soon as it is given, then the member's /pool.
      const url = `http://127.0.0.1:${port}`;
      for (;;) {
        const ready = await fetch(`${url}/readyz`).then(
          (res) => res.status === 200,
          () => false,
        );
        if (ready) break;
      }
      const view = (await (await fetch(`${url}/pool`)).json()) as {
        members: { id: string }[];
      };
      if (!view.members.some((m) => m.id === id)) {
        missing.push(`${id} saw ${view.members.map((m) => m.id).join(',') || 'nobody'}`);
      }
      await starting;
    }
    expect(missing, 'members ready before seeing themselves').to.deep.equal([]);
  });

  it('the leader gets SIGTERM: a new leader serves /work within 1 s and a client looping on the others sees no error', async () => {
    pool = new TestPool(etcd, { LEASE_TTL_SECONDS: '5' });
    await pool.start(['a', 'b', 'c']);
    expect(await pool.agreedLeader()).to.equal('a');

    const loop = workLoop(pool, ['b', 'c']);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const signalledAt = Date.now();
    const exit = pool.member('a').stop();
    const first = await pool.firstWorkByNewLeader('b', 'a', 1000);
    const failoverMs = Date.now() - signalledAt;
    expect((await exit).code).to.equal(0);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const answers = await loop.stop();

    console.log(
      `      measured: graceful failover (SIGTERM to first /work by ${first.body.performedBy}) ${failoverMs} ms`,
    );
    expect(first.body.performedBy).to.equal('b');
    expect(failoverMs).to.be.below(1000);
    const failed = answers.filter((a) => a.status !== 200);
    expect(failed, JSON.stringify(failed.slice(0, 3))).to.have.length(0);
    expect(answers.length).to.be.greaterThan(10);
    expectUniqueTickets(answers);
    expect(await pool.agreedLeader()).to.equal('b');
  });

  it('the leader gets SIGKILL: a new leader serves /work within TTL + 1.5 s; no ticket repeats', async () => {
    const ttlSeconds = 2;
    pool = new TestPool(etcd, { LEASE_TTL_SECONDS: String(ttlSeconds) });
    await pool.start(['a', 'b', 'c']);
    expect(await pool.agreedLeader()).to.equal('a');
    const before = await Promise.all([pool.work('a'), pool.work('b'), pool.work('c')]);

    const killedAt = Date.now();
    await pool.member('a').kill();
    const first = await pool.firstWorkByNewLeader('c', 'a', ttlSeconds * 1000 + 1500);
    const failoverMs = Date.now() - killedAt;
    console.log(
      `      measured: crash failover at TTL ${ttlSeconds} s (SIGKILL to first /work) ${failoverMs} ms`,
    );
    expect(first.body.performedBy).to.equal('b');
    expect(failoverMs).to.be.below(ttlSeconds * 1000 + 1500);

    const after = await Promise.all([pool.work('b'), pool.work('c'), pool.work('c')]);
    const all = [...before, first, ...after];
    expectUniqueTickets(all);
    expect(Math.min(...after.map((a) => a.body.ticket!))).to.be.greaterThan(
      Math.max(...before.map((a) => a.body.ticket!)),
    );
    expect(first.body.term!).to.be.greaterThan(before[0].body.term!);
  });

  it('a SIGKILLed member restarted with the same MEMBER_ID takes over its old registration without waiting for the TTL', async () => {
    const ttlSeconds = 10;
    pool = new TestPool(etcd, { LEASE_TTL_SECONDS: String(ttlSeconds) });
    await pool.start(['a', 'b', 'c']);
    expect(await pool.agreedLeader()).to.equal('a');
    const oldKey = (await pool.view('a')).self.memberKey;
    const port = Number(new URL(pool.member('a').url).port);

    const killedAt = Date.now();
    await pool.member('a').kill();
    await pool.startMember('a', port);
    const leader = await pool.agreedLeader(ttlSeconds * 1000, { except: 'a' });
    const tookMs = Date.now() - killedAt;
    console.log(
      `      measured: restart takeover (SIGKILL, restart, new leader agreed) ${tookMs} ms at TTL ${ttlSeconds} s`,
    );
    expect(tookMs).to.be.below(ttlSeconds * 1000);
    expect(leader).to.equal('b');

    const view = await pool.view('c');
    expect(view.members.map((m) => m.id)).to.deep.equal(['b', 'c', 'a']);
    expect(view.members.map((m) => m.memberKey)).not.to.include(oldKey);
    expect((await pool.work('a')).body.performedBy).to.equal('b');
  });

  it('a leader frozen (SIGSTOP) past its TTL acts as leader no more on waking, rejoins as a follower, and still stops cleanly', async () => {
    const ttlSeconds = 2;
    pool = new TestPool(etcd, { LEASE_TTL_SECONDS: String(ttlSeconds) });
    await pool.start(['a', 'b', 'c']);
    expect(await pool.agreedLeader()).to.equal('a');
    const before = await pool.work('b');
    const a = pool.member('a');

    a.signal('SIGSTOP');
    // A client that gives up on the frozen member leaves a broken connection behind.
    await fetch(`${a.url}/readyz`, { signal: AbortSignal.timeout(200) }).catch(() => undefined);
    expect(await pool.agreedLeader(ttlSeconds * 1000 + 3000, { among: ['b', 'c'] })).to.equal('b');
    const during = await pool.work('c');
    expect(during.body.performedBy).to.equal('b');

    a.signal('SIGCONT');
    await eventually('a rejoins as a follower of b', async () => {
      const view = await pool!.view('a');
      return view.leader?.id === 'b' && !view.self.isLeader && view.self.ready;
    });
    const after = await pool.work('a');
    expect(after.body.performedBy).to.equal('b');
    expect(after.body.via).to.deep.equal(['a', 'b']);
    expect((await pool.view('b')).members.map((m) => m.id)).to.deep.equal(['b', 'c', 'a']);
    expectUniqueTickets([before, during, after]);

    const stoppedAt = Date.now();
    const exit = await a.stop();
    console.log(
      `      measured: SIGTERM after SIGSTOP/SIGCONT exits in ${Date.now() - stoppedAt} ms`,
    );
    expect(exit.code).to.equal(0);
  });

  it('a non-leader leaves and rejoins: leadership does not move and the rejoined member is youngest', async () => {
    pool = new TestPool(etcd, { LEASE_TTL_SECONDS: '2' });
    await pool.start(['a', 'b', 'c']);
    expect(await pool.agreedLeader()).to.equal('a');
    const term = (await pool.view('a')).term;

    await pool.member('b').stop();
    await pool.startMember('b');

    expect(await pool.agreedLeader()).to.equal('a');
    const view = await pool.view('b');
    expect(view.term).to.equal(term);
    expect(view.members.map((m) => m.id)).to.deep.equal(['a', 'c', 'b']);
    expect((await pool.work('b')).body.performedBy).to.equal('a');
  });

  it('an invalid value under the members prefix changes nothing and crashes nothing', async () => {
    pool = new TestPool(etcd, { LEASE_TTL_SECONDS: '2' });
    await pool.start(['a', 'b']);
    expect(await pool.agreedLeader()).to.equal('a');
    const before = await pool.view('b');

    const members = `${pool.prefix}/pools/default/members`;
    const lease = await grantLease(etcd, 60);
    for (const args of [
      ['put', `${members}/1`, 'not json at all'],
      [
        'put',
        `--lease=${lease.id}`,
        `${members}/${lease.keySuffix}`,
        JSON.stringify({ id: 'intruder', pool: 'default' }),
      ],
      ['put', `${pool.prefix}/pools/default/something-else`, '{}'],
    ]) {
      const put = await etcd.etcdctl(args);
      expect(put.code, put.stderr).to.equal(0);
    }
    await pool.seenByAll();

    expect(await pool.agreedLeader()).to.equal('a');
    const after = await pool.view('b');
    expect(after.members.map((m) => m.id)).to.deep.equal(['a', 'b']);
    expect(after.term).to.equal(before.term);
    expect((await pool.work('b')).body.performedBy).to.equal('a');
    for (const member of pool.running()) expect(member.running).to.equal(true);
    const metrics = await (await fetch(`${pool.member('a').url}/metrics`)).text();
    const counted = Object.fromEntries(
      [
        ...metrics.matchAll(
          /^service_pool_invalid_records_total\{pool="default",kind="(\w+)"\} (\d+)/gm,
        ),
      ].map((m): [string, number] => [m[1]!, Number(m[2])]),
    );
    // Every kind is there from the start (at 0), so a dashboard draws it before the first.
    expect(counted).to.deep.equal({
      claim: 0,
      member_key: 1,
      member_record: 1,
      foreign_key: 1,
      release_note: 0,
    });
  });
});

describe('a pool whose etcd cluster is stopped and restarted with its data', function () {
  this.timeout(90_000);
  let etcd: EtcdCluster;
  let pool: TestPool | undefined;

  before(async () => {
    etcd = await EtcdCluster.start({ size: 3 });
  });

  after(async () => {
    await pool?.close();
    await etcd?.close();
  });

  it('members become not-ready, then recover to exactly one leader', async () => {
    pool = new TestPool(etcd, {
      LEASE_TTL_SECONDS: '3',
      RECONCILE_INTERVAL_MS: '500',
      LEADERLESS_WAIT_MS: '1000',
    });
    await pool.start(['a', 'b', 'c']);
    expect(await pool.agreedLeader()).to.equal('a');
    const before = await pool.work('b');

    await etcd.stopAll();
    for (const member of pool.running()) {
      await eventually(
        `${member.id} turns not-ready without etcd`,
        async () => (await fetch(`${member.url}/readyz`)).status === 503,
      );
    }
    // The leader keeps acting only until its lease deadline (minus the margin) has passed.
    await eventually(
      'the leader stops acting as leader',
      async () => !(await pool!.view('a')).self.isLeader,
    );
    const during = await pool.work('b');
    expect(during.status).to.equal(503);
    expect(during.body.error?.code).to.equal('NO_LEADER');

    await etcd.startAll();
    for (const member of pool.running()) await member.waitReady(20_000);
    const leader = await pool.agreedLeader(20_000);
    const leaders = await Promise.all(
      pool.running().map(async (m) => (await pool!.view(m.id)).self.isLeader),
    );
    expect(leaders.filter(Boolean)).to.have.length(1);
    const after = await pool.work('c');
    expect(after.status).to.equal(200);
    expect(after.body.performedBy).to.equal(leader);
    expect(after.body.ticket!).to.be.greaterThan(before.body.ticket!);
  });
});
