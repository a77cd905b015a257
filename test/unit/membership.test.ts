/** ETCD_ENDPOINTS against etcd's member list: what is listed but gone, what is there but not listed. */
import { expect } from 'chai';
import { endpointDrift } from '../../src/etcd/membership.js';

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
