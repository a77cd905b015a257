import { expect } from 'chai';
import { candidates } from '../../src/election/candidates.js';
import {
  poolStrategyMember,
  serviceConflict,
  ServiceConflictError,
  strategyDiffers,
} from '../../src/election/poolIdentity.js';
import type { MemberView } from '../../src/election/poolView.js';
import { memberView } from '../support/memberView.js';

const member = (
  id: string,
  createRevision: bigint,
  service?: string,
  strategy?: string,
): MemberView =>
  memberView(id, createRevision, {
    ...(service === undefined ? {} : { service }),
    ...(strategy === undefined ? {} : { strategy }),
  });

const as = (service: string | undefined) => ({ service, pool: 'default', prefix: '/spl' });

describe('which service a pool belongs to', () => {
  it('an empty pool, or one of our service, admits us', () => {
    expect(serviceConflict([], as('orders'))).to.equal(undefined);
    expect(serviceConflict([member('a', 5n, 'orders')], as('orders'))).to.equal(undefined);
  });

  it('a pool of another service refuses us, naming both services, the pool, the prefix and the fix', () => {
    const conflict = serviceConflict(
      [member('a', 5n, 'billing'), member('b', 6n, 'billing')],
      as('orders'),
    );
    expect(conflict).to.be.instanceOf(ServiceConflictError);
    expect(conflict?.code).to.equal('SERVICE_CONFLICT');
    expect(conflict?.message).to.equal(
      'cannot join pool "default" under ETCD_PREFIX /spl: it belongs to service "billing" (member a, registered at revision 5), and this member runs service "orders". Give each service its own POOL or its own ETCD_PREFIX; if both are one service, give them the same SERVICE_NAME',
    );
  });

  it('two services registered at once: the one registered later withdraws, the earlier stays', () => {
    const pool = [member('x', 10n, 'billing'), member('y', 11n, 'orders')];
    expect(serviceConflict(pool, as('billing')), 'x, registered first').to.equal(undefined);
    expect(serviceConflict(pool, as('orders'))?.conflict).to.include({
      poolService: 'billing',
      member: 'x',
    });
    // A third member of the first service is no conflict, though an "orders" member is older.
    expect(serviceConflict([...pool, member('z', 12n, 'billing')], as('billing'))).to.equal(
      undefined,
    );
  });

  it('records that name no service (an earlier version) neither refuse nor are refused', () => {
    const pool = [member('old', 3n), member('a', 5n, 'billing')];
    expect(serviceConflict([member('old', 3n)], as('orders'))).to.equal(undefined);
    expect(serviceConflict(pool, as('orders'))?.conflict.member).to.equal('a');
    expect(serviceConflict(pool, as(undefined))).to.equal(undefined);
  });

  it('a member of another service, in the moment before it withdraws, may not lead', () => {
    const pool = [member('old', 3n), member('x', 10n, 'billing'), member('y', 11n, 'orders')];
    expect(candidates(pool).map((m) => m.record.id)).to.deep.equal(['old', 'x']);
  });
});

describe("a pool's strategy", () => {
  it('is the strategy of its oldest member that names one; an unnamed one differs from none', () => {
    const pool = [
      member('old', 3n),
      member('a', 5n, 'orders', 'oldest'),
      member('b', 6n, 'orders', 'weighted'),
    ];
    const poolStrategy = poolStrategyMember(pool)?.record.strategy;
    expect(poolStrategy).to.equal('oldest');
    expect(strategyDiffers('weighted', poolStrategy)).to.equal(true);
    expect(strategyDiffers('oldest', poolStrategy)).to.equal(false);
    expect(strategyDiffers(undefined, poolStrategy)).to.equal(false);
    expect(
      strategyDiffers('weighted', poolStrategyMember([member('old', 3n)])?.record.strategy),
    ).to.equal(false);
  });
});
