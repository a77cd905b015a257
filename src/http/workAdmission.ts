/**
 * Bounded holding (as Akka's singleton proxy bounds its buffer): at most MAX_PENDING_WORK
 * work requests held or in flight at once. A request beyond the limit is refused with 503
 * OVERLOADED before its body is read, so a flood costs a few microseconds per request, and
 * memory and sockets stay bounded. The connection closes after that answer: an unread body
 * must not be parsed as the next request.
 */
import type express from 'express';
import { PoolError } from '../errors.js';
import type { PoolMetrics } from '../metrics/metrics.js';
import type { WorkRoute } from '../etcd/requestPurpose.js';
import { sendError } from './errors.js';
import type { PoolAddress } from './poolAddress.js';

/**
 * One counter for all work routes and pools; the middleware for a route admits a request
 * (counted until its response closes) or answers it. `maxPending`: Infinity for no bound.
 */
export function workAdmission(
  maxPending: number,
  metrics: PoolMetrics,
  address: PoolAddress,
): (route: WorkRoute) => express.RequestHandler {
  let pending = 0;
  return (route) => (_req, res, next) => {
    if (pending >= maxPending) {
      metrics.workShed.inc();
      const role = address.of(res).election.isLeader() ? 'leader' : 'follower';
      metrics.workRequests.inc({ route, role, outcome: 'overloaded' });
      res.set('Connection', 'close');
      sendError(
        res,
        new PoolError(
          'OVERLOADED',
          `this member already holds ${pending} work requests (MAX_PENDING_WORK): ask again shortly or ask another member`,
          { pending, limit: maxPending },
        ),
      );
      return;
    }
    pending++;
    metrics.workPending.set(pending);
    res.once('close', () => {
      pending--;
      metrics.workPending.set(pending);
    });
    next();
  };
}
