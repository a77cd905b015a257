/**
 * A member as the pool view holds it, for unit tests of the decisions made on members
 * (strategies, candidates, pool identity): a valid record with the defaults, `record` over it.
 */
import type { MemberView } from '../../src/election/poolView.js';
import type { MemberRecord } from '../../src/membership/memberRecord.js';

export function memberView(
  id: string,
  createRevision: bigint,
  record: Partial<MemberRecord> = {},
): MemberView {
  return {
    key: `/p/pools/default/members/${id}`,
    leaseId: '1',
    createRevision,
    modRevision: createRevision,
    record: {
      id,
      pool: 'default',
      url: `http://${id}:1`,
      startedAt: '2026-11-26T10:00:00.000Z',
      pid: 1,
      version: '0',
      weight: 1,
      labels: {},
      leads: [],
      candidate: true,
      ...record,
    },
  };
}
