/**
 * How a work route is served: GET and POST /<route> and its per-pool form /pools/:pool/<route>.
 * A request is admitted (workAdmission.ts), validated (workRequest.ts), then dispatched to the
 * pool's WorkRouter, which executes it here or forwards it to the leader; its outcome is the
 * answer. Every request counts in `workRequests` by route, role and outcome, refused ones
 * included. `workRoutes` serves /work; the teaching path /simple-work (simpleWork.ts) is
 * served the same way, through the same admission bound; so is a forward another member sends
 * to POST /pools/:pool/work by the lean path (memberForwards.ts), which reads its body by hand.
 */
import type http from 'node:http';
import express, { type ErrorRequestHandler } from 'express';
import type { Logger } from 'pino';
import type { PoolElection } from '../election/election.js';
import type { WorkRoute } from '../etcd/requestPurpose.js';
import { PoolError, isHttpError } from '../errors.js';
import { FailureLog } from '../log/failureLog.js';
import type { PoolMetrics } from '../metrics/metrics.js';
import { ABORTED, LazyAbort, unlessAbortedBy } from '../util/abortable.js';
import { monotonicNow } from '../util/time.js';
import { BATCH_CONTENT_TYPE, decodeFrames, encodeFrames } from '../work/batchFrames.js';
import { HOPS_HEADER, TERM_HEADER, TOKEN_HEADER, VIA_HEADER } from '../work/forwarder.js';
import type { ForwardFrame } from '../work/linkFrames.js';
import type { IncomingWork, WorkOutcome, WorkRouter } from '../work/router.js';
import { secretMatches } from './auth.js';
import {
  errorAnswer,
  jsonReply,
  knownError,
  sendError,
  sendReply,
  sendReplyDirect,
  type Reply,
} from './errors.js';
import type { PoolAddress, PoolRoutes } from './poolAddress.js';
import { workAdmission, type AdmitWork } from './workAdmission.js';
import {
  bodyPayload,
  forwardingHeaders,
  jsonBody,
  parseJsonBody,
  queryPayload,
  receivedBody,
  requireJson,
} from './workRequest.js';

export interface WorkRoutesOptions {
  address: PoolAddress;
  metrics: PoolMetrics;
  logger: Logger;
  /** When set, forwarded requests must carry it (x-pool-token) or get 401. */
  forwardToken?: string | undefined;
  /** Aborts every wait for a leader with its reason (HttpAppOptions.stopHolding). */
  stopHolding?: AbortSignal | undefined;
  /** Answers every request still open with its reason (HttpAppOptions.lastCall). */
  lastCall?: AbortSignal | undefined;
  /** Work requests held or in flight at once; beyond, 503 OVERLOADED. Default: no bound. */
  maxPendingWork?: number | undefined;
}

/**
 * How a route hands a validated request to the pool's work router. `wait()` is a signal that
 * aborts when the client goes away or shutdown stops holding requests: a wait for a leader
 * ends then. Ask for it only to wait (it is made on the first call).
 */
export type WorkDispatch = (
  router: WorkRouter,
  work: IncomingWork,
  wait: () => AbortSignal,
) => Promise<WorkOutcome>;

/**
 * Returns the router of one work route: GET and POST /<route> and /pools/:pool/<route>, each
 * request dispatched by `dispatch`. Every route made by one `ServeWorkRoute` shares its
 * admission bound (MAX_PENDING_WORK) and its failure log.
 */
export type ServeWorkRoute = (route: WorkRoute, dispatch: WorkDispatch) => express.Router;

