/**
 * Bounded holding (as Akka's singleton proxy bounds its buffer): at most MAX_PENDING_WORK
 * work requests held or in flight at once. A request beyond the limit is refused with 503
 * OVERLOADED before its body is read, so a flood costs a few microseconds per request, and
 * memory and sockets stay bounded. The connection closes after that answer: an unread body
 * must not be parsed as the next request.
 */
import type http from 'node:http';
import type { PoolElection } from '../election/election.js';
import { PoolError } from '../errors.js';
import type { PoolMetrics } from '../metrics/metrics.js';
import type { WorkRoute } from '../etcd/requestPurpose.js';
import { sendError } from './errors.js';

/**
 * Admits a request of `route` to `election`'s pool — counted until its response closes — and
 * returns true, or answers it 503 OVERLOADED and returns false. Never blocks.
 */
export interface AdmitWork {
  (route: WorkRoute, election: PoolElection, res: http.ServerResponse): boolean;
  /**
   * Admits a request that has no response of its own (a forward off a member link): returns
   * the function that ends its count, to be called once when it is answered, or the 503
   * OVERLOADED error to answer it with. Never blocks.
   */
  hold(route: WorkRoute, election: PoolElection): (() => void) | PoolError;
}

/**
 * One counter for all work routes, pools and both ways in (the Express routes and the lean
 * forward path). `maxPending`: Infinity for no bound.
 */
export function workAdmission(maxPending: number, metrics: PoolMetrics): AdmitWork {
  let pending = 0;
  const hold = (route: WorkRoute, election: PoolElection) => {
    if (pending >= maxPending) {
      metrics.workShed.inc();
      const role = election.isLeader() ? 'leader' : 'follower';
      metrics.workRequests.inc({ route, role, outcome: 'overloaded' });
      return new PoolError(
        'OVERLOADED',
        `this member already holds ${pending} work requests (MAX_PENDING_WORK): ask again shortly or ask another member`,
        { pending, limit: maxPending },
      );
    }
    pending++;
    metrics.workPending.set(pending);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      pending--;
      metrics.workPending.set(pending);
    };
  };
  const admit = (route: WorkRoute, election: PoolElection, res: http.ServerResponse) => {
    const release = hold(route, election);
    if (release instanceof PoolError) {
      res.setHeader('Connection', 'close');
      sendError(res, release);
      return false;
    }
    // `on`, not `once`: a response closes once, and `release` runs once anyway.
    res.on('close', release);
    return true;
  };
  return Object.assign(admit, { hold });
}
