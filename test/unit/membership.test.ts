/** ETCD_ENDPOINTS against etcd's member list: what is listed but gone, what is there but not listed. */
import { expect } from 'chai';
import { endpointDrift, memberEndpoints } from '../../src/etcd/membership.js';

describe('endpointDrift', () => {
  const members = [
    { clientURLs: ['http://etcd-0.etcd:2379'] },
    { clientURLs: ['http://etcd-1.etcd:2379', 'http://10.0.0.5:2379'] },
    { clientURLs: ['http://etcd-3.etcd:2379'] },
    { clientURLs: ['http://etcd-4.etcd:2379'], isLearner: true },
  ];

  it('names endpoints no member serves and members no endpoint reaches; learners do not count', () => {
    expect(
      endpointDrift(
        ['http://etcd-0.etcd:2379', 'http://10.0.0.5:2379/', 'http://etcd-2.etcd:2379'],
        members,
      ),
    ).to.deep.equal({
      unknown: ['http://etcd-2.etcd:2379'],
      missing: ['http://etcd-3.etcd:2379'],
    });
  });

  it('nothing when they agree, whatever the case of the host or a trailing slash', () => {
    expect(
      endpointDrift(
        ['http://ETCD-0.etcd:2379/', 'http://etcd-1.etcd:2379', 'http://etcd-3.etcd:2379'],
        members,
      ),
    ).to.deep.equal({ unknown: [], missing: [] });
  });

  it('nothing for endpoints that are a proxy or a load balancer (no member serves any of them)', () => {
    expect(endpointDrift(['http://etcd-client.etcd:2379'], members)).to.deep.equal({
      unknown: [],
      missing: [],
    });
  });
});

describe('memberEndpoints', () => {
  const members = [
    { clientURLs: ['http://etcd-0.etcd:2379'] },
    { clientURLs: ['https://etcd-1.etcd:2379', 'http://10.0.0.5:2379', 'http://etcd-1.etcd:2379'] },
    { clientURLs: [] },
    { clientURLs: ['http://etcd-4.etcd:2379'], isLearner: true },
  ];

  it('one URL per voting, started member: the listed one, else the first of the listed scheme', () => {
    expect(memberEndpoints(['http://ETCD-0.etcd:2379/'], members)).to.deep.equal([
      'http://etcd-0.etcd:2379',
      'http://10.0.0.5:2379',
    ]);
    expect(
      memberEndpoints(['http://etcd-0.etcd:2379', 'http://etcd-1.etcd:2379'], members),
    ).to.deep.equal(['http://etcd-0.etcd:2379', 'http://etcd-1.etcd:2379']);
  });

  it("never another scheme than ETCD_ENDPOINTS' (the client's TLS is for that one): such members are left out", () => {
    expect(
      memberEndpoints(
        ['https://etcd-1.etcd:2379'],
        [{ clientURLs: ['http://x:2379'] }, ...members],
      ),
    ).to.deep.equal(['https://etcd-1.etcd:2379']);
  });

  it('loopback URLs only when ETCD_ENDPOINTS dial loopback; a URL two members advertise, once', () => {
    const advertised = [
      { clientURLs: ['http://127.0.0.1:2379', 'http://10.0.0.1:2379'] },
      { clientURLs: ['http://[::1]:2379', 'http://localhost:2379'] },
      { clientURLs: ['http://10.0.0.1:2379'] },
    ];
    expect(memberEndpoints(['http://10.0.0.1:2379'], advertised)).to.deep.equal([
      'http://10.0.0.1:2379',
    ]);
    expect(memberEndpoints(['http://127.0.0.1:2379'], advertised)).to.deep.equal([
      'http://127.0.0.1:2379',
      'http://[::1]:2379',
      'http://10.0.0.1:2379',
    ]);
  });

  it('nothing to follow behind a proxy or load balancer, or when etcd lists no usable member', () => {
    expect(memberEndpoints(['http://etcd.example:2379'], members)).to.equal(undefined);
    expect(memberEndpoints(['http://etcd-4.etcd:2379'], members)).to.equal(undefined);
    expect(memberEndpoints(['http://etcd-0.etcd:2379'], [])).to.equal(undefined);
  });
});