/** The work routes' machinery, for the Express routes and for the lean forward path alike. */
export interface WorkServer {
  /** Makes the router of one work route. */
  serve: ServeWorkRoute;
  /** The admission bound every way in shares. */
  admit: AdmitWork;
  /**
   * Serves a GET /work to `pool` admitted by `admit`, whose query string was read by hand
   * (node:querystring, as Express's simple parser): validated, counted and answered as the
   * Express route does. Resolves once answered.
   */
  serveQuery(
    pool: PoolRoutes,
    req: http.IncomingMessage,
    res: http.ServerResponse,
    query: Readonly<Record<string, unknown>>,
  ): Promise<void>;
  /**
   * Serves a POST /work to `pool` admitted by `admit`, whose JSON body was read by hand:
   * validated, counted and answered as the Express route does; a forward sends the bytes on
   * as they came. Resolves once answered.
   */
  serveBody(
    pool: PoolRoutes,
    req: http.IncomingMessage,
    res: http.ServerResponse,
    body: Buffer,
  ): Promise<void>;
  /**
   * Serves a batch of forwards to POST /pools/:pool/work-batch (forwardBatch.ts) admitted by
   * `admit`, its body read by hand: the batch refused as a whole if its forwarding headers
   * or framing are bad, else each item served as a forward of its own. Resolves once answered.
   */
  serveBatch(
    pool: PoolRoutes,
    req: http.IncomingMessage,
    res: http.ServerResponse,
    body: Buffer,
  ): Promise<void>;
  /**
   * Counts and answers a /work request to `pool` refused before it was routed, as the Express
   * route and its error handler do.
   */
  refuse(pool: PoolRoutes, res: http.ServerResponse, error: unknown): void;
  /**
   * Serves a forward that came over a member link (linkServer.ts; the link's forward token was
   * checked when it opened): admitted, validated, counted and answered as a forward by HTTP
   * is. Resolves with its answer, or undefined when `gone()` says the link closed while it
   * waited (nobody to answer); `wait` aborts its wait for a leader. Never rejects.
   */
  serveLinked(
    pool: PoolRoutes,
    frame: ForwardFrame,
    wait: LazyAbort,
    gone: () => boolean,
  ): Promise<Reply | undefined>;
}

/**
 * The label sets of `workDuration`, made once: prom-client merges the labels a timer starts
 * and ends with into a new object per request; observing under a set made once does not.
 */
const DURATION_LABELS = {
  work: {
    leader: { route: 'work', role: 'leader' },
    follower: { route: 'work', role: 'follower' },
  },
  'simple-work': {
    leader: { route: 'simple-work', role: 'leader' },
    follower: { route: 'simple-work', role: 'follower' },
  },
} as const satisfies Record<WorkRoute, Record<'leader' | 'follower', object>>;

/** How /work is dispatched: to the leader this member's view names. */
const routeWork: WorkDispatch = (router, work, wait) => router.route(work, wait);

/** /work: routed to the leader this member's view names, waiting for one if there is none. */
export function workRoutes(serve: ServeWorkRoute): express.Router {
  return serve('work', routeWork);
}

