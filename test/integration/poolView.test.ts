/**
 * The pool view's reconcile probe, in process on a real etcd: a watch that stops delivering is
 * found and the view resyncs; a watch that is merely late, or a foreign key under the members
 * prefix, is left alone.
 */
import { expect } from 'chai';
import { Etcd3, type IWatchResponse, type Watcher } from 'etcd3';
import { pino } from 'pino';
import { PoolView } from '../../src/election/poolView.js';
import { poolKeys, type PoolKeys } from '../../src/etcd/keys.js';
import { EtcdCluster } from '../support/etcdCluster.js';
import { createMetrics, type PoolMetrics } from '../../src/metrics/metrics.js';
import { eventually } from '../support/pool.js';

const POOL = 'default';
const RECONCILE_MS = 300;

let prefixCounter = 0;

describe('the pool view reconciles with a small probe', function () {
  this.timeout(30_000);
  let etcd: EtcdCluster;
  let client: Etcd3;
  let keys: PoolKeys;
  let metrics: PoolMetrics;
  let view: PoolView | undefined;

  before(async () => {
    etcd = await EtcdCluster.start({ size: 1 });
    client = new Etcd3({ hosts: etcd.endpoints });
  });

  after(async () => {
    client?.close();
    await etcd?.close();
  });

  beforeEach(() => {
    keys = poolKeys(`/spl-view-test-${process.pid}-${++prefixCounter}`, POOL);
    metrics = createMetrics('0.0.0-test');
  });

  afterEach(() => {
    view?.stop();
    view = undefined;
  });

  /** Registers member `id` under a lease of its own, as a member does. */
  async function putMember(id: string, weight = 1): Promise<string> {
    const { ID } = await client.leaseClient.leaseGrant({ TTL: 30 });
    await writeMember(id, ID, weight);
    return keys.member(ID);
  }

  /** Writes member `id`'s record under lease `leaseId` (decimal), as a member does. */
  async function writeMember(id: string, leaseId: string, weight: number): Promise<void> {
    const record = {
      id,
      pool: POOL,
      url: `http://${id}.test:8080`,
      startedAt: new Date().toISOString(),
      pid: 1,
      version: '0.0.0-test',
      weight,
      labels: {},
      leads: [],
    };
    await client.put(keys.member(leaseId)).value(JSON.stringify(record)).lease(leaseId);
  }

  async function startView(): Promise<PoolView> {
    view = new PoolView(client, {
      pool: POOL,
      keys,
      reconcileIntervalMs: RECONCILE_MS,
      watchCreateTimeoutMs: 2000,
      logger: pino({ level: 'silent' }),
      metrics,
    });
    // Count the reconcile probes as they finish: a test waits for probes, not for time, and a
    // "no resync" claim is worth something only if probes did run.
    const probing = view as unknown as { probe: () => Promise<unknown> };
    const probe = probing.probe.bind(view);
    probesDone = 0;
    probing.probe = async () => {
      const answer = await probe();
      probesDone++;
      return answer;
    };
    await view.start();
    return view;
  }

  let probesDone = 0;

  /** Waits until `count` more reconcile probes have finished. */
  async function probesRun(count: number): Promise<void> {
    const target = probesDone + count;
    await eventually(
      `${count} reconcile probes`,
      () => probesDone >= target,
      (count + 2) * RECONCILE_MS + 2000,
    );
  }

  /** The view's current watcher, whose deliveries a test intercepts. */
  const watcherOf = (v: PoolView) => (v as unknown as { watcher: Watcher }).watcher;

  async function resyncs(reason: string): Promise<number> {
    const values = (await metrics.watchResyncs.get()).values;
    return values.find((v) => v.labels.reason === reason)?.value ?? 0;
  }

  const ids = (v: PoolView) => v.members.map((m) => m.record.id);

  it('a watch that silently stops delivering is found, and the view resyncs', async () => {
    await putMember('a');
    const v = await startView();
    expect(ids(v)).to.deep.equal(['a']);

    // The watch stays open but delivers nothing more, as on an etcd member cut off from quorum.
    watcherOf(v).removeAllListeners('data');
    const b = await putMember('b');
    await eventually('the view sees b', () => ids(v).join() === 'a,b', 5000);
    expect(await resyncs('reconcile')).to.equal(1);

    // A delete the watch does not deliver is found as well (one key fewer than the view knows).
    watcherOf(v).removeAllListeners('data');
    await client.delete().key(b);
    await eventually('the view drops b', () => ids(v).join() === 'a', 5000);
    expect(await resyncs('reconcile')).to.equal(2);
  });

  it('a change that leaves the count alone is found by the scanning probe', async () => {
    const { ID } = await client.leaseClient.leaseGrant({ TTL: 30 });
    await writeMember('a', ID, 1);
    const v = await startView();
    watcherOf(v).removeAllListeners('data');
    // A record rewritten in place: as many keys as before, the claim unchanged.
    await writeMember('a', ID, 7);
    // One probe in ten scans: within ten intervals and the grace.
    await eventually(
      'the view sees the new weight',
      () => v.members[0]?.record.weight === 7,
      12 * RECONCILE_MS + 2000,
    );
    expect(await resyncs('reconcile')).to.equal(1);
  });

  it('a watch that is only late is given its grace: no resync', async () => {
    const v = await startView();
    // Every delivery arrives a little later than a probe can see it.
    const watcher = watcherOf(v);
    const listeners = watcher.listeners('data') as ((res: IWatchResponse) => void)[];
    watcher.removeAllListeners('data');
    watcher.on('data', (res: IWatchResponse) =>
      setTimeout(() => listeners.forEach((deliver) => deliver(res)), RECONCILE_MS / 3),
    );
    for (const id of ['a', 'b', 'c', 'd', 'e', 'f']) {
      await putMember(id);
      await new Promise((resolve) => setTimeout(resolve, RECONCILE_MS / 2));
    }
    await eventually('the view sees every member', () => v.members.length === 6, 5000);
    // Probes ran meanwhile, some of them ahead of the watch, and three more after.
    expect(probesDone, 'probes while the members joined').to.be.above(0);
    await probesRun(3);
    expect(await resyncs('reconcile')).to.equal(0);
  });

  it('a foreign key under the members prefix is counted, not taken for a lost event', async () => {
    await putMember('a');
    await client.put(`${keys.membersPrefix}not-a-lease`).value('garbage');
    const v = await startView();
    expect(ids(v)).to.deep.equal(['a']);
    await client.put(`${keys.membersPrefix}another`).value('{}');
    // Enough probes that one in ten scanned the members too.
    await probesRun(11);
    expect(ids(v)).to.deep.equal(['a']);
    expect(await resyncs('reconcile')).to.equal(0);
    expect(v.reachable).to.equal(true);
  });
});
