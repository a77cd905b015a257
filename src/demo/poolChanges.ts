/**
 * What changed between two views of the pools, in the demo's words: members that left,
 * joined or registered again, and leader changes — with how long after the demo's last
 * action (`kill a`, `stop a`, `resign`) they were seen, which is the point of the experiments:
 * a kind shutdown hands over in milliseconds, a crash only after the lease TTL.
 */
import type { PoolDescription } from '../client/answers.js';

/** The pool a member joins when POOL is unset; named in the lines only when it is another. */
const DEFAULT_POOL = 'default';
/** An action older than this is not what caused a change. */
const ACTION_RELEVANCE_MS = 60_000;

export interface PoolChange {
  line: string;
  /** A leader change, rather than a member coming or going. */
  leader: boolean;
  /** The member that left, for a member leaving. */
  departed?: string;
}

/** A pool's leader as the lines name it. */
interface Leadership {
  id: string;
  term: number | null;
}

/**
 * The changes from `before` to `after`, one line each; pools absent from `after` are skipped.
 * `formerLeaders` holds each pool's last leader before `after`, so that a leader elected after
 * a leaderless moment is still shown with the one it replaced.
 */
export function describeChanges(
  before: PoolDescription[],
  after: PoolDescription[],
  formerLeaders: ReadonlyMap<string, Leadership> = new Map(),
): PoolChange[] {
  const changes: PoolChange[] = [];
  for (const pool of after) {
    const previous = before.find((p) => p.pool === pool.pool);
    const where = pool.pool === DEFAULT_POOL ? 'the pool' : `pool ${pool.pool}`;
    const leaderOf = pool.pool === DEFAULT_POOL ? 'leader' : `leader of ${pool.pool}`;
    if (previous === undefined) {
      changes.push({ line: `${leaderOf}: ${leaderName(pool)}`, leader: true });
      continue;
    }
    const now = new Map(pool.members.map((member) => [member.id, member]));
    const then = new Map(previous.members.map((member) => [member.id, member]));
    for (const member of previous.members) {
      if (!now.has(member.id)) {
        changes.push({ line: `${member.id} left ${where}`, leader: false, departed: member.id });
      }
    }
    for (const member of pool.members) {
      const earlier = then.get(member.id);
      if (earlier === undefined) {
        changes.push({ line: `${member.id} joined ${where}`, leader: false });
      } else if (earlier.memberKey !== member.memberKey) {
        changes.push({
          line: `${member.id} registered again in ${where} (now the youngest)`,
          leader: false,
        });
      }
    }
    if (previous.leader?.memberKey !== pool.leader?.memberKey || previous.term !== pool.term) {
      const former = leadershipOf(previous) ?? formerLeaders.get(pool.pool);
      const sameId = former !== undefined && former.id === pool.leader?.id;
      const was =
        former === undefined ? '' : `, was ${former.id}${sameId ? ` (term ${former.term})` : ''}`;
      changes.push({ line: `${leaderOf}: ${leaderName(pool)}${was}`, leader: true });
    }
  }
  return changes;
}

function leadershipOf(pool: PoolDescription): Leadership | undefined {
  return pool.leader === null ? undefined : { id: pool.leader.id, term: pool.term };
}

function leaderName(pool: PoolDescription): string {
  return pool.leader === null ? 'none' : `${pool.leader.id} (term ${pool.term})`;
}

/**
 * Keeps the last view and reports each change once, as it is seen. Leader changes name the
 * last action and how long ago it was: `leader: b (term 9), was a — 0.2 s after stop a`. A
 * member that leaves without an action of its own (stopped from another shell) becomes the
 * action: what follows is timed from its leaving, not from an unrelated command before it.
 */
export class PoolChangeReporter {
  private last: PoolDescription[];
  private readonly formerLeaders = new Map<string, Leadership>();
  private action: { label: string; at: number; subject?: string } | undefined;

  constructor(
    initial: PoolDescription[],
    private readonly report: (change: PoolChange) => void,
  ) {
    this.last = [];
    this.remember(initial);
  }

  /**
   * An action, e.g. `kill a` (subject `a`), or an exit seen from outside; changes seen
   * afterwards are timed from it.
   */
  noteAction(label: string, subject?: string): void {
    this.action = { label, at: Date.now(), ...(subject === undefined ? {} : { subject }) };
  }

  observe(pools: PoolDescription[]): void {
    const changes = describeChanges(this.last, pools, this.formerLeaders);
    this.remember(pools);
    for (const change of changes) {
      if (change.departed !== undefined && this.action?.subject !== change.departed) {
        this.noteAction(`${change.departed} left`, change.departed);
      }
      const action = this.action;
      const elapsedMs = action === undefined ? Infinity : Date.now() - action.at;
      const after =
        change.leader && action !== undefined && elapsedMs <= ACTION_RELEVANCE_MS
          ? ` — ${(elapsedMs / 1000).toFixed(1)} s after ${action.label}`
          : '';
      this.report({ ...change, line: `${change.line}${after}` });
    }
  }

  /** Pools a snapshot does not show keep their last known state. */
  private remember(pools: PoolDescription[]): void {
    this.last = [...pools, ...this.last.filter((p) => !pools.some((q) => q.pool === p.pool))];
    for (const pool of pools) {
      const leadership = leadershipOf(pool);
      if (leadership !== undefined) this.formerLeaders.set(pool.pool, leadership);
    }
  }
}
