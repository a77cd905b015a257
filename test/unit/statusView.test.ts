import { expect } from 'chai';
import type { StatusSnapshot } from '../../src/http/statusPage/status.js';
import { statusView } from '../../src/http/statusPage/statusView.js';
import { toHtml } from '../../src/http/statusPage/viewNode.js';

type PoolStatus = StatusSnapshot['pools'][number];

function member(id: string, createRevision: number, candidate: boolean, isLeader = false) {
  return {
    id,
    url: `http://127.0.0.1:700${createRevision}`,
    memberKey: `key-${id}`,
    createRevision,
    startedAt: '2025-01-31T12:00:00.000Z',
    pid: 1,
    version: '0.1.0',
    weight: 1,
    labels: {},
    leads: [],
    service: 'orders',
    strategy: 'oldest',
    strategyDiffers: false,
    candidate,
    isLeader,
  };
}

function snapshot(pool: Partial<PoolStatus>): StatusSnapshot {
  return {
    member: { id: 'edge', url: 'http://127.0.0.1:7001', version: '0.1.0', startedAt: '' },
    takenAt: '2025-01-31T12:05:00.000Z',
    pools: [
      {
        pool: 'default',
        service: 'orders',
        strategy: 'oldest',
        self: {
          id: 'edge',
          memberKey: 'key-edge',
          isLeader: false,
          ready: true,
          leaseTimeLeftMs: 1500,
          service: 'orders',
          strategy: 'oldest',
          strategyDiffers: false,
          candidate: false,
        },
        leader: null,
        term: null,
        noLeaderReason: null,
        revision: 9,
        timeline: [],
        members: [],
        ...pool,
      },
    ],
    etcdRequests: {},
    workCalls: {},
    workEtcdRequests: {},
  };
}

/** The members table's rows as text, cell by cell (the member's id first). */
function membersTable(html: string): string[][] {
  const table = html.slice(html.indexOf('id="pool-default-members"'));
  const body = table.slice(table.indexOf('<tbody>'), table.indexOf('</tbody>'));
  return body
    .split('<tr')
    .slice(1)
    .map((row) =>
      row
        .split(/<t[hd][^>]*>/)
        .slice(1)
        .map((cell) => cell.replace(/<[^>]+>/g, '')),
    );
}

const page = (pool: Partial<PoolStatus>) =>
  statusView(snapshot(pool)).sections.map(toHtml).join('\n');

describe('the status page', () => {
  it('shows a member with CANDIDATE=false as one that never leads', () => {
    const html = page({
      leader: {
        id: 'a',
        url: 'http://127.0.0.1:7002',
        memberKey: 'key-a',
        term: 7,
        unreachable: null,
      },
      term: 7,
      members: [member('edge', 1, false), member('a', 2, true, true), member('b', 3, true)],
    });
    const roles = membersTable(html).map((row) => [row[0]!.split(' ')[0], row.at(-1)]);
    expect(roles).to.deep.equal([
      ['edge', 'never leads'],
      ['a', 'leader'],
      ['b', 'follower'],
    ]);
    expect(html).to.include('This member is a follower that never leads (CANDIDATE=false)');
  });

  it('says why the pool has no leader when no member may lead', () => {
    const reason = 'no member may lead: its only member is CANDIDATE=false';
    const html = page({ noLeaderReason: reason, members: [member('edge', 1, false)] });
    expect(html).to.include(`<strong>No leader</strong>: ${reason}.`);
    expect(page({})).to.include('<strong>No leader</strong> right now.');
  });
});
