/**
 * Work routing (docs/design.md, "Work routing"): the local election view says who leads; a leader
 * executes, a follower forwards. Zero etcd requests per call.
 *
 * - No leader right now: hold the request until one is elected, up to `leaderlessWaitMs`,
 *   then NO_LEADER (503 with Retry-After).
 * - The leader answered "not leader" or could not be reached: nothing executed, so wait for
 *   the next leader or retry with backoff, bounded by the same wait in all; then NO_LEADER
 *   naming that leader, or LEADER_UNREACHABLE with its URL and the reason. A leader handing
 *   its claim over as it leaves names its successor in its "not leader": the request goes
 *   there at once, without waiting for the watch to show the handoff.
 * - A failure after the request may have executed is never retried: UPSTREAM_FAILED (502) or
 *   UPSTREAM_TIMEOUT (504).
 * - A request that was itself forwarded is never forwarded again: if this member is not the
 *   leader it answers NOT_LEADER (421) and the sender, which knows the client, re-routes —
 *   unless it is about to act under the term the sender saw (a claim handed to it whose watch
 *   event reached the sender first, or that its leaving holder named it the successor of;
 *   its own claim, committed, whose answer is still on its way): then it waits for that, at
 *   most VIEW_CATCH_UP_MS, and decides again.
 */
import type { Etcd3 } from 'etcd3';
import type { Logger } from 'pino';
import { candidates } from '../election/candidates.js';
import type { PoolElection } from '../election/election.js';
import {
  isNotLeader,
  isRetryable,
  LeaderUnreachableError,
  NoLeaderError,
  NotLeaderError,
  PoolError,
  type MemberAddress,
} from '../errors.js';
import { backoffDelayMs, type BackoffSchedule } from '../util/backoff.js';
import { monotonicNow } from '../util/time.js';
import { unlessAborted } from '../util/abortable.js';
import { forWorkRoute, warmWorkRoutes, type WorkRoute } from '../etcd/requestPurpose.js';
import type { PoolMetrics } from '../metrics/metrics.js';
import { UpstreamUnreachableError, type Forwarder, type UpstreamAnswer } from './forwarder.js';
import type { WorkHandler } from './handler.js';
import { Supersession } from './supersession.js';
import type { TicketSequence } from './tickets.js';

/** Why a forward was tried again: the `reason` label of service_pool_forward_retries_total. */
const FORWARD_RETRY_REASONS = ['unreachable', 'not_leader'] as const;

/**
 * How long to wait for the view to move before asking a leader that refused or could not be
 * reached again: 25 ms doubling to 1 s (a wait for a view change, which may end it earlier).
 */
const FORWARD_RETRY_BACKOFF: BackoffSchedule = { initialMs: 25, maxMs: 1000 };

/** How long a superseded leader may still take to answer a forward before it is abandoned. */
const SUPERSEDED_GRACE_MS = 500;

/**
 * How long a member that does not lead holds a forward naming a term it is about to act under
 * before it answers "not leader": ms, a watch event's or a transaction answer's delay on a busy
 * machine, with room to spare.
 */
const VIEW_CATCH_UP_MS = 250;

export interface IncomingWork {
  payload: unknown;
  /** The client's JSON body as received (UTF-8), which a forward sends on as it is. */
  body?: Buffer | undefined;
  /** Member ids the request already passed through (empty from a client). */
  via: string[];
  /** Forwards so far; 0 from a client. */
  hops: number;
  /** The term the forwarding member believed current (forwarded requests only). */
  termSeen?: bigint;
}

/**
 * The answer to a work request: the handler's value when this member executed it, or the
 * leader's answer, bytes and all, when it forwarded it.
 */
export type WorkOutcome =
  | { role: 'leader'; status: number; body: unknown }
  | { role: 'follower'; status: number; relayed: UpstreamAnswer };

export interface WorkRouterOptions {
  leaderlessWaitMs: number;
  maxHops: number;
  /** FORWARD_TIMEOUT_MS: how long a member's forward may take (ms). */
  forwardTimeoutMs: number;
}

