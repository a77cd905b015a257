/**
 * Leader strategies: pure, deterministic functions from the pool's valid members, sorted by
 * create revision (oldest first), to the member that should lead. Every member evaluates the
 * same function over the same etcd state, so they agree without talking to each other.
 */
import type { MemberView } from './poolView.js';

export interface StrategyContext {
  pool: string;
  /** The member key of the member evaluating the strategy. */
  self: string | undefined;
}

export type LeaderStrategy = (
  members: readonly MemberView[],
  context: StrategyContext,
) => MemberView | undefined;

/** The longest-registered member leads (the Elixir demo's "longest running"). */
export const oldest: LeaderStrategy = (members) => members[0];
