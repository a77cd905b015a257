/**
 * The claim handed over in one etcd write (docs/design-choices.md, "Handoff in one write"), on
 * a real etcd. First the transaction itself (src/election/claimPursuit.ts, `handOff`): what it
 * writes in its one revision, and each guard that refuses it — the claim changed, the
 * successor's lease gone, the ticket mark moved. Then member processes: SIGTERM to the leader
 * and the successor leads under the revision of the leaver's transaction, with no claim of its
 * own and no ticket write before its first ticket; a successor whose watch lags the
 * follower's serves the follower's forward rather than refusing it; and a leaver whose
 * successor's lease was revoked just before falls back to deleting its claim.
 */
import http from 'node:http';
import { expect } from 'chai';
import { Etcd3, type IKeyValue } from 'etcd3';
import { pino } from 'pino';
import { ClaimPursuit, type Handoff } from '../../src/election/claimPursuit.js';
import type { Registered } from '../../src/membership/registration.js';
import { poolKeys, leaseIdHex } from '../../src/etcd/keys.js';
import type { MemberView } from '../../src/election/poolView.js';
import type { MemberProcess } from '../../src/demo/memberProcess.js';
import { freePorts } from '../../src/demo/ports.js';
import { EtcdCluster } from '../support/etcdCluster.js';
import { memberView } from '../support/memberView.js';
import {
  eventually,
  expectUniqueTickets,
  metricSample,
  TestPool,
  type WorkAnswer,
} from '../support/pool.js';
import { TcpProxy } from '../support/tcpProxy.js';

/** A pool whose member `lagging` reaches etcd through `proxy`, which can delay its watch. */
class LaggingPool extends TestPool {
  constructor(
    etcd: EtcdCluster,
    env: Record<string, string>,
    readonly proxy: TcpProxy,
    readonly lagging: string,
  ) {
    super(etcd, env);
  }

  override async startMember(id: string): Promise<MemberProcess> {
    if (id !== this.lagging) return super.startMember(id);
    return this.spawn(id, (await freePorts(1))[0]!, { ETCD_ENDPOINTS: this.proxy.url });
  }
}

