/**
 * What a pool's members must agree on, on a real etcd: the service they run (a member of
 * another service is refused, also when two register at once), and records that a later
 * version wrote still count as members. Real member processes, and elections in process
 * where the test must decide who registers when.
 */
import { once } from 'node:events';
import { expect } from 'chai';
import { Etcd3, type IWatchResponse } from 'etcd3';
import { pino } from 'pino';
import { PoolElection } from '../../src/election/election.js';
import type { ServiceConflictError } from '../../src/election/poolIdentity.js';
import { poolKeys, type PoolKeys } from '../../src/etcd/keys.js';
import { EtcdCluster } from '../support/etcdCluster.js';
import { startPoolMember, type MemberProcess } from '../../src/demo/memberProcess.js';
import { freePorts } from '../../src/demo/ports.js';
import { TcpProxy } from '../support/tcpProxy.js';
import { createMetrics } from '../../src/metrics/metrics.js';
import { eventually, grantLease, TestPool } from '../support/pool.js';

/** The line a member of `service` prints when pool `default` under `prefix` is taken. */
function refusal(prefix: string, poolService: string, owner: string, service: string): RegExp {
  const quoted = (text: string) => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  return new RegExp(
    quoted(
      `service-pool-leader: cannot join pool "default" under ETCD_PREFIX ${prefix}: it belongs to service "${poolService}" (member ${owner}, registered at revision `,
    ) +
      '\\d+' +
      quoted(
        `), and this member runs service "${service}". Give each service its own POOL or its own ETCD_PREFIX; if both are one service, give them the same SERVICE_NAME`,
      ),
  );
}