/** The machinery every work route shares; see `WorkServer`. */
export function workRouteServer(options: WorkRoutesOptions): WorkServer {
  const { address, metrics, logger } = options;

  /** The forwarding headers, refused with 401 when a forward lacks the shared token. */
  const forwarding = (headers: http.IncomingHttpHeaders, pool: PoolRoutes) => {
    const forward = forwardingHeaders(headers);
    const token = options.forwardToken;
    const presented = headers[TOKEN_HEADER] as string | undefined;
    if (forward.hops > 0 && token !== undefined && !secretMatches(presented, token)) {
      metrics.forwardsRefused.inc({ pool: pool.election.pool });
      throw new PoolError(
        'UNAUTHORIZED',
        `a forward between members must carry the shared token (${TOKEN_HEADER})`,
      );
    }
    return forward;
  };

  /** Counts a request refused before routing (bad body, size, headers) as a work request. */
  const countRefusal = (route: WorkRoute, election: PoolElection, error: unknown) => {
    const code = knownError(error)?.code ?? 'INTERNAL';
    const role = election.isLeader() ? 'leader' : 'follower';
    metrics.workRequests.inc({ route, role, outcome: code.toLowerCase() });
  };

  const failures = new FailureLog(logger, 'work failed');
  const untilLastCall = unlessAbortedBy(options.lastCall);
  /**
   * Routes `work` and returns its answer — the leader's relayed, the handler's, or the error's —
   * counted by route, role and outcome; undefined if `gone()` says the client left while it
   * waited (nobody to answer). `wait` aborts the wait for a leader.
   */
  const reply = async (
    route: WorkRoute,
    dispatch: WorkDispatch,
    pool: PoolRoutes,
    work: IncomingWork,
    wait: LazyAbort,
    gone: () => boolean,
  ): Promise<Reply | undefined> => {
    const { election, router: workRouter } = pool;
    const startedAt = monotonicNow();
    let role: 'leader' | 'follower' = election.isLeader() ? 'leader' : 'follower';
    try {
      // The router counts the etcd requests made on the way for this route (requestPurpose.ts).
      const outcome = await dispatch(workRouter, work, () => wait.signal);
      role = outcome.role;
      metrics.workRequests.inc({
        route,
        role,
        outcome: outcome.status < 400 ? 'ok' : `upstream_${outcome.status}`,
      });
      return outcome.role === 'follower' ? outcome.relayed : jsonReply(outcome);
    } catch (error) {
      if (gone()) {
        // The client left while we waited for a leader: no one to answer, nothing to report.
        metrics.workRequests.inc({ route, role, outcome: 'client_gone' });
        return undefined;
      }
      // A process-level PoolError (a handler rethrowing its term's LeadershipEndedError) has
      // no status: like any other throw, a 500.
      const code = isHttpError(error) ? error.code.toLowerCase() : 'internal';
      metrics.workRequests.inc({ route, role, outcome: code });
      if (isHttpError(error)) {
        if (error.code !== 'NOT_LEADER') failures.record(error.code, error.message);
        return jsonReply(errorAnswer(error));
      }
      logger.error({ err: error }, 'work handler failed');
      return jsonReply(errorAnswer(new PoolError('INTERNAL', 'the work handler failed')));
    } finally {
      metrics.workDuration.observe(
        DURATION_LABELS[route][role],
        (monotonicNow() - startedAt) / 1000,
      );
    }
  };

  /**
   * The wait of the requests answered on `res`: aborted when the client goes away, or when
   * shutdown stops holding requests (with the answer it wants given). Made only if a request
   * has to wait for a leader — most never do — and then one listener on stopHolding, removed
   * when the request ends (AbortSignal.any would hang one dependent signal per request on
   * that long-lived signal, which Node 20 drops only after a GC).
   */
  const clientWait = (res: http.ServerResponse) => {
    const wait = new LazyAbort(options.stopHolding);
    let gone = false;
    res.on('close', () => {
      if (res.writableFinished) return;
      gone = true;
      wait.abort();
    });
    return { wait, gone: () => gone };
  };

  /** `reply`, or the answer to shutdown's last call if that comes first. */
  const finalReply = async (...request: Parameters<typeof reply>): Promise<Reply | undefined> => {
    const answer = await untilLastCall(reply(...request));
    return answer === ABORTED
      ? jsonReply(errorAnswer(options.lastCall!.reason as PoolError))
      : answer;
  };

  /**
   * Serves one request: its reply, or shutdown's last call if that comes first, written by
   * `send` (`sendReplyDirect` on the lean path, which only the member's own server takes).
   */
  const handleWork = async (
    route: WorkRoute,
    dispatch: WorkDispatch,
    pool: PoolRoutes,
    res: http.ServerResponse,
    work: IncomingWork,
    send: typeof sendReply = sendReply,
  ) => {
    const { wait, gone } = clientWait(res);
    try {
      const answer = await finalReply(route, dispatch, pool, work, wait, gone);
      if (answer !== undefined) send(res, answer);
    } finally {
      wait.dispose();
    }
  };

  /**
   * Serves a batch of forwards (forwardBatch.ts): each item routed as a request of its own,
   * all at once, under the batch's forwarding headers; the answers framed in their order.
   */
  const handleBatch = async (
    pool: PoolRoutes,
    res: http.ServerResponse,
    body: Buffer,
    forward: ReturnType<typeof forwarding>,
  ) => {
    let frames: ReturnType<typeof decodeFrames>;
    try {
      frames = decodeFrames(body);
    } catch (error) {
      refuse(pool, res, error);
      return;
    }
    const { wait, gone } = clientWait(res);
    try {
      const answers = await untilLastCall(
        Promise.all(
          frames.map(({ bytes }) => {
            let work: IncomingWork;
            try {
              work = { payload: bodyPayload(parseJsonBody(bytes)), ...forward };
            } catch (error) {
              return Promise.resolve(refusal(pool, error));
            }
            return reply('work', routeWork, pool, work, wait, gone);
          }),
        ),
      );
      if (answers === ABORTED) {
        sendError(res, options.lastCall!.reason as PoolError);
        return;
      }
      if (gone()) return;
      const batch = encodeFrames(
        answers.map((answer) => ({
          status: answer?.status ?? 500,
          bytes: Buffer.from(answer?.bytes ?? ''),
        })),
      );
      res.statusCode = 200;
      res.setHeader('Content-Type', BATCH_CONTENT_TYPE);
      res.setHeader('Content-Length', batch.length);
      res.end(batch);
    } finally {
      wait.dispose();
    }
  };

  const admit = workAdmission(options.maxPendingWork ?? Infinity, metrics);
  const json = jsonBody();
  const serve: ServeWorkRoute = (route, dispatch) => {
    const router = express.Router();
    router.param('pool', address.param);
    // Every series a dashboard panel reads exists from the start at 0, not "No data".
    for (const role of ['leader', 'follower'] as const) {
      metrics.workRequests.inc({ route, role, outcome: 'ok' }, 0);
      metrics.workDuration.zero({ route, role });
    }
    metrics.workEtcdRequests.inc({ route }, 0);
    const admitted: express.RequestHandler = (_req, res, next) => {
      if (admit(route, address.of(res).election, res)) next();
    };

    const paths = [`/${route}`, `/pools/:pool/${route}`];
    router.get(paths, admitted, async (req, res) => {
      const pool = address.of(res);
      const payload = queryPayload(req.query);
      await handleWork(route, dispatch, pool, res, {
        payload,
        ...forwarding(req.headers, pool),
      });
    });

    router.post(paths, admitted, requireJson, json, async (req, res) => {
      const pool = address.of(res);
      const payload = bodyPayload(req.body);
      await handleWork(route, dispatch, pool, res, {
        payload,
        body: receivedBody(req),
        ...forwarding(req.headers, pool),
      });
    });

    // Requests refused before routing (bad body, size, headers) still count as work requests.
    router.use(paths, ((error, _req, res, next) => {
      countRefusal(route, address.of(res).election, error);
      next(error);
    }) as ErrorRequestHandler);
    return router;
  };

  /** The answer to a /work request refused before routing, counted (and logged if unknown). */
  const refusal = (pool: PoolRoutes, error: unknown): Reply => {
    countRefusal('work', pool.election, error);
    const known = knownError(error);
    if (!known) logger.error({ err: error }, 'unexpected error');
    return jsonReply(errorAnswer(known ?? new PoolError('INTERNAL', 'internal error')));
  };

  const refuse = (pool: PoolRoutes, res: http.ServerResponse, error: unknown) => {
    // An answer is on its way already (the error came after it started): cut it short.
    if (res.headersSent) {
      res.destroy();
      return;
    }
    sendReply(res, refusal(pool, error));
  };

  /** A request the lean path read: validated by `read` (refused if it throws), then served. */
  const serveLean = async (
    pool: PoolRoutes,
    res: http.ServerResponse,
    read: () => IncomingWork,
  ): Promise<void> => {
    let work: IncomingWork;
    try {
      work = read();
    } catch (error) {
      refuse(pool, res, error);
      return;
    }
    await handleWork('work', routeWork, pool, res, work, sendReplyDirect);
  };

  /** A forward off a member link: admitted, validated, then served as one by HTTP is. */
  const serveLinked: WorkServer['serveLinked'] = async (pool, frame, wait, gone) => {
    const release = admit.hold('work', pool.election);
    if (release instanceof PoolError) return jsonReply(errorAnswer(release));
    try {
      let work: IncomingWork;
      try {
        work = {
          payload: bodyPayload(parseJsonBody(frame.body)),
          body: frame.body,
          ...forwardingHeaders({
            [HOPS_HEADER]: '1',
            [TERM_HEADER]: frame.term,
            [VIA_HEADER]: frame.via,
          }),
        };
      } catch (error) {
        return refusal(pool, error);
      }
      return await finalReply('work', routeWork, pool, work, wait, gone);
    } finally {
      release();
    }
  };

  return {
    serve,
    admit,
    refuse,
    serveLinked,
    serveQuery: (pool, req, res, query) =>
      serveLean(pool, res, () => ({
        payload: queryPayload(query),
        ...forwarding(req.headers, pool),
      })),
    serveBatch: async (pool, req, res, body) => {
      let forward: ReturnType<typeof forwarding>;
      try {
        forward = forwarding(req.headers, pool);
        if (forward.hops === 0) {
          throw new PoolError(
            'BAD_REQUEST',
            'a batch of forwards comes from a member (x-pool-hops)',
          );
        }
      } catch (error) {
        refuse(pool, res, error);
        return;
      }
      await handleBatch(pool, res, body, forward);
    },
    serveBody: (pool, req, res, body) =>
      serveLean(pool, res, () => ({
        payload: bodyPayload(parseJsonBody(body)),
        body,
        ...forwarding(req.headers, pool),
      })),
  };
}