describe('the claim handed over in one etcd write', function () {
  this.timeout(60_000);
  let etcd: EtcdCluster;
  let client: Etcd3;
  let pool: TestPool | undefined;
  let proxy: TcpProxy | undefined;

  before(async () => {
    etcd = await EtcdCluster.start({ size: 1 });
    client = new Etcd3({ hosts: etcd.endpoints });
  });

  after(async () => {
    await pool?.close();
    client?.close();
    await etcd?.close();
  });

  /**
   * A pool of a, b and c on this etcd, a leading, whose member `slow` reaches etcd through a
   * proxy (`proxy`, closed after the test) that the test slows down.
   */
  async function laggingPool(slow: string, env: Record<string, string> = {}) {
    proxy = await TcpProxy.start(etcd.endpoints[0]!);
    const lagging = new LaggingPool(etcd, { LEASE_TTL_SECONDS: '5', ...env }, proxy, slow);
    pool = lagging;
    await lagging.start(['a', 'b', 'c']);
    expect(await lagging.agreedLeader()).to.equal('a');
    return lagging;
  }

  afterEach(async function () {
    if (this.currentTest?.state === 'failed') {
      for (const member of pool?.members.values() ?? []) {
        console.log(
          `--- ${member.id} ---\n${member.recentOutput().split('\n').slice(-20).join('\n')}`,
        );
      }
    }
    await pool?.close();
    pool = undefined;
    await proxy?.close();
    proxy = undefined;
  });

  const get = async (key: string): Promise<IKeyValue | undefined> =>
    (await client.get(key).exec()).kvs[0];

  describe('the transaction', () => {
    const keys = poolKeys(`/handoff-txn-${process.pid}`, 'default');
    let pursuit: ClaimPursuit;
    before(() => {
      pursuit = new ClaimPursuit(client, {
        keys,
        memberId: 'a',
        logger: pino({ level: 'silent' }),
      });
    });

    /** a holds the claim under a lease of its own; b is registered under another. */
    async function leaderAndSuccessor(): Promise<{ term: bigint; b: MemberView; aKey: string }> {
      await client.delete().prefix(keys.pool).exec();
      const aLease = client.lease(30, { autoKeepAlive: false });
      const bLease = client.lease(30, { autoKeepAlive: false });
      const [aId, bId] = await Promise.all([aLease.grant(), bLease.grant()]);
      const aKey = keys.member(aId);
      const bRecord = memberView('b', 0n).record;
      await client
        .put(aKey)
        .value(JSON.stringify(memberView('a', 0n).record))
        .lease(aId)
        .exec();
      const bPut = await client.put(keys.member(bId)).value(JSON.stringify(bRecord)).lease(bId);
      const claimed = await client
        .put(keys.leader)
        .value(JSON.stringify({ memberKey: aKey, id: 'a', url: 'http://a:1', claimedAt: now() }))
        .lease(aId);
      await client.put(keys.ticketHighWater).value('40').exec();
      const b = {
        ...memberView('b', BigInt(bPut.header.revision)),
        key: keys.member(bId),
        leaseId: bId,
      };
      return { term: BigInt(claimed.header.revision), b, aKey };
    }

    async function mark() {
      const kv = (await get(keys.ticketHighWater))!;
      return { value: BigInt(kv.value.toString()), modRevision: BigInt(kv.mod_revision) };
    }

    it('one revision: the claim names the successor under its lease and carries a ticket block; the note, the leaver’s key and the mark go with it', async () => {
      const { term, b, aKey } = await leaderAndSuccessor();
      const tickets = { mark: await mark(), floor: 0n, size: 100 };
      const handoff: Handoff = { term, successor: b, reason: 'stop', leaving: aKey, tickets };
      expect(await pursuit.handOff(handoff)).to.equal('handed');
      const claim = (await get(keys.leader))!;
      const revision = claim.mod_revision;
      expect(claim.lease).to.equal(b.leaseId);
      expect(claim.version, 'rewritten, never deleted').to.equal('2');
      expect(JSON.parse(claim.value.toString())).to.deep.include({
        memberKey: b.key,
        id: 'b',
        handedBy: 'a',
        tickets: { first: '41', last: '140' },
      });
      const note = (await get(keys.released))!;
      expect(note.mod_revision).to.equal(revision);
      expect(JSON.parse(note.value.toString())).to.deep.include({
        term: term.toString(),
        id: 'a',
        reason: 'stop',
      });
      expect((await get(keys.ticketHighWater))?.mod_revision).to.equal(revision);
      expect((await mark()).value).to.equal(140n);
      expect(await get(aKey), 'the leaver’s member key').to.equal(undefined);
    });

    it('the rehearsal at registration sends a transaction of the same shape that writes nothing, whatever the pool holds', async () => {
      const { b } = await leaderAndSuccessor();
      const registered = {
        memberKey: b.key,
        createRevision: b.createRevision,
        lease: { id: b.leaseId },
      } as unknown as Registered;
      const revision = async () => (await client.get(keys.pool).exec()).header.revision;
      const self = { id: 'b', url: 'http://b:1' };
      const held = await revision();
      await pursuit.rehearseHandOff(registered, self);
      expect(await revision(), 'no revision passed (a claim held)').to.equal(held);
      // With no claim and no ticket mark every other guard holds (absent keys read as
      // revision 0, the rehearsal's term): only the rehearsal's own guard keeps it from
      // writing.
      await client.delete().key(keys.leader).exec();
      await client.delete().key(keys.ticketHighWater).exec();
      const kept = await client.getAll().prefix(keys.pool).keys();
      const unclaimed = await revision();
      await pursuit.rehearseHandOff(registered, self);
      expect(await revision(), 'no revision passed (no claim)').to.equal(unclaimed);
      expect(await client.getAll().prefix(keys.pool).keys(), 'nothing written').to.deep.equal(kept);
    });

    it('refused, writing nothing, when the claim changed, the successor’s lease is gone or the mark moved', async () => {
      const refusedWith = async (change: (successor: MemberView) => unknown) => {
        const { term, b, aKey } = await leaderAndSuccessor();
        const tickets = { mark: await mark(), floor: 0n, size: 100 };
        await change(b);
        const before = (await client.get(keys.pool).exec()).header.revision;
        const handoff: Handoff = { term, successor: b, reason: 'resign', leaving: aKey, tickets };
        const outcome = await pursuit.handOff(handoff);
        const after = (await client.get(keys.pool).exec()).header.revision;
        return { outcome, wrote: before !== after };
      };
      const claimChanged = await refusedWith(() => client.put(keys.leader).value('{}').exec());
      const successorGone = await refusedWith(async (b) => {
        const revoke = await etcd.etcdctl(['lease', 'revoke', leaseIdHex(b.leaseId)]);
        expect(revoke.code, revoke.stderr).to.equal(0);
      });
      const markMoved = await refusedWith(() =>
        client.put(keys.ticketHighWater).value('45').exec(),
      );
      for (const refused of [claimChanged, successorGone, markMoved]) {
        expect(refused).to.deep.equal({ outcome: 'refused', wrote: false });
      }
    });
  });

  describe('member processes', () => {
    it('SIGTERM to the leader: the successor leads under the revision of the leaver’s transaction, claims nothing itself, and its first ticket needs no write; no ticket repeats', async () => {
      pool = new TestPool(etcd, { LEASE_TTL_SECONDS: '5', TICKET_BLOCK_SIZE: '50' });
      await pool.start(['a', 'b', 'c']);
      expect(await pool.agreedLeader()).to.equal('a');
      const keys = poolKeys(pool.prefix, 'default');
      const answers: WorkAnswer[] = [];
      for (let i = 0; i < 5; i++) answers.push(await pool.work('c'));
      const before = (await get(keys.leader))!;

      expect((await pool.member('a').stop()).code).to.equal(0);
      expect(await pool.agreedLeader()).to.equal('b');
      const term = (await pool.view('c')).leader!.term;
      const claim = (await get(keys.leader))!;
      expect(claim.mod_revision, 'the term is the handoff’s revision').to.equal(String(term));
      expect(claim.create_revision, 'the claim was never deleted').to.equal(before.create_revision);
      expect(claim.version, 'no claim of the successor’s own').to.equal(
        String(Number(before.version) + 1),
      );
      expect(JSON.parse(claim.value.toString())).to.include({ id: 'b', handedBy: 'a' });
      const note = JSON.parse((await get(keys.released))!.value.toString()) as { reason: string };
      expect(note.reason).to.equal('stop');
      expect((await get(keys.ticketHighWater))!.mod_revision).to.equal(String(term));

      const first = await pool.work('c');
      expect(first.body).to.include({ performedBy: 'b', term });
      const carried = (JSON.parse(claim.value.toString()) as { tickets: { first: string } })
        .tickets;
      expect(first.body.ticket, 'the first ticket of the carried block').to.equal(
        Number(carried.first),
      );
      expect(
        (await get(keys.ticketHighWater))!.mod_revision,
        'the first ticket wrote nothing',
      ).to.equal(String(term));
      answers.push(first);
      for (let i = 0; i < 5; i++) answers.push(await pool.work('b'));
      expectUniqueTickets(answers);
      const tickets = answers.map((answer) => answer.body.ticket!);
      expect(tickets, 'increasing across the handover').to.deep.equal(
        [...tickets].sort((x, y) => x - y),
      );
      await eventually('c names the cause', async () => {
        return (await pool!.view('c')).timeline.at(-1)?.cause === 'stop';
      });
    });

    it('the successor’s watch 200 ms behind the follower’s: the follower’s call waits at the successor and is served by it, never refused', async () => {
      const lagging = await laggingPool('b');
      expect((await lagging.work('c')).body.performedBy).to.equal('a');
      const refused = () =>
        metricSample(
          lagging.member('c').url,
          'service_pool_forward_retries_total',
          'pool="default",reason="not_leader"',
        );
      // From now on b hears from etcd 200 ms after a and c do (its lease renewals too: well
      // within the 5 s TTL).
      lagging.proxy.delayMs = 200;
      const stopped = lagging.member('a').stop();
      await eventually('c sees the claim handed to b', async () => {
        return (await lagging.view('c')).leader?.id === 'b';
      });
      const before = await refused();
      const answer = await lagging.work('c');
      expect(answer.status).to.equal(200);
      expect(answer.body.performedBy).to.equal('b');
      // Refused, c would have waited out its retry backoff (25 ms, 50, 100…) for a view
      // change it had already seen.
      expect((await refused()) - before, 'forwards b answered "not leader"').to.equal(0);
      expect((await stopped).code).to.equal(0);
    });

    it('the follower’s watch 200 ms behind: its call is sent to the successor the leaver names and served there before the follower’s view shows the handoff', async () => {
      const lagging = await laggingPool('c');
      expect((await lagging.work('c')).body.performedBy).to.equal('a');
      const leaver = lagging.member('a');
      // From now on c hears from etcd 200 ms after a and b do.
      lagging.proxy.delayMs = 200;
      const stopped = leaver.stop();
      await eventually('a is shutting down', async () => {
        return (await fetch(`${leaver.url}/readyz`)).status === 503;
      });
      const answer = await lagging.work('c');
      const view = await lagging.view('c');
      expect(answer.status).to.equal(200);
      expect(answer.body.performedBy).to.equal('b');
      // Waiting for its own watch, c could have sent the call to b only once it showed b.
      expect(view.leader?.id, 'the leader in c’s view when the call was answered').to.equal('a');
      expect((await stopped).code).to.equal(0);
    });

    it('a forward naming the leaver’s term during its handoff: answered "not leader" at once, naming the successor, not held until its own watch shows the handoff', async () => {
      const lagging = await laggingPool('a');
      const keys = poolKeys(lagging.prefix, 'default');
      const term = (await lagging.view('a')).leader!.term;
      const leaver = lagging.member('a');
      // From now on a's handoff reaches etcd 200 ms after it is sent, and its watch shows it
      // 200 ms after that.
      lagging.proxy.delayMs = 200;
      const stopped = leaver.stop();
      await eventually('a is shutting down', async () => {
        return (await fetch(`${leaver.url}/readyz`)).status === 503;
      });
      // What follower c sends when its call for a meets a's shutdown.
      // node:http, sent once (fetch would send a 421's request again on a new connection).
      const answer = await forwardOnce(leaver.url, term);
      const claim = JSON.parse((await get(keys.leader))!.value.toString()) as { id: string };
      expect(answer.status).to.equal(421);
      const { error } = JSON.parse(answer.body) as {
        error: { code: string; details?: { successor?: { id: string; url: string } } };
      };
      expect(error.code).to.equal('NOT_LEADER');
      expect(error.details?.successor, 'the member it hands its claim to').to.deep.equal({
        id: 'b',
        url: lagging.member('b').url,
      });
      // Held as if about to lead under its own claim, a would have answered only once its
      // handoff had committed and its watch had shown it.
      expect(claim.id, 'the claim when a answered').to.equal('a');
      expect((await stopped).code).to.equal(0);
    });

    it('a forward naming the term a resigning leader hands over: answered "not leader" at once, naming the successor', async () => {
      const adminToken = 'handoff-test-admin';
      const lagging = await laggingPool('a', { ADMIN_TOKEN: adminToken });
      const keys = poolKeys(lagging.prefix, 'default');
      const resigner = lagging.member('a');
      const term = (await lagging.view('a')).leader!.term;
      lagging.proxy.delayMs = 200;
      const resigned = fetch(`${resigner.url}/resign`, {
        method: 'POST',
        headers: { authorization: `Bearer ${adminToken}` },
      });
      await eventually('a stopped leading', async () => {
        return (await lagging.view('a')).self.isLeader === false;
      });
      const answer = await forwardOnce(resigner.url, term);
      const claim = JSON.parse((await get(keys.leader))!.value.toString()) as { id: string };
      expect(answer.status).to.equal(421);
      const { error } = JSON.parse(answer.body) as {
        error: { details?: { successor?: { id: string } } };
      };
      expect(error.details?.successor?.id, 'the member it hands its claim to').to.equal('b');
      // Its registration detached, its claim reads as another member's in its own view; held
      // as one about to be handed to it, the forward would be answered only after the handoff.
      expect(claim.id, 'the claim when a answered').to.equal('a');
      expect((await resigned).status).to.equal(200);
    });

    it('the successor’s lease revoked just before the SIGTERM: the leaver deletes its claim instead, with its note, and the pool elects anew', async () => {
      pool = new TestPool(etcd, { LEASE_TTL_SECONDS: '5' });
      await pool.start(['a']);
      expect(await pool.agreedLeader()).to.equal('a');
      const keys = poolKeys(pool.prefix, 'default');
      // The successor: a member registered under a lease of the test's, which cannot register
      // again when its lease goes, so the fallback is all that can happen.
      const lease = client.lease(30, { autoKeepAlive: false });
      const leaseId = await lease.grant();
      const record = { ...memberView('b', 0n).record, url: 'http://127.0.0.1:9' };
      await client.put(keys.member(leaseId)).value(JSON.stringify(record)).lease(leaseId).exec();
      await eventually('a sees b', async () => (await pool!.view('a')).members.length === 2);
      const aTerm = (await pool.view('a')).leader!.term;
      const revoke = await etcd.etcdctl(['lease', 'revoke', leaseIdHex(leaseId)]);
      expect(revoke.code, revoke.stderr).to.equal(0);
      expect((await pool.member('a').stop()).code).to.equal(0);
      expect(await get(keys.leader), 'the claim deleted, not handed').to.equal(undefined);
      const note = JSON.parse((await get(keys.released))!.value.toString()) as {
        term: string;
        reason: string;
      };
      expect(note).to.include({ term: String(aTerm), reason: 'stop' });
      await pool.startMember('c');
      expect(await pool.agreedLeader()).to.equal('c');
      expect((await get(keys.leader))!.version, 'a claim of its own').to.equal('1');
    });
  });
});

const now = () => new Date().toISOString();

/** One forward as follower c sends it, naming `term`, to `url`'s pool route: status and body. */
function forwardOnce(
  url: string,
  term: number | bigint,
): Promise<{ status: number; body: string }> {
  const body = JSON.stringify({ payload: 1 });
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${url}/pools/default/work`,
      {
        method: 'POST',
        agent: false,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          'x-pool-hops': '1',
          'x-pool-term': String(term),
          'x-pool-via': 'c',
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}
