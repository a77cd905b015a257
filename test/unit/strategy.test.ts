import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import type { MemberView } from '../../src/election/poolView.js';
import {
  avoid,
  describeStrategy,
  loadModuleStrategy,
  oldest,
  StrategyFallback,
  weighted,
} from '../../src/election/strategy.js';
import { leaseIdHex, poolKeys } from '../../src/etcd/keys.js';
import { memberView } from '../support/memberView.js';

const member = (
  id: string,
  createRevision: bigint,
  extra: {
    weight?: number;
    labels?: Record<string, string>;
    leads?: string[];
    candidate?: boolean;
  } = {},
): MemberView => memberView(id, createRevision, extra);

const context = { pool: 'default', self: undefined };

describe('the oldest strategy', () => {
  it('prefers the member with the lowest create revision', () => {
    const members = [member('b', 7n), member('c', 9n), member('a', 12n)];
    expect(oldest.select(members, context)?.record.id).to.equal('b');
  });

  it('prefers nobody in an empty pool, and never preempts', () => {
    expect(oldest.select([], context)).to.equal(undefined);
    expect(oldest.preempt).to.equal(false);
  });
});

describe('the weighted strategy', () => {
  it('prefers the biggest weight ("the big machine"), ties to the oldest', () => {
    const members = [
      member('a', 1n, { weight: 2 }),
      member('b', 2n, { weight: 8 }),
      member('c', 3n, { weight: 8 }),
    ];
    expect(weighted.select(members, context)?.record.id).to.equal('b');
    expect(weighted.select([member('a', 1n), member('b', 2n)], context)?.record.id).to.equal('a');
    expect(weighted.preempt).to.equal(true);
  });
});

describe('the avoid strategy', () => {
  it('prefers members without the avoided labels, ties to the oldest', () => {
    const strategy = avoid({ labels: { disk: 'busy' }, pools: [] });
    const members = [
      member('a', 1n, { labels: { disk: 'busy' } }),
      member('b', 2n),
      member('c', 3n),
    ];
    expect(strategy.select(members, context)?.record.id).to.equal('b');
  });

  it('a bare label key avoids any value of it', () => {
    const strategy = avoid({ labels: { io: '' }, pools: [] });
    const members = [member('a', 1n, { labels: { io: 'heavy' } }), member('b', 2n)];
    expect(strategy.select(members, context)?.record.id).to.equal('b');
  });

  it('prefers members not already leading an avoided pool, but not counting this pool', () => {
    const strategy = avoid({ labels: {}, pools: ['reports', 'billing'] });
    const members = [
      member('a', 1n, { leads: ['reports'] }),
      member('b', 2n, { leads: ['default'] }),
    ];
    expect(strategy.select(members, { pool: 'billing', self: undefined })?.record.id).to.equal('b');
    expect(strategy.select(members, { pool: 'reports', self: undefined })?.record.id).to.equal('a');
  });

  it('falls back to the oldest when every member is to be avoided (a single node)', () => {
    const strategy = avoid({ labels: { disk: 'busy' }, pools: [] });
    const members = [member('a', 1n, { labels: { disk: 'busy' } })];
    expect(strategy.select(members, context)?.record.id).to.equal('a');
  });
});

describe('a strategy module', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'spl-strategy-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function moduleWith(name: string, body: string) {
    const file = path.join(dir, `${name}.mjs`);
    await writeFile(file, body);
    return loadModuleStrategy(file);
  }

  const members = [member('a', 1n), member('b', 2n, { labels: { zone: 'z2' } })];

  it('chooses by what the module returns: a member, its key or its id', async () => {
    const byObject = await moduleWith(
      'obj',
      'export const selectLeader = (ms) => ms.find((m) => m.labels.zone === "z2");',
    );
    expect(byObject.select(members, context)?.record.id).to.equal('b');
    const byId = await moduleWith('id', 'export function selectLeader() { return "b"; }');
    expect(byId.select(members, context)?.record.id).to.equal('b');
  });

  for (const [name, body, reason] of [
    ['throws', 'export function selectLeader() { throw new Error("boom"); }', 'threw'],
    ['stranger', 'export function selectLeader() { return "nobody"; }', 'not_a_member'],
    [
      'slow',
      'export function selectLeader(ms) { const end = Date.now() + 80; while (Date.now() < end); return ms[1]; }',
      'slow',
    ],
  ] as const) {
    it(`a module that ${name === 'stranger' ? 'returns a non-member' : name === 'slow' ? 'is slow' : 'throws'} raises a fallback (${reason})`, async () => {
      const strategy = await moduleWith(name, body);
      try {
        strategy.select(members, context);
        expect.fail('expected a StrategyFallback');
      } catch (error) {
        expect(error).to.be.instanceOf(StrategyFallback);
        expect((error as StrategyFallback).reason).to.equal(reason);
      }
    });
  }

  it('describes itself by a digest of its file: the same code agrees wherever it lies, other code does not', async () => {
    const body = 'export function selectLeader(members) { return members[0]; }';
    const here = describeStrategy(await moduleWith('here', body));
    expect(here).to.match(/^module\(sha256:[0-9a-f]{16}\)$/);
    expect(describeStrategy(await moduleWith('there', body))).to.equal(here);
    const other = await moduleWith('other', `${body}\n// changed`);
    expect(describeStrategy(other)).not.to.equal(here);
  });

  it('a module without selectLeader is refused at load, naming the file', async () => {
    const file = path.join(dir, 'empty.mjs');
    await writeFile(file, 'export const nothing = 1;');
    let message = '';
    await loadModuleStrategy(file).catch((error: Error) => (message = error.message));
    expect(message).to.include(file).and.to.include('selectLeader');
  });
});

describe('what a member record says of its strategy', () => {
  it('the name, and the settings that decide whom it chooses', () => {
    expect(describeStrategy(oldest)).to.equal('oldest');
    expect(describeStrategy(weighted)).to.equal('weighted');
    expect(
      describeStrategy(avoid({ labels: { zone: 'z1', disk: '' }, pools: ['reports', 'billing'] })),
    ).to.equal('avoid(labels: disk,zone=z1; pools: billing,reports)');
    expect(describeStrategy(avoid({ labels: {}, pools: [] }))).to.equal(
      'avoid(labels: none; pools: none)',
    );
  });
});

describe('the etcd key layout', () => {
  it("puts members where etcd's election recipe does: <prefix>/<lease id in hex>", () => {
    const keys = poolKeys('/service-pool-leader', 'default');
    // etcd3 reports lease ids in decimal; etcd's recipe formats them with %x.
    expect(keys.member('7587869398430217222')).to.equal(
      '/service-pool-leader/pools/default/members/694d8703ff7d7406',
    );
    expect(leaseIdHex('255')).to.equal('ff');
    expect(keys.leader).to.equal('/service-pool-leader/pools/default/leader');
    expect(keys.ticketHighWater.startsWith(keys.statePrefix)).to.equal(true);
  });
});
