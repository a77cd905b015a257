/**
 * The HTTP surface (Express 5). `createPoolSurface` assembles the pool's routes, in the order
 * they are tried:
 *
 * - the status page `/` and its `/events` stream (statusPage/, optional);
 * - the probes /healthz and /readyz (probes.ts) and /metrics (metricsRoute.ts);
 * - the pool views /pool, /pools/:pool and /pools (poolViews.ts);
 * - the admin route /resign and /pools/:pool/resign (admin.ts);
 * - the work route /work (workRoutes.ts) and the teaching path /simple-work (simpleWork.ts,
 *   optional), with their /pools/:pool/... forms;
 * - the JSON error body for every error they raise (errors.ts).
 *
 * Beside them, the lean way in for work (leanWork.ts): the common forms of /work from clients
 * and members' forwards, which the member's own server tries before Express.
 *
 * A request none of them matches is passed on, as any Express router does: the pool's routes
 * can be mounted anywhere in an app, under a prefix or not, with routes of its own before and
 * after them. `memberServerApp` is what the member's own server runs: the routes it is given,
 * then 404 NOT_FOUND for whatever is left unanswered.
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
import { jsonReplacer } from '../util/jsonSafe.js';
import { adminRoutes } from './admin.js';
import { errorMiddleware, sendError } from './errors.js';
import { metricsRoute } from './metricsRoute.js';
import { poolAddress, type PoolRoutes } from './poolAddress.js';
import { poolViewRoutes } from './poolViews.js';
import { probeRoutes } from './probes.js';
import { simpleWorkRoutes } from './simpleWork.js';
import { leanWork, type LeanWork } from './leanWork.js';
import { LinkServer } from './linkServer.js';
import { workRouteServer, workRoutes } from './workRoutes.js';

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
  /** Routes mounted first: the status page and its event stream; unset: left out. */
  statusRoutes?: express.Router | undefined;
  /** Whether to serve the teaching path /simple-work (simpleWork.ts). */
  simpleWork: boolean;
  /**
   * Called first for every request that reaches the pool's routes; for a member that does not
   * serve them itself (its server would otherwise see each request).
   */
  onRequest?: ((req: express.Request, res: express.Response) => void) | undefined;
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
  /**
   * Counts a forward off a member link in flight until the returned function is called, as
   * the server counts its requests (http/inFlight.ts): graceful shutdown waits for both.
   */
  trackForward?: (() => () => void) | undefined;
}

/** The pool's HTTP surface: its Express routes, and the lean way in for work. */
export interface PoolSurface {
  /**
   * The pool's routes, as an Express application to mount (`app.use(routes)` or
   * `app.use('/prefix', routes)`): an application rather than a plain router so that its own
   * settings hold wherever it is mounted (no ETag, whose 304 would hide a work answer; the
   * simple query parser).
   */
  routes: express.Express;
  /**
   * Takes the common forms of /work — a client's GET or JSON POST, a member's forward —
   * before Express does (leanWork.ts); for a server that serves `routes` at its root and
   * nothing before them, as the member's own server does.
   */
  leanWork: LeanWork;
  /**
   * Member links (linkServer.ts): the `upgrade` listener of a server that serves the lean way
   * in, told when the member drains and closed before the server.
   */
  links: LinkServer;
}

export function createPoolSurface(options: HttpAppOptions): PoolSurface {
  const { metrics, logger, pools } = options;
  const address = poolAddress(pools);
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'simple');
  // A handler's bigints (tickets, terms) answer as exact decimal strings.
  app.set('json replacer', jsonReplacer);

  app.use((req, res, next) => {
    options.onRequest?.(req, res);
    if (options.draining()) res.set('Connection', 'close');
    next();
  });
  if (options.statusRoutes) app.use(options.statusRoutes);
  app.use(probeRoutes(pools, options.draining));
  app.use(metricsRoute(metrics, options.nodeMetrics));
  app.use(poolViewRoutes(pools, address));
  app.use(adminRoutes({ address, logger, adminToken: options.adminToken }));
  const work = workRouteServer({
    address,
    metrics,
    logger,
    forwardToken: options.forwardToken,
    stopHolding: options.stopHolding,
    lastCall: options.lastCall,
    maxPendingWork: options.maxPendingWork,
  });
  app.use(workRoutes(work.serve));
  if (options.simpleWork) app.use(simpleWorkRoutes(work.serve));
  app.use(errorMiddleware(logger));
  return {
    routes: app,
    leanWork: leanWork(pools, work, options.draining),
    links: new LinkServer({
      pools,
      work,
      metrics,
      logger,
      forwardToken: options.forwardToken,
      stopHolding: options.stopHolding,
      track: options.trackForward,
    }),
  };
}

/**
 * What the member's own server runs: `routes` (your app with the pool's routes mounted in it,
 * or the pool's routes alone), then 404 NOT_FOUND for any request they leave unanswered, and
 * the JSON error body for any error they pass on. `routes` is called as a plain handler, not
 * mounted, so routes added to it at any time are tried before the 404.
 */
export function memberServerApp(routes: express.RequestHandler, logger: Logger): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.use((req, res, next) => routes(req, res, next));
  app.use((req, res) => {
    sendError(res, new PoolError('NOT_FOUND', `no route ${req.method} ${req.path}`));
  });
  app.use(errorMiddleware(logger));
  return app;
}
