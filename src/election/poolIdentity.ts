/**
 * What the members of a pool must agree on: which service they run, and how they choose
 * their leader. Members that share an etcd, an ETCD_PREFIX and a POOL are one pool whatever
 * code they run, so two services left at the defaults would elect one leader between them
 * and run each other's work. Each record names its service (SERVICE_NAME) and its strategy;
 * records of earlier versions name neither.
 *
 * The pool belongs to the service of its oldest member that names one. A member of another
 * service does not join it: at start-up it finds the pool taken and stops with a
 * `ServiceConflictError`; and when members of two services register at the same moment, both
 * past that check, the one registered later (the higher create revision) sees the other and
 * withdraws — a rule every member applies alike from its view of the pool, so exactly one
 * service stays. A record that names no service neither causes nor suffers a refusal.
 */
import { PoolError } from '../errors.js';
import type { MemberView } from './poolView.js';

/** The member whose service is the pool's: its oldest member that names one. */
export function poolServiceMember(members: readonly MemberView[]): MemberView | undefined {
  return members.find((member) => member.record.service !== undefined);
}

/**
 * The member whose strategy is the pool's: its oldest member that names one. Each member
 * decides with its own strategy; one whose strategy differs from this disagrees with the pool
 * about who should lead (it warns, and /pool shows it).
 */
export function poolStrategyMember(members: readonly MemberView[]): MemberView | undefined {
  return members.find((member) => member.record.strategy !== undefined);
}

/** Whether `strategy` differs from the pool's `poolStrategy`; never when either is unknown. */
export function strategyDiffers(
  strategy: string | undefined,
  poolStrategy: string | undefined,
): boolean {
  return strategy !== undefined && poolStrategy !== undefined && strategy !== poolStrategy;
}

/** Whether `member` runs the service `service`, as far as its record says (none: it may). */
export function runsService(member: MemberView, service: string | undefined): boolean {
  return (
    member.record.service === undefined ||
    service === undefined ||
    member.record.service === service
  );
}

/**
 * A member of service A found pool P taken by service B. The message names both services,
 * the pool, the prefix and the fix; the CLI prints it and exits 1.
 */
export class ServiceConflictError extends PoolError {
  declare readonly code: 'SERVICE_CONFLICT';
  constructor(
    readonly conflict: {
      pool: string;
      prefix: string;
      /** This member's service. */
      service: string;
      /** The pool's service, and the member that holds it (its oldest naming one). */
      poolService: string;
      member: string;
      createRevision: bigint;
    },
  ) {
    const { pool, prefix, service, poolService, member, createRevision } = conflict;
    super(
      'SERVICE_CONFLICT',
      `cannot join pool "${pool}" under ETCD_PREFIX ${prefix}: it belongs to service "${poolService}" (member ${member}, registered at revision ${createRevision}), and this member runs service "${service}". Give each service its own POOL or its own ETCD_PREFIX; if both are one service, give them the same SERVICE_NAME`,
    );
    this.name = 'ServiceConflictError';
  }
}

/** Whether `error` is a ServiceConflictError (code `SERVICE_CONFLICT`): the pool is another service's. */
export function isServiceConflict(error: unknown): error is ServiceConflictError {
  return error instanceof ServiceConflictError;
}

/**
 * The conflict, if `members` (oldest first, ours among them or not yet) belong to another
 * service than `self.service`; undefined when they are ours, name none, or we name none.
 */
export function serviceConflict(
  members: readonly MemberView[],
  self: { service: string | undefined; pool: string; prefix: string },
): ServiceConflictError | undefined {
  if (self.service === undefined) return undefined;
  const owner = poolServiceMember(members);
  if (!owner || runsService(owner, self.service)) return undefined;
  return new ServiceConflictError({
    pool: self.pool,
    prefix: self.prefix,
    service: self.service,
    poolService: owner.record.service!,
    member: owner.record.id,
    createRevision: owner.createRevision,
  });
}

/** What the start-up check needs of an election (`PoolElection`). */
export interface ServiceCheck {
  view: { readMembers(): Promise<MemberView[]> };
  serviceConflict(members: readonly MemberView[]): ServiceConflictError | undefined;
}

/**
 * The first pool of `elections` that belongs to another service, from one read of each, made
 * before registering. A failed read is left to the election, which checks again once
 * registered.
 */
export async function firstServiceConflict(
  elections: readonly ServiceCheck[],
): Promise<ServiceConflictError | undefined> {
  for (const election of elections) {
    const members = await election.view.readMembers().catch(() => []);
    const conflict = election.serviceConflict(members);
    if (conflict) return conflict;
  }
  return undefined;
}
