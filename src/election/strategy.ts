/**
 * Leader strategies: pure, deterministic functions from the pool's members that may lead
 * (candidates.ts), sorted by create revision (oldest first), to the member that should lead.
 * Every member evaluates the same function over the same etcd state, so they agree without
 * talking to each other — as long as every member of a pool is configured with the same
 * strategy (each record says its own; strategyAgreement.ts warns when they differ).
 *
 * - `oldest`: the longest-registered member (the Elixir demo's "longest running").
 * - `weighted`: the biggest declared weight ("prefer the big machine"), ties to the oldest.
 * - `avoid`: members without the avoided labels and not already leading the avoided pools
 *   ("run on a different node than service Y"), ties to the oldest; if every member is to be
 *   avoided, the oldest — the pool still gets a leader on a single node.
 * - `module`: a user's `selectLeader(members, context)` (the Elixir demo's "externally define
 *   the function that selects the leader"); see `loadModuleStrategy`.
 *
 * `preempt` says whether a better member that joins takes leadership over (after a hold-down,
 * see the election). `oldest` never needs to: a member that joins is always the youngest.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { PoolError } from '../errors.js';
import type { MemberView } from './poolView.js';

/** What a strategy knows besides the members: the pool, and which member is asking. */
export interface StrategyContext {
  pool: string;
  /** The member key of the member evaluating the strategy. */
  self: string | undefined;
}

export type SelectLeader = (
  members: readonly MemberView[],
  context: StrategyContext,
) => MemberView | undefined;

/**
 * Who should lead a pool: `oldest`, `weighted`, `avoid(...)`, `loadModuleStrategy(path)`, or
 * an object of your own. `select` must be a pure, synchronous, deterministic function of the
 * members (candidates only, oldest first): every member runs it on the same state and they
 * agree without talking. Pass it as `PoolMember.start({ strategy })`.
 */
export interface LeaderStrategy {
  /** Its name, as member records and /pool show it. */
  name: string;
  /** The member that should lead, or undefined for none. */
  select: SelectLeader;
  /**
   * Whether a better member that joins takes leadership over, once preferred for
   * PREEMPT_AFTER_MS (milliseconds); `oldest` never needs to.
   */
  preempt: boolean;
  /**
   * The settings that decide whom it chooses, as text (`avoid`: the labels and pools avoided;
   * a module: a digest of its file). Two members agree on who should lead when their
   * strategies have the same name and settings: see `describeStrategy`.
   */
  settings?: string;
}

/**
 * What a member record says of its strategy: `oldest`, `weighted`,
 * `avoid(labels: disk=busy; pools: none)`, `module(sha256:…)`. Members of a pool should
 * all say the same (poolIdentity.ts).
 */
export function describeStrategy(strategy: LeaderStrategy): string {
  return strategy.settings === undefined ? strategy.name : `${strategy.name}(${strategy.settings})`;
}

/** The default: the longest-registered member leads; it never preempts. */
export const oldest: LeaderStrategy = {
  name: 'oldest',
  select: (members) => members[0],
  preempt: false,
};

/** The member with the biggest WEIGHT leads, ties to the oldest; it preempts. */
export const weighted: LeaderStrategy = {
  name: 'weighted',
  // Strictly greater: among equal weights the first (oldest) stays.
  select: (members) =>
    members.reduce<MemberView | undefined>(
      (best, member) => (!best || member.record.weight > best.record.weight ? member : best),
      undefined,
    ),
  preempt: true,
};

/**
 * Prefers members without the `labels` given (`k: v`, or `k: ''` for any value) and not
 * already leading the `pools` given, ties to the oldest; when every member is to be avoided,
 * the oldest leads. It preempts.
 */