export class WorkRouter {
  /** Leader URLs found unreachable and not reached since, with why; each is logged once. */
  private readonly unreachable = new Map<string, string>();
  /** Abandons the forwards to a leader once superseded, after SUPERSEDED_GRACE_MS. */
  private readonly supersession: Supersession;
  /** The label set of `forwardDuration`, made once (prom-client's timer merges one per call). */
  private readonly forwardLabels: { pool: string };

  constructor(
    private readonly etcd: Etcd3,
    private readonly election: PoolElection,
    private readonly handler: WorkHandler,
    private readonly tickets: TicketSequence,
    private readonly forwarder: Forwarder,
    private readonly options: WorkRouterOptions,
    private readonly metrics: PoolMetrics,
    private readonly logger: Logger,
  ) {
    this.supersession = new Supersession(election, SUPERSEDED_GRACE_MS);
    this.forwardLabels = { pool: election.pool };
    warmWorkRoutes();
    election.on('change', () => this.keepNextLeadersWarm());
    // Every series from the start at 0: a dashboard panel draws 0, not "No data".
    const pool = election.pool;
    for (const reason of FORWARD_RETRY_REASONS) metrics.forwardRetries.inc({ pool, reason }, 0);
    metrics.forwardDuration.zero({ pool });
    metrics.forwardsRefused.inc({ pool }, 0);
  }

