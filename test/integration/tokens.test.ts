/**
 * Shared secrets between members (FORWARD_TOKEN) and for the admin routes (ADMIN_TOKEN), with
 * real member processes on a real etcd.
 */
import { expect } from 'chai';
import { EtcdCluster } from '../support/etcdCluster.js';
import { eventually, TestPool } from '../support/pool.js';

const FORWARD_TOKEN = 'forward-secret-0123456789';
const ADMIN_TOKEN = 'admin-secret-0123456789abc';

describe('forward and admin tokens', function () {
  this.timeout(60_000);
  let etcd: EtcdCluster;
  let pool: TestPool;

  before(async () => {
    etcd = await EtcdCluster.start({ size: 1 });
    pool = new TestPool(etcd, { LEASE_TTL_SECONDS: '2', FORWARD_TOKEN, ADMIN_TOKEN });
    await pool.start(['a', 'b']);
    expect(await pool.agreedLeader()).to.equal('a');
  });

  after(async () => {
    await pool?.close();
    await etcd?.close();
  });

  async function forge(token?: string) {
    const res = await fetch(`${pool.member('a').url}/work`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-pool-hops': '1',
        'x-pool-via': 'b',
        ...(token ? { 'x-pool-token': token } : {}),
      },
      body: JSON.stringify({ payload: 'forged' }),
    });
    return { status: res.status, body: (await res.json()) as { error?: { code: string } } };
  }

  it('members that share the token forward to each other', async () => {
    const answer = await pool.work('b', 'hello');
    expect(answer.status).to.equal(200);
    expect(answer.body.via).to.deep.equal(['b', 'a']);
  });

  it('a forward without the token, or with a wrong one, is refused with 401 and counted', async () => {
    for (const token of [undefined, 'wrong-token-0123456789']) {
      const answer = await forge(token);
      expect(answer.status).to.equal(401);
      expect(answer.body.error?.code).to.equal('UNAUTHORIZED');
    }
    const metrics = await (await fetch(`${pool.member('a').url}/metrics`)).text();
    expect(metrics).to.include('service_pool_forwards_refused_total{pool="default"} 2');
  });

  it('resign needs the admin bearer token; on a follower it changes nothing', async () => {
    const resign = (id: string, token?: string) =>
      fetch(`${pool.member(id).url}/pools/default/resign`, {
        method: 'POST',
        headers: token ? { authorization: `Bearer ${token}` } : {},
      });
    expect((await resign('a')).status).to.equal(401);
    expect((await resign('a', 'not-the-admin-token-000')).status).to.equal(401);
    const onFollower = await resign('b', ADMIN_TOKEN);
    expect(onFollower.status).to.equal(200);
    expect(await onFollower.json()).to.include({ resigned: false });
    expect(await pool.agreedLeader()).to.equal('a');
  });

  it('the leader resigns: the next member leads at once and the old one rejoins as the youngest', async () => {
    const res = await fetch(`${pool.member('a').url}/resign`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    expect(res.status).to.equal(200);
    expect(await res.json()).to.include({ resigned: true, previousLeader: 'a' });
    await eventually(
      'b leads and a rejoined last',
      async () => {
        const view = await pool.view('a');
        return view.leader?.id === 'b' && view.members.map((m) => m.id).join() === 'b,a';
      },
      3000,
    );
    expect((await pool.work('a')).body.performedBy).to.equal('b');
  });

  it('no secret reaches the logs', () => {
    for (const member of pool.members.values()) {
      const output = member.recentOutput();
      expect(output).not.to.include(FORWARD_TOKEN);
      expect(output).not.to.include(ADMIN_TOKEN);
    }
  });
});
