/**
 * The etcd key layout of one pool (docs/design.md, "etcd layout"). The members prefix matches
 * etcd's own election recipe, `concurrency.NewElection(session, "<P>/pools/<pool>/members")`,
 * which puts `<prefix>/<lease id in lowercase hex>`: `etcdctl elect -l` then names the same
 * member as our `oldest` strategy.
 */
export interface PoolKeys {
  /** ETCD_PREFIX, under which every pool lives. */
  readonly prefix: string;
  /** Everything of this pool: members, claim and state. Watched as one range. */
  readonly pool: string;
  readonly membersPrefix: string;
  readonly leader: string;
  readonly statePrefix: string;
  readonly ticketHighWater: string;
  /** The last release note: why the last released claim ended (see election/failover.ts). */
  readonly released: string;
  member(leaseId: string): string;
}

export function poolKeys(prefix: string, pool: string): PoolKeys {
  const poolPrefix = `${prefix}/pools/${pool}/`;
  const membersPrefix = `${poolPrefix}members/`;
  return {
    prefix,
    pool: poolPrefix,
    membersPrefix,
    leader: `${poolPrefix}leader`,
    statePrefix: `${poolPrefix}state/`,
    ticketHighWater: `${poolPrefix}state/tickets`,
    released: `${poolPrefix}state/released`,
    member: (leaseId) => `${membersPrefix}${leaseIdHex(leaseId)}`,
  };
}

/** etcd3 reports lease ids as decimal strings; keys use etcd's `%x` form. */
export function leaseIdHex(leaseId: string): string {
  return BigInt(leaseId).toString(16);
}
