/**
 * Other registrations of our MEMBER_ID: a stale key of this process, a previous incarnation
 * (a restarted container; a process whose key a restore of etcd brought back), or a live
 * process that took our registration over while we were frozen or cut off. One read of the
 * members prefix, then a /healthz question per registration with our id (500 ms each).
 */
import type { Etcd3 } from 'etcd3';
import type { Logger } from 'pino';
import { answersAs } from './identity.js';
import { decodeShared, memberRecordSchema, type MemberRecord } from './memberRecord.js';

/** A live registration of our MEMBER_ID by a process that started after us. */
export interface Incarnation {
  memberKey: string;
  url: string;
  pid: number;
  startedAt: string;
}

/**
 * Other registrations with our MEMBER_ID, settled before we register (`again`: after losing
 * ours). One of this very process (a stale key of ours) or of a process that does not answer
 * as itself at its URL (a previous incarnation: a restarted container, or a process whose key
 * a restore of etcd brought back) is revoked, so the pool does not wait a TTL for a dead
 * member. A live process elsewhere is left alone — revoking its lease could make two leaders
 * until its own lease deadline — and when we register again and it started after us, it took
 * our registration over while we were frozen or cut off: it is returned, and we yield.
 */
export async function settleIncarnations(
  self: {
    etcd: Etcd3;
    membersPrefix: string;
    record: Pick<MemberRecord, 'id' | 'pid' | 'startedAt'>;
    logger: Logger;
  },
  ownLeaseId: string,
  again: boolean,
): Promise<Incarnation | undefined> {
  const { etcd, logger } = self;
  const existing = await etcd.getAll().prefix(self.membersPrefix).exec();
  const { id, pid, startedAt } = self.record;
  for (const kv of existing.kvs) {
    const decoded = decodeShared(memberRecordSchema, kv.value);
    if (!decoded.ok || decoded.value.id !== id) continue;
    if (kv.lease === '0' || kv.lease === ownLeaseId) continue;
    const other = decoded.value;
    const memberKey = kv.key.toString();
    const ours = other.pid === pid && other.startedAt === startedAt;
    if (!ours && (await answersAs(other.url, id, other.pid))) {
      if (again && Date.parse(other.startedAt) > Date.parse(startedAt)) {
        return { memberKey, url: other.url, pid: other.pid, startedAt: other.startedAt };
      }
      logger.warn(
        { memberKey, url: other.url, pid: other.pid },
        'a live member with our MEMBER_ID answers at another URL; not taking over its registration',
      );
      continue;
    }
    await etcd.leaseClient.leaseRevoke({ ID: kv.lease }).catch(() => undefined);
    logger.info(
      { memberKey, leaseId: kv.lease, pid: other.pid, startedAt: other.startedAt },
      ours
        ? 'revoked a stale registration of this process'
        : 'took over the registration of a previous incarnation of this member',
    );
  }
  return undefined;
}
