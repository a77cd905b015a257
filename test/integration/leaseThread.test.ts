/**
 * Lease keep-alives on their own thread (src/membership/leaseThread.ts), against a real etcd:
 * a busy main thread does not cost the lease, a hung one does, and a keep-alive thread that
 * cannot start leaves the keep-alives to the main thread.
 *
 * "Busy" is this test process's own main thread held in a loop, the extreme of a member whose
 * event loop is taken by a flood of requests: nothing on it runs until the loop ends. The
 * worker runs compiled, from dist/ (`make build` first), as the members under test do.
 */
import { expect } from 'chai';
import type { Etcd3 } from 'etcd3';
import { pino } from 'pino';
import { connectEtcd } from '../../src/etcd/client.js';
import { EtcdCluster } from '../support/etcdCluster.js';
import { MemberLease, type KeptLease } from '../../src/membership/lease.js';
import { monotonicNow } from '../../src/util/time.js';
import { LeaseThread } from '../../src/membership/leaseThread.js';
import { TcpProxy } from '../support/tcpProxy.js';
import { eventually } from '../support/pool.js';
import type { Worker } from 'node:worker_threads';

const TTL_SECONDS = 2;
const CALL_TIMEOUT_MS = 1000;

/** Holds this thread for `ms`: no timer, no I/O callback runs meanwhile. */
function holdMainThread(ms: number): void {
  const until = monotonicNow() + ms;
  while (monotonicNow() < until) {
    // busy: the point of the test
  }
}

/** etcd's own answer: whole seconds the lease has left (0 below one), or -1 once it expired. */
async function ttlInEtcd(etcd: Etcd3, lease: KeptLease): Promise<number> {
  const answer = await etcd.leaseClient.leaseTimeToLive({ ID: lease.id });
  return Number(answer.TTL);
}