describe('what the members of a pool agree on', function () {
  this.timeout(60_000);
  let etcd: EtcdCluster;
  let pool: TestPool | undefined;

  before(async () => {
    etcd = await EtcdCluster.start({ size: 1 });
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

  it('a member of another service finds the pool taken at start-up: it exits 1 with one line naming both services, the pool, the prefix and the fix, without registering', async () => {
    pool = new TestPool(etcd, { LEASE_TTL_SECONDS: '2' });
    await pool.start(['a']);
    const [port] = await freePorts(1);
    const billing = startPoolMember({
      endpoints: etcd.endpoints,
      prefix: pool.prefix,
      id: 'b',
      port: port!,
      env: { SERVICE_NAME: 'billing' },
    });
    pool.members.set('b', billing);
    const exit = await billing.exited;
    expect(exit.code, billing.recentOutput()).to.equal(1);
    expect(billing.recentOutput()).to.match(
      refusal(pool.prefix, 'service-pool-leader', 'a', 'billing'),
    );
    expect(billing.recentOutput()).not.to.include('registered in the pool');
    const view = await pool.view('a');
    expect(view.service).to.equal('service-pool-leader');
    expect(view.members.map((m) => [m.id, m.service])).to.deep.equal([
      ['a', 'service-pool-leader'],
    ]);
  });

  it('a member of another service that could reach etcd only after starting withdraws once registered, and exits 1 with the same line', async () => {
    pool = new TestPool(etcd, { LEASE_TTL_SECONDS: '2' });
    await pool.start(['a']);
    const proxy = await TcpProxy.start(etcd.endpoints[0]!);
    let billing: MemberProcess | undefined;
    try {
      proxy.cut('refuse');
      const [port] = await freePorts(1);
      billing = startPoolMember({
        endpoints: [proxy.url],
        prefix: pool.prefix,
        id: 'b',
        port: port!,
        env: { SERVICE_NAME: 'billing', LEASE_TTL_SECONDS: '2' },
      });
      pool.members.set('b', billing);
      await eventually('b says etcd does not answer', () =>
        billing!.recentOutput().includes('not ready; retrying in the background'),
      );
      proxy.heal();
      const exit = await billing.exited;
      expect(exit.code, billing.recentOutput()).to.equal(1);
      const output = billing.recentOutput();
      expect(output).to.include('registered in the pool');
      expect(output).to.match(refusal(pool.prefix, 'service-pool-leader', 'a', 'billing'));
    } finally {
      await proxy.close();
    }
    const view = await pool.view('a');
    expect(view.members.map((m) => m.id)).to.deep.equal(['a']);
    expect(await pool.agreedLeader()).to.equal('a');
  });

  it("a member with another strategy than the pool's warns once, and /pool shows the difference", async () => {
    pool = new TestPool(etcd, { LEASE_TTL_SECONDS: '2' });
    await pool.start(['a']);
    await pool.startWith('b', { ELECTION_STRATEGY: 'weighted', WEIGHT: '5' });
    await pool.start(['c']);
    expect(await pool.agreedLeader()).to.equal('a');
    const view = await pool.view('a');
    expect(view.strategy).to.equal('oldest');
    expect(view.self.strategyDiffers).to.equal(false);
    expect(view.members.map((m) => [m.id, m.strategy, m.strategyDiffers])).to.deep.equal([
      ['a', 'oldest', false],
      ['b', 'weighted', true],
      ['c', 'oldest', false],
    ]);
    expect((await pool.view('b')).self).to.include({ strategy: 'weighted', strategyDiffers: true });
    const warnings = pool
      .member('b')
      .recentOutput()
      .split('\n')
      .filter((line) => line.includes("this member's strategy differs from the pool's"));
    expect(warnings).to.have.length(1);
    expect(JSON.parse(warnings[0]!)).to.include({
      level: 40,
      strategy: 'weighted',
      poolStrategy: 'oldest',
      member: 'a',
    });
    for (const id of ['a', 'c']) {
      expect(pool.member(id).recentOutput()).not.to.include("strategy differs from the pool's");
    }
  });

  it('a record with a field this version does not know (a later version wrote it) is still a member', async () => {
    pool = new TestPool(etcd, { LEASE_TTL_SECONDS: '2' });
    await pool.start(['a']);
    const lease = await grantLease(etcd, 60);
    const record = {
      id: 'later',
      pool: 'default',
      url: 'http://127.0.0.1:1',
      startedAt: new Date().toISOString(),
      pid: 1,
      version: '9.0.0',
      weight: 1,
      labels: {},
      leads: [],
      zone: 'eu-1',
    };
    const put = await etcd.etcdctl([
      'put',
      `--lease=${lease.id}`,
      `${pool.prefix}/pools/default/members/${lease.keySuffix}`,
      JSON.stringify(record),
    ]);
    expect(put.code, put.stderr).to.equal(0);
    await eventually('a lists the later member', async () =>
      (await pool!.view('a')).members.some((m) => m.id === 'later'),
    );
    expect((await pool.view('a')).members.map((m) => m.id)).to.deep.equal(['a', 'later']);
    expect(await pool.agreedLeader()).to.equal('a');
    const metrics = await (await fetch(`${pool.member('a').url}/metrics`)).text();
    expect(metrics).to.include(
      'service_pool_invalid_records_total{pool="default",kind="member_record"} 0',
    );
  });
});

describe('members of two services registering in one pool at the same moment', function () {
  this.timeout(60_000);
  let etcd: EtcdCluster;
  let client: Etcd3;
  let keys: PoolKeys;
  let prefixCounter = 0;
  const elections: PoolElection[] = [];

  before(async () => {
    etcd = await EtcdCluster.start({ size: 1 });
    client = new Etcd3({ hosts: etcd.endpoints });
  });

  after(async () => {
    client?.close();
    await etcd?.close();
  });

  beforeEach(() => {
    keys = poolKeys(`/spl-identity-test-${process.pid}-${++prefixCounter}`, 'default');
  });

  afterEach(async () => {
    await Promise.all(elections.splice(0).map((election) => election.close()));
  });

  /** An election in this process, as a member's, without the member's start-up check. */
  function member(id: string, service: string): PoolElection {
    const election = new PoolElection(client, {
      pool: 'default',
      keys,
      record: {
        id,
        url: `http://${id}.test:8080`,
        startedAt: new Date().toISOString(),
        pid: process.pid,
        version: '0.0.0-test',
        weight: 1,
        labels: {},
        leads: [],
        service,
        candidate: true,
      },
      leaseTtlSeconds: 2,
      safetyMarginMs: 300,
      callTimeoutMs: 1000,
      reconcileIntervalMs: 1000,
      logger: pino({ level: 'silent' }),
      metrics: createMetrics('0.0.0-test'),
    });
    elections.push(election);
    return election;
  }

  /** Resolves with the first of `candidates` to withdraw, and why. */
  function firstRefused(
    ...candidates: PoolElection[]
  ): Promise<{ election: PoolElection; error: ServiceConflictError }> {
    return Promise.race(
      candidates.map(async (election) => {
        const [error] = (await once(election, 'refused')) as [ServiceConflictError];
        return { election, error };
      }),
    );
  }

  it('a member of another service that registers after the first member of the pool (both past the start-up check) withdraws; the first leads on', async () => {
    const billing = member('x', 'billing');
    await billing.start();
    await billing.waitFor((e) => e.isLeader(), 5000);
    const orders = member('y', 'orders');
    const refused = firstRefused(orders);
    await orders.start();
    const { error } = await refused;
    expect(error.conflict).to.include({
      pool: 'default',
      prefix: keys.prefix,
      service: 'orders',
      poolService: 'billing',
      member: 'x',
    });
    expect(orders.closed).to.equal(true);
    await eventually('x sees y gone', () => billing.view.members.length === 1);
    expect(billing.isLeader()).to.equal(true);
  });

  it('both register at once into an empty pool: the one registered later withdraws, the earlier stays and leads (3 rounds)', async () => {
    for (let round = 0; round < 3; round++) {
      keys = poolKeys(`/spl-identity-test-${process.pid}-${++prefixCounter}`, 'default');
      // Who registered at which revision, as etcd saw it.
      const createdAt = new Map<string, number>();
      const watcher = await client.watch().prefix(keys.membersPrefix).create();
      watcher.on('data', (res: IWatchResponse) => {
        for (const event of res.events) {
          if (event.type !== 'Put') continue;
          const record = JSON.parse(event.kv.value.toString()) as { id: string };
          createdAt.set(record.id, Number(event.kv.create_revision));
        }
      });
      const x = member('x', 'billing');
      const y = member('y', 'orders');
      const refused = firstRefused(x, y);
      await Promise.all([x.start(), y.start()]);
      const { election: loser, error } = await refused;
      const winner = loser === x ? y : x;
      await eventually('both registrations seen', () => createdAt.size === 2);
      expect(createdAt.get(loser.memberId), 'the later registration withdrew').to.be.greaterThan(
        createdAt.get(winner.memberId)!,
      );
      expect(error.conflict.member).to.equal(winner.memberId);
      expect(await winner.waitFor((e) => e.isLeader(), 5000)).to.equal(true);
      await eventually('the winner sees the loser gone', () =>
        winner.view.members.every((m) => m.record.id === winner.memberId),
      );
      expect(winner.closed).to.equal(false);
      await watcher.cancel();
      await Promise.all(elections.splice(0).map((election) => election.close()));
    }
  });
});
