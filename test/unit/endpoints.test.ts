/**
 * Changing a running etcd3 client's endpoints (src/etcd/endpoints.ts) relies on etcd3's
 * connection pool as it is in the pinned version: these tests fail first if it changes.
 * No etcd is needed: hosts connect lazily, on their first call.
 */
import { expect } from 'chai';
import type { Etcd3 } from 'etcd3';
import { connectEtcd } from '../../src/etcd/client.js';
import { NoopPolicy } from 'cockatiel';
import { hostOf, openChannels, setEndpoints } from '../../src/etcd/endpoints.js';
import { freePorts } from '../../src/demo/ports.js';
import { generateCertificates } from '../support/certificates.js';
import { readFile } from 'node:fs/promises';

interface PoolView {
  hosts: { host: string; closed: boolean; channelCredentials: unknown; faultHandling: unknown }[];
  options: { hosts: string[] };
}
const poolOf = (etcd: Etcd3) => (etcd as unknown as { pool: PoolView }).pool;

describe('setEndpoints', () => {
  const clients: Etcd3[] = [];
  afterEach(() => clients.splice(0).forEach((etcd) => etcd.close()));

  it('adds hosts built like their siblings, closes the dropped ones, and logs in on the new list', async () => {
    const certs = await generateCertificates();
    const ca = await readFile(certs.caFile);
    await certs.remove();
    const etcd = connectEtcd({
      endpoints: ['https://10.0.0.1:2379', 'https://10.0.0.2:2379'],
      callTimeoutMs: 1000,
      tls: { ca },
    });
    clients.push(etcd);
    const [first, second] = poolOf(etcd).hosts;

    const change = setEndpoints(etcd, ['https://10.0.0.1:2379', 'https://10.0.0.3:2379']);

    expect(change).to.deep.equal({ added: ['https://10.0.0.3:2379'], removed: ['10.0.0.2:2379'] });
    expect(poolOf(etcd).hosts.map((host) => host.host)).to.deep.equal([
      '10.0.0.1:2379',
      '10.0.0.3:2379',
    ]);
    const [kept, added] = poolOf(etcd).hosts;
    expect(kept).to.equal(first);
    expect(added!.channelCredentials, 'the same TLS credentials').to.equal(
      first!.channelCredentials,
    );
    expect(added!.faultHandling, 'its own fault policy').to.not.equal(kept!.faultHandling);
    expect(second!.closed).to.equal(true);
    expect(poolOf(etcd).options.hosts).to.deep.equal([
      'https://10.0.0.1:2379',
      'https://10.0.0.3:2379',
    ]);
  });

  it('gives every host the fault policy of the new count: none with one endpoint, a breaker with more', () => {
    const etcd = connectEtcd({ endpoints: ['http://10.0.0.1:2379'], callTimeoutMs: 1000 });
    clients.push(etcd);
    expect(poolOf(etcd).hosts[0]!.faultHandling).to.be.instanceOf(NoopPolicy);
    setEndpoints(etcd, ['http://10.0.0.1:2379', 'http://10.0.0.2:2379', 'http://10.0.0.3:2379']);
    for (const host of poolOf(etcd).hosts) {
      expect(host.faultHandling).to.not.be.instanceOf(NoopPolicy);
    }
    setEndpoints(etcd, ['http://10.0.0.3:2379']);
    expect(poolOf(etcd).hosts[0]!.faultHandling).to.be.instanceOf(NoopPolicy);
  });

  it('keeps a host written another way (case, trailing slash): nothing is closed or dialled again', () => {
    const etcd = connectEtcd({
      endpoints: ['http://ETCD-A:2379', 'http://etcd-b:2379'],
      callTimeoutMs: 1000,
    });
    clients.push(etcd);
    const [a] = poolOf(etcd).hosts;
    const change = setEndpoints(etcd, ['http://etcd-a:2379/', 'http://etcd-b:2379']);
    expect(change).to.deep.equal({ added: [], removed: [] });
    expect(poolOf(etcd).hosts[0]).to.equal(a);
    expect(a!.closed).to.equal(false);
  });

  it('refuses an empty list, and names the cause when the client is not the etcd3 it knows', () => {
    const etcd = connectEtcd({ endpoints: ['http://10.0.0.1:2379'], callTimeoutMs: 1000 });
    clients.push(etcd);
    expect(() => setEndpoints(etcd, [])).to.throw('at least one endpoint');
    expect(() => setEndpoints({} as Etcd3, ['http://10.0.0.1:2379'])).to.throw(
      'connection pool is not the one this version expects',
    );
  });

  it('openChannels: every host’s KV channel starts connecting at once, before any call; a client it does not know is left alone', async () => {
    // Loopback ports nobody listens on: the channels try, fail and try again, all locally.
    const ports = await freePorts(3);
    const etcd = connectEtcd({
      endpoints: ports.map((port) => `http://127.0.0.1:${port}`),
      callTimeoutMs: 1000,
    });
    clients.push(etcd);
    const hosts = (
      etcd as unknown as {
        pool: {
          hosts: {
            cachedServices: Record<string, unknown>;
            getServiceClient(name: string): {
              getChannel(): { getConnectivityState(connect: boolean): number };
            };
          }[];
        };
      }
    ).pool.hosts;
    expect(
      hosts.map((host) => host.cachedServices.KV),
      'before: no KV client until a call',
    ).to.deep.equal([undefined, undefined, undefined]);
    openChannels(etcd);
    const IDLE = 0;
    for (const host of hosts) {
      expect(host.cachedServices.KV, 'made by openChannels').to.not.equal(undefined);
      expect(host.getServiceClient('KV').getChannel().getConnectivityState(false)).to.not.equal(
        IDLE,
      );
    }
    expect(() => openChannels({} as Etcd3)).to.not.throw();
  });

  it('identifies an endpoint by its URL without scheme or trailing slash, in lower case', () => {
    expect(hostOf('https://ETCD-0.example:2379/')).to.equal('etcd-0.example:2379');
    expect(hostOf('10.0.0.1:2379')).to.equal('10.0.0.1:2379');
  });
});