  /**
   * Executes `work` here or forwards it to the leader. Waits for a usable leader at most
   * LEADERLESS_WAIT_MS in all, whatever stands in the way (no claim yet, a leader that answers
   * "not leader", a leader that cannot be reached), retrying with backoff (25 ms doubling to
   * 1 s, from 25 ms again for each new leader) while the view does not move — except that the
   * successor a leaving leader names is asked at once; `abort` (the client went away) ends the
   * wait early — asked for only when there is a wait (it may be made on the first call).
   * Then NO_LEADER or LEADER_UNREACHABLE, saying what happened.
   */
  async route(
    work: IncomingWork,
    waitSignal?: () => AbortSignal,
    purpose: WorkRoute = 'work',
  ): Promise<WorkOutcome> {
    if (work.hops > this.options.maxHops) {
      throw new PoolError(
        'HOP_LIMIT_EXCEEDED',
        `request passed ${work.hops} hops; the limit is ${this.options.maxHops}`,
      );
    }
    const startedAt = monotonicNow();
    const deadline = startedAt + this.options.leaderlessWaitMs;
    const forwarded = work.hops > 0;
    // What stood in the way last: the answer names it.
    let lastFailure: { id: string; url: string; term: bigint; unreachable?: string } | undefined;
    // Each round executes here or forwards once; a round that certainly did not execute (not
    // leader, unreachable) waits for the view to move, or a backoff, then tries again.
    // Retries against one leader term back off; a new leader starts the backoff over.
    let backoffTerm: bigint | undefined;
    // The member a leaving leader named as its successor, with the term it hands over: the
    // next round forwards there at once instead of waiting for our watch to show the handoff.
    // Followed once per request: a successor that refuses too leaves the wait to the view.
    let named: (MemberAddress & { term: bigint; self: false }) | undefined;
    let followedNamed = false;
    for (let retries = 0; ; ) {
      const term = this.election.term;
      let tried: bigint | undefined;
      let patienceMs = Infinity;
      if (term !== undefined) {
        if (forwarded && work.termSeen !== undefined && work.termSeen > term) {
          throw new NotLeaderError('the sender has seen a newer term');
        }
        try {
          return await this.execute(work, term, purpose);
        } catch (error) {
          if (!isNotLeader(error) || forwarded) throw error;
          this.logger.info('leadership lost during execution; re-routing');
          tried = term;
        }
      } else if (forwarded) {
        if (await this.caughtUp(work.termSeen)) continue;
        throw this.notLeader(work.termSeen);
      } else {
        const seen = this.election.leader();
        // A successor named by the leaver serves only once the handoff reached it; a view
        // that moved on already says who leads.
        const leader = named !== undefined && seen?.term === named.term ? named : seen;
        const fromView = leader === seen;
        if (!fromView) followedNamed = true;
        named = undefined;
        if (!leader || leader.self) {
          const remaining = deadline - monotonicNow();
          const abort = waitSignal?.();
          if (remaining <= 0 || abort?.aborted) break;
          // Whole milliseconds, rounded up: a timer may fire a fraction early, and the
          // answer must not come before the full wait. Not elected yet: the loop looks again.
          await unlessAborted(this.election.waitFor(hasUsableLeader, Math.ceil(remaining)), abort);
          continue; // waiting for a first leader is no retry
        }
        try {
          const relayed = await this.forward(work, leader, fromView);
          this.unreachable.delete(leader.url);
          return { role: 'follower', status: relayed.status, relayed };
        } catch (error) {
          // Only "not leader" and "never sent" are retryable here: they did not execute.
          if (!isRetryable(error)) throw error;
          const unreachable = error instanceof UpstreamUnreachableError ? error : undefined;
          const reason: (typeof FORWARD_RETRY_REASONS)[number] = unreachable
            ? 'unreachable'
            : 'not_leader';
          this.metrics.forwardRetries.inc({ pool: this.election.pool, reason });
          if (unreachable) this.reportUnreachable(leader, unreachable.reason);
          tried = leader.term;
          const successor =
            fromView && !followedNamed && error instanceof NotLeaderError
              ? this.registeredSuccessor(error.successor)
              : undefined;
          if (fromView) {
            lastFailure = {
              ...leader,
              ...(unreachable ? { unreachable: unreachable.reason } : {}),
            };
          }
          if (successor) {
            // Asked at once, the wait below being none: the deadline and the client still
            // bound it.
            named = { ...successor, term: leader.term, self: false };
            patienceMs = 0;
          } else {
            if (leader.term !== backoffTerm) {
              backoffTerm = leader.term;
              retries = 0;
            }
            // That leader may just not have seen its own claim's answer yet, or its successor
            // may be about to claim: ask again soon, then less often.
            patienceMs = backoffDelayMs(FORWARD_RETRY_BACKOFF, retries++);
          }
        }
      }
      const remaining = deadline - monotonicNow();
      const abort = waitSignal?.();
      if (remaining <= 0 || abort?.aborted) break;
      // No wait at all (not even a timer's tick) when a successor was named.
      if (patienceMs === 0) continue;
      await unlessAborted(
        this.election.waitFor(
          (e) => hasUsableLeader(e) && currentTerm(e) !== tried,
          Math.ceil(Math.min(remaining, patienceMs)),
        ),
        abort,
      );
      if (abort?.aborted) break;
    }
    // Shutdown ends the wait with the answer it wants given (see HttpAppOptions.stopHolding).
    const abort = waitSignal?.();
    if (abort?.reason instanceof PoolError) throw abort.reason;
    const waitedMs = Math.floor(monotonicNow() - startedAt);
    if (lastFailure?.unreachable !== undefined) {
      throw new LeaderUnreachableError(waitedMs, {
        ...lastFailure,
        reason: lastFailure.unreachable,
      });
    }
    throw new NoLeaderError(waitedMs, lastFailure);
  }

