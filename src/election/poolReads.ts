/**
 * The etcd requests of a pool view (poolView.ts): the snapshot it starts from, the small
 * reconcile probe, and the wait for a watch to be confirmed. Each is one request; none
 * retries — the view decides when to send them again.
 */
import { Range, type Etcd3, type IKeyValue, type Watcher } from 'etcd3';
import type { PoolKeys } from '../etcd/keys.js';
import type { ProbeCounts } from './poolState.js';

/** What a reconcile probe saw (see `probePool`). */
export interface Probe extends ProbeCounts {
  /** The view's revision when the probe was sent: what `changed` counts after. */
  since: bigint;
  /** etcd's revision in the probe's answer. */
  revision: bigint;
}

/**
 * Reads the members, the claim and the ticket mark at one revision (one transaction, three
 * ranges). Only those: a large foreign value elsewhere under the pool prefix must not slow
 * every read.
 */
export async function readPool(
  etcd: Etcd3,
  keys: PoolKeys,
): Promise<{ revision: bigint; kvs: IKeyValue[] }> {
  const result = await etcd
    .if(keys.leader, 'Mod', '>', -1) // always true: a transaction only for its atomic read
    .then(
      etcd.getAll().prefix(keys.membersPrefix),
      etcd.get(keys.leader),
      etcd.get(keys.ticketHighWater),
    )
    .commit();
  const kvs = result.responses.flatMap((op) => op.response_range?.kvs ?? []);
  return { revision: BigInt(result.header.revision), kvs };
}

/**
 * One linearizable transaction of small ranges: the number of keys under the members prefix
 * (etcd counts them in its index, values unread) and the claim's key without its value —
 * and, when `scan`, the keys of the members modified after revision `since` (none while the
 * view is current). That scan is what finds a change that leaves the count alone (a record
 * rewritten; a member gone and another come between two probes), but etcd reads every member
 * key to answer it, which in every probe of every member came to O(members²) reads at rest:
 * the largest part of etcd's work in a pool of hundreds. So the view scans in few probes.
 */
export async function probePool(
  etcd: Etcd3,
  keys: PoolKeys,
  since: bigint,
  scan: boolean,
): Promise<Probe> {
  const members = Range.prefix(keys.membersPrefix);
  const result = await etcd
    .if(keys.leader, 'Mod', '>', -1) // always true: a transaction only for its atomic read
    .then(
      { request_range: { key: members.start, range_end: members.end, count_only: true } },
      { request_range: { key: Buffer.from(keys.leader), keys_only: true } },
      ...(scan
        ? [
            {
              request_range: {
                key: members.start,
                range_end: members.end,
                keys_only: true,
                min_mod_revision: (since + 1n).toString(),
              },
            },
          ]
        : []),
    )
    .commit();
  const [count, claim, changed] = result.responses.map((op) => op.response_range);
  return {
    since,
    revision: BigInt(result.header.revision),
    memberKeys: Number(count?.count ?? 0),
    changed: changed?.kvs.length ?? 0,
    claimTerm: claim?.kvs[0] === undefined ? undefined : BigInt(claim.kvs[0].mod_revision),
  };
}

/** Resolves when the watcher is connected; rejects on its error or after `timeoutMs`. */
export function watchConnected(watcher: Watcher, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`watch not confirmed within ${timeoutMs} ms`));
    }, timeoutMs);
    const onConnected = () => {
      cleanup();
      resolve();
    };
    const onError = (error: Error) => {
      cleanup();
      reject(error);
    };
    const cleanup = () => {
      clearTimeout(timer);
      watcher.off('connected', onConnected);
      watcher.off('error', onError);
    };
    watcher.on('connected', onConnected);
    watcher.on('error', onError);
  });
}