/** Waits for the lease's next renewal: its time left then. Fails after two TTLs without one. */
function renewedOnce(lease: KeptLease): Promise<number> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no renewal within ${2 * TTL_SECONDS} s`)),
      2 * TTL_SECONDS * 1000,
    );
    lease.once('renewed', (_deadline, left) => {
      clearTimeout(timer);
      resolve(left);
    });
  });
}

describe('lease keep-alives on their own thread', function () {
  this.timeout(60_000);
  let cluster: EtcdCluster;
  let etcd: Etcd3;
  const warnings: string[] = [];
  const logger = pino(
    { level: 'warn', base: null },
    { write: (line: string) => warnings.push((JSON.parse(line) as { msg: string }).msg) },
  );
  let thread: LeaseThread | undefined;
  let proxy: TcpProxy | undefined;
  const leases: KeptLease[] = [];

  before(async () => {
    cluster = await EtcdCluster.start({ size: 1 });
    etcd = connectEtcd({ endpoints: cluster.endpoints, callTimeoutMs: CALL_TIMEOUT_MS });
  });

  after(async () => {
    etcd?.close();
    await cluster?.close();
  });

  /**
   * A thread on the test cluster (its own etcd connection to `endpoints`), and a lease it has
   * taken over: the worker renewed it and the main thread stopped sending.
   */
  async function renewingLease(endpoints = cluster.endpoints): Promise<KeptLease> {
    thread = new LeaseThread(etcd, { endpoints, callTimeoutMs: CALL_TIMEOUT_MS }, logger);
    const lease = await thread.grant(TTL_SECONDS, CALL_TIMEOUT_MS);
    leases.push(lease);
    while (lease.keeper !== 'thread') await renewedOnce(lease);
    return lease;
  }

  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
    for (const lease of leases.splice(0)) lease.abandon();
    await thread?.close();
    thread = undefined;
    warnings.length = 0;
  });

  it('with the main thread held 2.6 s (longer than the TTL), a lease kept from the main thread expires; one kept from the thread stays', async () => {
    const inline = await MemberLease.grant(etcd, TTL_SECONDS, CALL_TIMEOUT_MS);
    leases.push(inline);
    const [threaded] = await Promise.all([renewingLease(), renewedOnce(inline)]);

    holdMainThread(2600);

    const [threadedTtl, inlineTtl] = await Promise.all([
      ttlInEtcd(etcd, threaded),
      ttlInEtcd(etcd, inline),
    ]);
    expect(inlineTtl, 'the lease kept from the held thread').to.equal(-1);
    expect(threadedTtl, 'the lease kept from its own thread').to.be.at.least(0);
    // What the main thread learns once it runs again: renewals that landed with time to spare.
    const left = await renewedOnce(threaded);
    expect(left).to.be.greaterThan(0);
    expect(threaded.isAlive).to.equal(true);
    expect(warnings).to.deep.equal([]);
  });

  it('a main thread silent for longer than the TTL stops the keep-alives: held 6 s, the lease expires and the member hears it is lost', async () => {
    const lease = await renewingLease();
    const failures: string[] = [];
    lease.on('keepAliveFailed', (error) => failures.push(error.message));
    const lost = new Promise<string>((resolve) => lease.once('lost', resolve));

    holdMainThread(6000);

    expect(await ttlInEtcd(etcd, lease)).to.equal(-1);
    expect(await lost).to.equal('etcd reports the lease expired');
    expect(failures[0]).to.match(
      /^the main thread has not answered for \d+ ms; letting the lease run out$/,
    );
    expect(lease.isAlive).to.equal(false);
  });

  it('a main thread busy for 6 s that speaks up as it works (alive(), as on each request) keeps its lease', async () => {
    const lease = await renewingLease();
    const failures: string[] = [];
    lease.on('keepAliveFailed', (error) => failures.push(error.message));

    // Like one turn of the event loop spent on thousands of requests: no timer runs, but each
    // request handler calls alive(), and messages reach the worker without the loop turning.
    const until = monotonicNow() + 6000;
    while (monotonicNow() < until) thread!.alive();

    expect(await ttlInEtcd(etcd, lease)).to.be.at.least(0);
    await renewedOnce(lease);
    expect(lease.isAlive).to.equal(true);
    expect(failures).to.deep.equal([]);
  });

  it('the worker dies after taking over: the main thread keeps the lease from then on, with a warning', async () => {
    const lease = await renewingLease();
    await (thread as unknown as { worker: Worker }).worker.terminate();
    // Three renewals span more than a TTL: the lease lives on from the main thread.
    for (let i = 0; i < 3; i++) await renewedOnce(lease);
    expect(lease.keeper).to.equal('main');
    expect(await ttlInEtcd(etcd, lease)).to.be.at.least(0);
    expect(warnings).to.deep.equal([
      'lease keep-alive thread failed; keeping leases alive from the main thread',
    ]);
  });

  it("the worker's own etcd connection goes silent (blackholed) while the main one works: the main thread joins in before the lease runs out, and leaves again once the worker renews", async () => {
    proxy = await TcpProxy.start(cluster.endpoints[0]!);
    const lease = await renewingLease([proxy.url]);
    const failures: string[] = [];
    lease.on('keepAliveFailed', (error) => failures.push(error.message));
    proxy.cut('blackhole');
    // Three TTLs: without the main thread joining in, the lease would be gone.
    const keepers = new Set<string>();
    for (let i = 0; i < 9; i++) {
      await renewedOnce(lease);
      keepers.add(lease.keeper);
    }
    expect(await ttlInEtcd(etcd, lease)).to.be.at.least(0);
    expect(lease.isAlive).to.equal(true);
    expect(keepers).to.include('main');
    expect(failures.length, 'the worker reported its failures').to.be.greaterThan(0);

    proxy.heal();
    await eventually('the worker renews again and the main thread stops', async () => {
      await renewedOnce(lease);
      return lease.keeper === 'thread';
    });
  });

  it('a keep-alive thread that cannot start (no etcd endpoint for it) leaves the keep-alives to the main thread, with a warning', async () => {
    thread = new LeaseThread(etcd, { endpoints: [], callTimeoutMs: CALL_TIMEOUT_MS }, logger);
    const lease = await thread.grant(TTL_SECONDS, CALL_TIMEOUT_MS);
    leases.push(lease);
    // Three renewals span more than a TTL: the lease lives on from the main thread.
    for (let i = 0; i < 3; i++) await renewedOnce(lease);
    expect(await ttlInEtcd(etcd, lease)).to.be.at.least(0);
    expect(warnings).to.deep.equal([
      'lease keep-alive thread failed; keeping leases alive from the main thread',
    ]);
  });
});
