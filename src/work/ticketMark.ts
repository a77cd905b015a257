/**
 * The ticket high-water mark as etcd holds it: one key whose value is the highest ticket any
 * leader of the pool has reserved. `TicketMark` is the two etcd calls tickets.ts makes on it
 * (read it; raise it if it is unchanged), so that the sequence's decisions can be tested on a
 * stand-in; `etcdTicketMark` makes them on etcd.
 */
import type { ComparatorBuilder, Etcd3, IKeyValue } from 'etcd3';

/** The mark as read: its value and the revision of its last write (the guard of a raise). */
export interface StoredMark {
  value: bigint;
  modRevision: string;
}

export interface TicketMark {
  /**
   * Reads the mark: one linearizable range, bounded by the etcd call deadline. Undefined when
   * the key is absent (no ticket issued yet). Rejects when etcd fails or the value is damaged.
   */
  read(): Promise<StoredMark | undefined>;
  /**
   * Writes `to` in one transaction that commits only while the mark is still `expected`
   * (undefined: still absent) and, with a `term`, only while that term is the claim's revision
   * (fenced: a deposed leader writes nothing). Resolves whether it committed; rejects when
   * etcd fails.
   */
  raise(expected: StoredMark | undefined, to: bigint, term?: bigint): Promise<boolean>;
}

/**
 * The mark at `key` in etcd; `fenced(term)` starts a transaction guarded by the claim's
 * revision (`PoolElection.fenced`).
 */
export function etcdTicketMark(
  etcd: Etcd3,
  key: string,
  fenced: (term: bigint) => ComparatorBuilder,
): TicketMark {
  return {
    read: async () => storedMark((await etcd.get(key).exec()).kvs[0]),
    raise: async (expected, to, term) => {
      const revision = expected?.modRevision ?? 0;
      const guard =
        term === undefined
          ? etcd.if(key, 'Mod', '==', revision)
          : fenced(term).and(key, 'Mod', '==', revision);
      const result = await guard.then(etcd.put(key).value(to.toString())).commit();
      return result.succeeded;
    },
  };
}

/**
 * The mark in a key-value as etcd returns it (undefined: the key is absent). A damaged mark
 * must not restart the sequence at 0: it throws rather than let tickets repeat.
 */
export function storedMark(kv: IKeyValue | undefined): StoredMark | undefined {
  if (!kv) return undefined;
  const value = kv.value.toString();
  if (!/^\d{1,30}$/.test(value)) {
    throw new Error(`the ticket high-water mark holds "${value.slice(0, 40)}", not a number`);
  }
  return { value: BigInt(value), modRevision: kv.mod_revision };
}
