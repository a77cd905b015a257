/**
 * Graceful shutdown of a member — SIGTERM or SIGINT to the CLI (`kubectl delete pod`), or a
 * library user calling `PoolMember.shutdown` — bounded by SHUTDOWN_TIMEOUT_MS. In order:
 *
 * 1. /readyz turns 503 and every answer says `Connection: close`; the etcd membership check
 *    and the etcd explanation (etcd/diagnosis.ts) stop;
 * 2. the member leaves every election: its claim is handed to the successor and its member key
 *    deleted in one transaction, so the successor leads on the watch event (when that does not
 *    commit, claim and key are deleted together and the successor claims);
 * 3. it lingers SHUTDOWN_LINGER_MS, still answering (forwards get 421, client calls are
 *    forwarded to the new leader), so that peers stop using its connections before they close
 *    (design-choices.md, "Shutdown");
 * 4. it ends the status page's event streams and waits for in-flight requests to drain (with
 *    `serve: false`, those that reached the member's routes);
 * 5. it closes the server and every remaining connection (a member whose routes the library
 *    user serves has no server: its user closes theirs);
 * 6. it closes the elections, which revokes the leases.
 *
 * Just before the bound, the last calls answer every request still open (`LastCalls`). Done
 * or cut short, the remaining connections are then cut and the forwarder, the keep-alive
 * thread and the etcd client closed.
 */
import { setMaxListeners } from 'node:events';
import type http from 'node:http';
import type { Etcd3 } from 'etcd3';
import type { Logger } from 'pino';
import type { PoolElection } from '../election/election.js';
import { sleep } from '../util/time.js';
import { PoolError } from '../errors.js';
import type { InFlightRequests } from '../http/inFlight.js';
import { closeServer } from '../http/server.js';
import type { StatusRouter } from '../http/statusPage/statusPage.js';
import { monotonicNow } from '../util/time.js';
import type { LeaseThread } from '../membership/leaseThread.js';
import type { LinkServer } from '../http/linkServer.js';
import type { Forwarder } from '../work/forwarder.js';

/**
 * Milliseconds before the shutdown bound at which held requests are answered 503 (then, half
 * of it later, those still open 502): time enough to write the answers before the exit.
 */
const LAST_CALL_MS = 200;

/**
 * Shutdown's two last calls (HttpAppOptions.stopHolding and lastCall), aborted with the
 * PoolError to answer: first end every wait for a leader (503 SHUTTING_DOWN), then answer
 * every request still open (502 UPSTREAM_FAILED). Every pending request listens to them, up to
 * MAX_PENDING_WORK at once (not a leak).
 */
export class LastCalls {
  private readonly holding = listenedByMany(new AbortController());
  private readonly answering = listenedByMany(new AbortController());

  /** Aborts when held requests stop waiting for a leader. */
  get stopHolding(): AbortSignal {
    return this.holding.signal;
  }

  /** Aborts when every request still open is answered. */
  get lastCall(): AbortSignal {
    return this.answering.signal;
  }

  /**
   * Schedules both calls before `boundMs` from now: the first LAST_CALL_MS before it (at most
   * half the bound), the second half of that later. Returns what cancels them.
   */
  schedule(boundMs: number): () => void {
    const margin = Math.min(LAST_CALL_MS, boundMs / 2);
    const timers = [
      setTimeout(() => {
        this.holding.abort(
          new PoolError(
            'SHUTTING_DOWN',
            'this member is shutting down and no leader took the request: ask another member',
          ),
        );
      }, boundMs - margin),
      setTimeout(
        () => {
          this.answering.abort(
            new PoolError(
              'UPSTREAM_FAILED',
              'this member shut down before the work finished; it may or may not have executed',
            ),
          );
        },
        boundMs - margin / 2,
      ),
    ];
    return () => {
      for (const timer of timers) clearTimeout(timer);
    };
  }
}