  /**
   * Waits while this member, not leading, is about to act under `termSeen`, the claim's
   * revision the sender of a forward saw, at most VIEW_CATCH_UP_MS or half the forward timeout
   * (short enough to need no cancelling: a sender that goes away meanwhile only leaves an
   * answer unread). About to act:
   * - its view has not reached `termSeen` yet (a successor learns of a claim handed to it from
   *   its own watch, and the sender's may deliver it first);
   * - the claim there is its own and the answer to its claim's transaction is still on its
   *   way (a restart takeover) — not a leaver's own claim, which the view shows until the
   *   handoff's watch event;
   * - the claim there is another member's, at `termSeen`: that member, leaving, named us its
   *   successor (`notLeader`), and its handoff has yet to reach us.
   * Answered "not leader" then, the sender would wait out its retry backoff — 25 ms and more,
   * up to 1 s after a long wait — for a view change that came already, or is about to. True
   * when the wait ended that way: decide again. Blocks only its caller.
   */
  private async caughtUp(termSeen: bigint | undefined): Promise<boolean> {
    const pending = (election: PoolElection) => {
      if (termSeen === undefined || election.term !== undefined) return false;
      // Ours, let go (left, resigned, handed over): the answer is now, naming the successor.
      if (election.released(termSeen)) return false;
      if (election.view.revision < termSeen || election.awaitsOwnClaim(termSeen)) return true;
      // The claim the sender saw is another member's: only its holder, handing it to us as
      // it leaves, sends a forward here under that term (`notLeader`).
      const claim = election.leader();
      return claim !== undefined && !claim.self && claim.term === termSeen;
    };
    if (!pending(this.election)) return false;
    // Well within the sender's forward timeout (the same setting on every member), so that
    // its answer is a retryable 421 and not a timeout.
    const boundMs = Math.min(VIEW_CATCH_UP_MS, this.options.forwardTimeoutMs / 2);
    await this.election.waitFor((election) => !pending(election), boundMs);
    return !pending(this.election);
  }

  /**
   * The successor a leaving leader named, if our view has it as a member that may lead, at
   * that URL, and not ourselves: work goes only to URLs registered in etcd, never to one an
   * answer made up.
   */
  private registeredSuccessor(named: MemberAddress | undefined): MemberAddress | undefined {
    if (named === undefined) return undefined;
    const self = this.election.memberKey;
    const registered = candidates(this.election.view.members).some(
      (m) => m.key !== self && m.record.id === named.id && m.record.url === named.url,
    );
    return registered ? named : undefined;
  }

  /**
   * "Not leader", naming the member we are handing the claim of `termSeen` to as we leave, if
   * we are: the sender forwards there at once, under that term, and the successor holds it
   * until the handoff reaches it (`caughtUp`).
   */
  private notLeader(termSeen: bigint | undefined): NotLeaderError {
    const successor = termSeen === undefined ? undefined : this.election.successorOf(termSeen);
    if (successor === undefined) return new NotLeaderError();
    return new NotLeaderError(`this member is handing the leadership to ${successor.id}`, {
      successor,
    });
  }

  /**
   * Keeps a connection open to the leader and to the member next in line (the oldest other
   * candidate, who takes over when the leader leaves), so that the first forward to a new
   * leader, in the middle of a handover, does not wait for a connect (~3 ms here).
   */
  private keepNextLeadersWarm(): void {
    const leader = this.election.leader();
    if (leader?.self) {
      this.forwarder.keepWarm([]);
      return;
    }
    const self = this.election.memberKey;
    const next = candidates(this.election.view.members).find(
      (member) => member.key !== self && member.key !== leader?.memberKey,
    );
    const urls = [...(leader ? [leader.url] : []), ...(next ? [next.record.url] : [])];
    this.forwarder.keepWarm(urls);
  }

  /** Why `url` could not be reached at the last forward to it; undefined if it could. */
  unreachableReason(url: string): string | undefined {
    return this.unreachable.get(url);
  }

  /**
   * Logs once per leader URL that it cannot be reached, with the reason; again only after a
   * forward to it succeeded.
   */
  private reportUnreachable(leader: { id: string; url: string; term: bigint }, reason: string) {
    const known = this.unreachable.has(leader.url);
    this.unreachable.set(leader.url, reason);
    if (known) return;
    this.logger.warn(
      { leader: leader.id, url: leader.url, term: leader.term.toString(), reason },
      'the leader cannot be reached at its advertised URL; check its ADVERTISE_URL and the network between members',
    );
  }

