/**
 * The runnable example in examples/ — an Express service embedding a pool member with its own
 * work handler and a fenced etcd write — run as real processes on a real etcd.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { EtcdCluster } from '../support/etcdCluster.js';
import { MemberProcess } from '../../src/demo/memberProcess.js';
import { freePorts } from '../../src/demo/ports.js';

const EXAMPLE = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '../../examples/orders-service.mjs',
);

/** An order as /work answers it: its number and term are bigints, sent as decimal strings. */
interface Order {
  number: string;
  item: string | null;
  takenBy: string;
  term: string;
  recorded: boolean;
}

describe('the embedded-member example (examples/orders-service.mjs)', function () {
  this.timeout(60_000);
  let etcd: EtcdCluster;
  const copies: MemberProcess[] = [];

  before(async () => {
    etcd = await EtcdCluster.start({ size: 1 });
    const ports = await freePorts(2);
    for (const [i, id] of ['a', 'b'].entries()) {
      const copy = MemberProcess.start({
        id,
        port: ports[i]!,
        cliPath: EXAMPLE,
        args: [],
        env: { ETCD_ENDPOINTS: etcd.endpoints.join(','), LEASE_TTL_SECONDS: '2' },
      });
      copies.push(copy);
      await copy.waitReady();
    }
  });

  after(async () => {
    await Promise.all(copies.map((copy) => copy.kill()));
    await etcd?.close();
  });

  async function order(copy: MemberProcess, item: string): Promise<Order> {
    const res = await fetch(`${copy.url}/work`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ payload: { item } }),
    });
    expect(res.status).to.equal(200);
    return (await res.json()) as Order;
  }

  it('any copy takes orders; the leader numbers them and records the last one with a fenced write', async () => {
    const first = await order(copies[1]!, 'tea');
    const second = await order(copies[0]!, 'cake');
    expect(first).to.include({ item: 'tea', takenBy: 'a', recorded: true });
    expect(first.number).to.match(/^\d+$/);
    expect(first.term).to.match(/^\d+$/);
    expect(BigInt(second.number) > BigInt(first.number)).to.equal(true);
    const last = await etcd.etcdctl(['get', '--print-value-only', '/orders-example/last-order']);
    expect(JSON.parse(last.stdout)).to.deep.include({
      number: second.number,
      item: 'cake',
      takenBy: 'a',
    });
    const viaRoute = (await (await fetch(`${copies[1]!.url}/orders/last`)).json()) as Order;
    expect(viaRoute.number).to.equal(second.number);
  });

  it('after the leader copy stops, the other numbers orders above every earlier number', async () => {
    const before = await order(copies[1]!, 'soup');
    expect((await copies[0]!.stop()).code).to.equal(0);
    const after = await order(copies[1]!, 'bread');
    expect(after).to.include({ takenBy: 'b', recorded: true });
    expect(BigInt(after.number) > BigInt(before.number)).to.equal(true);
    expect(BigInt(after.term) > BigInt(before.term)).to.equal(true);
  });

  it('another service left at the same defaults (the echo service of `serve`) is refused, and orders stay with the orders service', async () => {
    const [port] = await freePorts(1);
    const echo = MemberProcess.start({
      id: 'echo',
      port: port!,
      env: { ETCD_ENDPOINTS: etcd.endpoints.join(','), LEASE_TTL_SECONDS: '2' },
    });
    copies.push(echo);
    expect((await echo.exited).code, echo.recentOutput()).to.equal(1);
    expect(echo.recentOutput()).to.include(
      'service-pool-leader: cannot join pool "default" under ETCD_PREFIX /service-pool-leader: it belongs to service "orders" (member b, registered at revision',
    );
    expect(echo.recentOutput()).to.include('and this member runs service "service-pool-leader"');
    expect(await order(copies[1]!, 'jam')).to.include({ takenBy: 'b', recorded: true });
  });
});