/** What a member holds outside etcd's keys, closed on shutdown and on a failed start-up. */
export interface MemberResources {
  /** Undefined when the library user serves the member's routes (`serve: false`). */
  server: http.Server | undefined;
  forwarder: Forwarder;
  leases: LeaseThread;
  etcd: Etcd3;
}

/** Closes the forwarder's connections, the keep-alive thread and the etcd client. */
export async function closeClients(resources: Omit<MemberResources, 'server'>): Promise<void> {
  resources.forwarder.close();
  await resources.leases.close();
  resources.etcd.close();
}

export interface ShutdownParts extends MemberResources {
  /** The links other members forward on (http/linkServer.ts); undefined without a server. */
  links?: LinkServer | undefined;
  elections: readonly PoolElection[];
  requests: InFlightRequests;
  /** Aborted first: what reads "draining" (readiness, Connection: close, etcd/diagnosis.ts). */
  draining: AbortController;
  stopMembershipCheck: (() => void) | undefined;
  statusRouter: StatusRouter | undefined;
  lastCalls: LastCalls;
  logger: Logger;
  /** SHUTDOWN_TIMEOUT_MS: the bound on the whole shutdown. */
  timeoutMs: number;
  /** SHUTDOWN_LINGER_MS: how long to keep answering after leaving the elections. */
  lingerMs: number;
}

/**
 * Runs the shutdown above. Resolves true when every step finished within `timeoutMs`, false
 * when the bound cut it short; never rejects. Call it once.
 */
export async function shutDownGracefully(parts: ShutdownParts): Promise<boolean> {
  const { elections, server, requests, logger } = parts;
  const startedAt = monotonicNow();
  const bound = parts.timeoutMs;
  parts.draining.abort();
  // Followers send no more on their links here; what they sent is still answered.
  parts.links?.goAway();
  parts.stopMembershipCheck?.();
  logger.info({ inFlight: requests.size, timeoutMs: bound }, 'shutting down');
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), bound);
  });
  // Before the bound, every request accepted gets its answer: first those still waiting for
  // a leader (nothing was sent), then those still with the leader or its handler.
  const cancelLastCalls = parts.lastCalls.schedule(bound);
  const steps = (async () => {
    const step = (name: string) =>
      logger.debug(
        { step: name, atMs: Math.round(monotonicNow() - startedAt) },
        'shutdown step done',
      );
    await Promise.all(elections.map((election) => election.leave()));
    step('left the elections');
    // Peers learn of the release within milliseconds; until they do they may still forward
    // here. Keep answering (forwards get "not leader", every answer says Connection: close)
    // so no peer writes a request into a connection we are closing.
    await sleep(parts.lingerMs);
    // Event streams of the status page never end by themselves: end them, or they would
    // hold the drain until the shutdown bound.
    parts.statusRouter?.endAll();
    await requests.drained();
    // A forward a follower sent before it heard "going away" may still be on its way: each
    // follower ends its link once it has its answers; one that has not within
    // LINK_END_WAIT_MS (frozen, cut off) has its link closed.
    await parts.links?.closed(LINK_END_WAIT_MS);
    step('drained');
    // Nothing is in flight any more, so every remaining connection is idle or broken (one
    // whose client gave up while this process was paused never reads as idle): close all.
    parts.links?.close();
    if (server) {
      await closeServer(server);
      step('server closed');
    }
    await Promise.all(elections.map((election) => election.close()));
    return true as const;
  })();
  const clean = await Promise.race([steps, timedOut]);
  clearTimeout(timer);
  cancelLastCalls();
  parts.links?.close();
  server?.closeAllConnections();
  await closeClients(parts);
  logger.info(
    { clean, tookMs: Math.round(monotonicNow() - startedAt) },
    clean ? 'stopped' : 'shutdown timed out',
  );
  return clean;
}

/** How long (ms) shutdown waits for followers to end their member links after draining. */
const LINK_END_WAIT_MS = 1_000;

/** An AbortController whose signal may have any number of listeners without a warning. */
function listenedByMany(controller: AbortController): AbortController {
  setMaxListeners(0, controller.signal);
  return controller;
}