  /**
   * The Elixir demo's naive path, kept to be compared with `route`: every call reads the
   * members from etcd and sends the work to the oldest that may lead — one etcd range per
   * call, visible in `service_pool_etcd_requests_total`. It ignores the claim, so right after
   * a change the oldest may not lead yet; a "not leader" or unreachable answer falls back to
   * `route`.
   */
  async routeSimply(work: IncomingWork): Promise<WorkOutcome> {
    const purpose = 'simple-work';
    if (work.hops > 0) return this.route(work, undefined, purpose);
    // Its one etcd request, counted for the route here: the forward that follows makes none.
    this.metrics.workEtcdRequests.inc({ route: purpose });
    const [oldest] = candidates(await this.election.view.readMembers());
    if (!oldest) throw new NoLeaderError(0);
    if (oldest.key === this.election.memberKey) return this.route(work, undefined, purpose);
    try {
      // The claim's term when the oldest holds it; 0 (unknown) otherwise, which the
      // superseded-forward grace ignores.
      const claim = this.election.leader();
      const term = claim?.memberKey === oldest.key ? claim.term : 0n;
      const relayed = await this.forward(work, {
        id: oldest.record.id,
        url: oldest.record.url,
        term,
      });
      return { role: 'follower', status: relayed.status, relayed };
    } catch (error) {
      if (!isRetryable(error)) throw error;
      return this.route(work, undefined, purpose);
    }
  }

  /**
   * Executes `work` here under `term`. The etcd requests made on the way — the ticket blocks,
   * the handler's own — count for `purpose` (requestPurpose.ts): only here, so that a member
   * that only forwards never pays for the async context that attribution rides on.
   */
  private async execute(
    work: IncomingWork,
    term: bigint,
    purpose: WorkRoute,
  ): Promise<WorkOutcome> {
    const { election, tickets } = this;
    const body = await forWorkRoute(purpose, () =>
      this.handler(
        { payload: work.payload, via: [...work.via, election.memberId] },
        {
          pool: election.pool,
          memberId: election.memberId,
          term,
          nextTicket: () => tickets.next(term),
          etcd: this.etcd,
          fencedWrite: async (...operations) =>
            (
              await election
                .fenced(term)
                .then(...operations)
                .commit()
            ).succeeded,
        },
      ),
    );
    return { role: 'leader', status: 200, body };
  }

  /**
   * Forwards to `leader`. If another member claims leadership while the forward is in flight
   * and the old leader still has not answered `SUPERSEDED_GRACE_MS` later, it is frozen or
   * cut off: the forward is abandoned (502, as it may have executed) instead of hanging until
   * the forward timeout. A leader that is merely handing over answers well within the grace.
   */
  private async forward(
    work: IncomingWork,
    leader: { id: string; url: string; term: bigint },
    fromView = true,
  ) {
    const startedAt = monotonicNow();
    try {
      const answer = await this.forwarder.forward(
        leader,
        {
          pool: this.election.pool,
          payload: work.payload,
          body: work.body,
          hops: work.hops,
          via: [...work.via, this.election.memberId],
        },
        // A successor named by the leaver is the claim of a newer term: never abandoned as
        // that term's superseded leader.
        fromView ? this.supersession.of(leader.term) : undefined,
      );
      // Any answer from the leader is a sign of life (it dates a crash failover).
      if (fromView && leader.term !== 0n) this.election.leaderAnswered(leader.term);
      return answer;
    } finally {
      const seconds = (monotonicNow() - startedAt) / 1000;
      this.metrics.forwardDuration.observe(this.forwardLabels, seconds);
    }
  }
}

function currentTerm(election: PoolElection): bigint | undefined {
  return election.term ?? election.leader()?.term;
}

/** A leader this member can use: itself as acting leader, or another member's claim. */
function hasUsableLeader(election: PoolElection): boolean {
  if (election.isLeader()) return true;
  const leader = election.leader();
  return leader !== undefined && !leader.self;
}