export function avoid(options: {
  labels: Readonly<Record<string, string>>;
  pools: readonly string[];
}): LeaderStrategy {
  const avoided = (member: MemberView, pool: string) =>
    Object.entries(options.labels).some(
      ([key, value]) =>
        member.record.labels[key] !== undefined &&
        (value === '' || member.record.labels[key] === value),
    ) || member.record.leads.some((led) => led !== pool && options.pools.includes(led));
  const labels = Object.entries(options.labels)
    .map(([key, value]) => (value === '' ? key : `${key}=${value}`))
    .sort();
  const pools = [...options.pools].sort();
  return {
    name: 'avoid',
    select: (members, context) => members.find((m) => !avoided(m, context.pool)) ?? members[0],
    preempt: true,
    settings: `labels: ${labels.join(',') || 'none'}; pools: ${pools.join(',') || 'none'}`,
  };
}

/** What a strategy module sees of a member: plain data, no etcd types. */
export interface StrategyMember {
  id: string;
  memberKey: string;
  url: string;
  createRevision: number;
  startedAt: string;
  weight: number;
  labels: Record<string, string>;
  leads: string[];
}

/** Why the strategy's choice was not used: the `reason` label of service_pool_strategy_fallbacks_total. */
export const FALLBACK_REASONS = ['threw', 'slow', 'not_a_member'] as const;
export type FallbackReason = (typeof FALLBACK_REASONS)[number];

export class StrategyFallback extends PoolError {
  declare readonly code: 'STRATEGY_FALLBACK';
  constructor(
    readonly reason: FallbackReason,
    message: string,
  ) {
    super('STRATEGY_FALLBACK', message);
    this.name = 'StrategyFallback';
  }
}

/** A module's `selectLeader` must answer within this; a slower answer is not used. */
export const MODULE_BUDGET_MS = 50;

/**
 * Loads a user's module exporting `selectLeader(members, context)`. It gets the members as
 * plain objects, oldest first, and returns one of them (or its `memberKey` or `id`). It must be
 * synchronous and quick. If it throws, takes longer than `MODULE_BUDGET_MS`, or returns
 * anything else, `select` throws a `StrategyFallback` and the election uses `oldest` instead.
 */
export async function loadModuleStrategy(path: string): Promise<LeaderStrategy> {
  // Members agree when their modules do, wherever each one's file lies.
  const digest = createHash('sha256')
    .update(await readFile(path))
    .digest('hex')
    .slice(0, 16);
  const loaded = (await import(pathToFileURL(path).href)) as { selectLeader?: unknown };
  const selectLeader = loaded.selectLeader;
  if (typeof selectLeader !== 'function') {
    throw new Error(
      `STRATEGY_MODULE ${path} does not export a function selectLeader(members, context)`,
    );
  }
  return {
    name: 'module',
    preempt: true,
    settings: `sha256:${digest}`,
    select: (members, context) => {
      const plain = members.map(toStrategyMember);
      const startedAt = performance.now();
      let answer: unknown;
      try {
        answer = (selectLeader as (m: StrategyMember[], c: StrategyContext) => unknown)(plain, {
          ...context,
        });
      } catch (error) {
        throw new StrategyFallback(
          'threw',
          `selectLeader threw: ${error instanceof Error ? error.message : String(error)}`,
        );
      }
      const tookMs = performance.now() - startedAt;
      if (tookMs > MODULE_BUDGET_MS) {
        throw new StrategyFallback(
          'slow',
          `selectLeader took ${Math.round(tookMs)} ms (budget ${MODULE_BUDGET_MS} ms)`,
        );
      }
      const chosen = members.find(
        (m, i) =>
          answer === plain[i] ||
          answer === m.key ||
          answer === m.record.id ||
          (typeof answer === 'object' &&
            answer !== null &&
            (answer as { memberKey?: unknown }).memberKey === m.key),
      );
      if (members.length > 0 && !chosen) {
        throw new StrategyFallback(
          'not_a_member',
          'selectLeader returned something that is not one of the members',
        );
      }
      return chosen;
    },
  };
}

function toStrategyMember(member: MemberView): StrategyMember {
  return {
    id: member.record.id,
    memberKey: member.key,
    url: member.record.url,
    createRevision: Number(member.createRevision),
    startedAt: member.record.startedAt,
    weight: member.record.weight,
    labels: { ...member.record.labels },
    leads: [...member.record.leads],
  };
}
