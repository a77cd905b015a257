/**
 * The HTTP surface (Express 5), assembled from its routers in the order they are tried:
 *
 * - the status page `/` and its `/events` stream (statusPage.ts);
 * - the probes /healthz and /readyz (probes.ts) and /metrics (metricsRoute.ts);
 * - the pool views /pool, /pools/:pool and /pools (poolViews.ts);
 * - the admin route /resign and /pools/:pool/resign (admin.ts);
 * - the work routes /work and /simple-work and their /pools/:pool/... forms (workRoutes.ts);
 * - then 404 for any other route, and the JSON error body for every error (errors.ts).
 *
 * The routes without a pool in the path serve the first pool of POOLS; /pools/:pool/... any
 * pool of the member, and 404 for a name it does not belong to (poolAddress.ts). The surface
 * talks to the elections and the work routers through their small interfaces and knows
 * nothing of etcd.
 */
import express from 'express';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { PoolError } from '../errors.js';
import type { PoolMetrics } from '../metrics/metrics.js';
import { adminRoutes } from './admin.js';
import { errorMiddleware, sendError } from './errors.js';
import { metricsRoute } from './metricsRoute.js';
import { poolAddress, type PoolRoutes } from './poolAddress.js';
import { poolViewRoutes } from './poolViews.js';
import { probeRoutes } from './probes.js';
import { workRoutes } from './workRoutes.js';

export interface HttpAppOptions {
  /** The member's pools; the first is the pool of /work, /simple-work and /pool. */
  pools: PoolRoutes[];
  metrics: PoolMetrics;
  nodeMetrics: Registry;
  logger: Logger;
  /** True once graceful shutdown began: not ready, and connections are not kept alive. */
  draining: () => boolean;
  /** When set, forwarded requests must carry it (x-pool-token) or get 401. */
  forwardToken?: string;
  /** When set, enables the admin routes for `Authorization: Bearer <adminToken>`. */
  adminToken?: string;
  /** Routes mounted first: the status page and its event stream. */
  statusRoutes?: express.Router;
  /**
   * Shutdown's two last calls, aborted with the PoolError to answer: `stopHolding` ends every
   * wait for a leader (nothing was sent: 503 SHUTTING_DOWN); `lastCall`, a moment later,
   * answers every request still open (a forward or the work itself under way: 502), so that
   * each request accepted gets an answer before the process exits.
   */
  stopHolding?: AbortSignal;
  lastCall?: AbortSignal;
  /** Work requests held or in flight at once (MAX_PENDING_WORK); beyond, 503 OVERLOADED. */
  maxPendingWork?: number;
}

export function createHttpApp(options: HttpAppOptions): express.Express {
  const { metrics, logger, pools } = options;
  const address = poolAddress(pools);
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'simple');

  app.use((_req, res, next) => {
    if (options.draining()) res.set('Connection', 'close');
    next();
  });
  if (options.statusRoutes) app.use(options.statusRoutes);
  app.use(probeRoutes(pools, options.draining));
  app.use(metricsRoute(metrics, options.nodeMetrics));
  app.use(poolViewRoutes(pools, address));
  app.use(adminRoutes({ address, logger, adminToken: options.adminToken }));
  app.use(
    workRoutes({
      address,
      metrics,
      logger,
      forwardToken: options.forwardToken,
      stopHolding: options.stopHolding,
      lastCall: options.lastCall,
      maxPendingWork: options.maxPendingWork,
    }),
  );

  app.use((req, res) => {
    sendError(res, new PoolError('NOT_FOUND', `no route ${req.method} ${req.path}`));
  });
  app.use(errorMiddleware(logger));
  return app;
}
