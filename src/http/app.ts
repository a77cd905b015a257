/**
 * The HTTP surface (Express 5): /work, /pool, the per-pool forms /pools/:pool/work,
 * /pools/:pool and /pools, /healthz, /readyz, /metrics. It talks to the election and the
 * router through their small interfaces and knows nothing of etcd.
 *
 * A member belongs to one pool for now: the per-pool routes serve that pool and answer 404
 * for any other name, so clients can already address pools by name.
 */
import http from 'node:http';
import net from 'node:net';
import express, { type ErrorRequestHandler, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import { whyNoCandidate } from '../election/candidates.js';
import type { PoolElection } from '../election/election.js';
import {
  poolServiceMember,
  poolStrategyMember,
  strategyDiffers,
} from '../election/poolIdentity.js';
import { PoolError, isPoolError } from '../errors.js';
import type { PoolMetrics } from '../metrics/metrics.js';
import { HOPS_HEADER, TERM_HEADER, TOKEN_HEADER, VIA_HEADER } from '../work/forwarder.js';
import { bearerToken, secretMatches } from './auth.js';
import { FailureLog } from '../log/failureLog.js';
import { ABORTED, unlessAborted } from '../work/abortable.js';
import type { IncomingWork, WorkRouter } from '../work/router.js';
import { forWorkRoute, type WorkRoute } from '../etcd/requestPurpose.js';
import { errorMiddleware, knownError, sendError } from './errors.js';
import { memberId } from '../config/config.js';

/** The largest accepted payload, serialized as JSON. */
export const MAX_PAYLOAD_BYTES = 64 * 1024;
/**
 * The deepest accepted payload nesting. JSON.parse takes any depth, but JSON.stringify (the
 * size check, the answer, a forward) is recursive and overflows the stack somewhere past a
 * few thousand levels: a 10 KiB body of brackets would be a 500. 128 is serde_json's limit.
 */
export const MAX_PAYLOAD_DEPTH = 128;
/** Body limit: the payload plus its `{"payload": ...}` envelope. */
const MAX_BODY = '65kb';
const MAX_VIA = 16;

/** One pool this member belongs to, as the HTTP layer sees it. */
export interface PoolRoutes {
  election: PoolElection;
  router: WorkRouter;
}

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
  const byName = new Map(pools.map((pool) => [pool.election.pool, pool]));
  const firstPool = pools[0];
  if (!firstPool) throw new Error('a member belongs to at least one pool');
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'simple');

  app.use((_req, res, next) => {
    if (options.draining()) res.set('Connection', 'close');
    next();
  });

  if (options.statusRoutes) app.use(options.statusRoutes);

  app.get('/healthz', (_req, res) => {
    // Who answers: a member checks its own ADVERTISE_URL against these at start-up.
    res.json({ status: 'ok', member: pools[0]?.election.memberId, pid: process.pid });
  });

  app.get('/readyz', (_req, res) => {
    const each = pools.map(({ election }) => ({
      pool: election.pool,
      ready: election.isReady(),
      registered: election.memberKey !== undefined,
      synced: election.view.synced,
      etcdReachable: election.view.reachable,
      leaseTimeLeftMs: election.leaseTimeLeftMs(),
    }));
    const ready = !options.draining() && each.every((pool) => pool.ready);
    res.status(ready ? 200 : 503).json({
      ready,
      registered: each.every((pool) => pool.registered),
      synced: each.every((pool) => pool.synced),
      etcdReachable: each.every((pool) => pool.etcdReachable),
      leaseTimeLeftMs: Math.min(...each.map((pool) => pool.leaseTimeLeftMs)),
      draining: options.draining(),
      pools: each,
    });
  });

  const merged = () => Registry.merge([metrics.registry, options.nodeMetrics]);
  app.get('/metrics', async (_req, res) => {
    const registry = merged();
    res.set('Content-Type', registry.contentType).send(await registry.metrics());
  });

  // Checked once per request, before any route with a :pool in its path runs.
  app.param('pool', (_req, res, next, name: string) => {
    const pool = byName.get(name);
    if (!pool) {
      next(new PoolError('NOT_FOUND', `no pool ${JSON.stringify(name)} on this member`));
      return;
    }
    res.locals.pool = pool;
    next();
  });
  /** The pool a request addresses: /pools/:pool/..., else the first pool. */
  const poolOf = (res: Response): PoolRoutes =>
    (res.locals.pool as PoolRoutes | undefined) ?? firstPool;

  app.get(['/pool', '/pools/:pool'], (_req, res) => {
    res.json(describePool(poolOf(res).election, poolOf(res).router));
  });

  app.get('/pools', (_req, res) => {
    res.json(pools.map((pool) => describePool(pool.election, pool.router)));
  });

  /** The forwarding headers, refused with 401 when a forward lacks the shared token. */
  const forwarding = (req: Request, pool: PoolRoutes) => {
    const headers = forwardingHeaders(req);
    const token = options.forwardToken;
    if (headers.hops > 0 && token !== undefined && !secretMatches(req.get(TOKEN_HEADER), token)) {
      metrics.forwardsRefused.inc({ pool: pool.election.pool });
      throw new PoolError(
        'UNAUTHORIZED',
        `a forward between members must carry the shared token (${TOKEN_HEADER})`,
      );
    }
    return headers;
  };

  app.post(['/resign', '/pools/:pool/resign'], async (req, res) => {
    if (options.adminToken === undefined) {
      throw new PoolError('NOT_FOUND', 'admin routes are disabled: set ADMIN_TOKEN to enable them');
    }
    if (!secretMatches(bearerToken(req.get('authorization')), options.adminToken)) {
      throw new PoolError('UNAUTHORIZED', 'admin routes need Authorization: Bearer <ADMIN_TOKEN>');
    }
    const { election } = poolOf(res);
    const leader = election.leader();
    const resigned = await election.resign();
    logger.info({ pool: election.pool, resigned }, 'resign requested');
    res.json({
      pool: election.pool,
      resigned,
      previousLeader: leader?.id ?? null,
      ...(resigned
        ? {}
        : {
            reason: `this member is not the leader${leader ? `; ${leader.id} is, at ${leader.url}` : ''}`,
          }),
    });
  });

  // Every series a dashboard panel reads exists from the start at 0, not "No data".
  for (const route of ['work', 'simple-work'] as const) {
    for (const role of ['leader', 'follower'] as const) {
      metrics.workRequests.inc({ route, role, outcome: 'ok' }, 0);
      metrics.workDuration.zero({ route, role });
    }
    metrics.workEtcdRequests.inc({ route }, 0);
  }
  const failures = new FailureLog(logger, 'work failed');
  const handleWork = async (route: WorkRoute, res: Response, work: IncomingWork) => {
    const { election, router } = poolOf(res);
    const stopTimer = metrics.workDuration.startTimer({ route });
    let role: 'leader' | 'follower' = election.isLeader() ? 'leader' : 'follower';
    // The client went away: stop waiting for a leader on its behalf.
    const gone = new AbortController();
    res.once('close', () => {
      if (!res.writableFinished) gone.abort();
    });
    const wait = options.stopHolding
      ? AbortSignal.any([gone.signal, options.stopHolding])
      : gone.signal;
    try {
      // etcd requests made on the way count for this route (requestPurpose.ts).
      const outcome = await unlessAborted(
        forWorkRoute(route, () =>
          route === 'work' ? router.route(work, wait) : router.routeSimply(work),
        ),
        options.lastCall,
      );
      // Shutdown's last call came first: its reason is the answer.
      if (outcome === ABORTED) throw options.lastCall!.reason as Error;
      role = outcome.role;
      metrics.workRequests.inc({
        route,
        role,
        outcome: outcome.status < 400 ? 'ok' : `upstream_${outcome.status}`,
      });
      res.status(outcome.status).json(outcome.body);
    } catch (error) {
      if (gone.signal.aborted) {
        // The client left while we waited for a leader: no one to answer, nothing to report.
        metrics.workRequests.inc({ route, role, outcome: 'client_gone' });
        return;
      }
      const code = isPoolError(error) ? error.code.toLowerCase() : 'internal';
      metrics.workRequests.inc({ route, role, outcome: code });
      if (isPoolError(error)) {
        if (error.code !== 'NOT_LEADER') failures.record(error.code, error.message);
        sendError(res, error);
      } else {
        logger.error({ err: error }, 'work handler failed');
        sendError(res, new PoolError('INTERNAL', 'the work handler failed'));
      }
    } finally {
      stopTimer({ role });
    }
  };

  // Bounded holding (as Akka's singleton proxy bounds its buffer): a request beyond the limit
  // is refused before its body is read, so a flood costs a few microseconds per request, and
  // memory and sockets stay bounded. The connection closes after the answer: an unread body
  // must not be parsed as the next request.
  const maxPending = options.maxPendingWork ?? Infinity;
  let pending = 0;
  const admit =
    (route: WorkRoute): express.RequestHandler =>
    (_req, res, next) => {
      if (pending >= maxPending) {
        metrics.workShed.inc();
        const role = poolOf(res).election.isLeader() ? 'leader' : 'follower';
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

  const json = express.json({ limit: MAX_BODY, strict: false, type: () => true });
  warmUp(json);
  for (const route of ['work', 'simple-work'] as const) {
    const paths = [`/${route}`, `/pools/:pool/${route}`];

    app.get(paths, admit(route), async (req, res) => {
      const payload = req.query.payload;
      if (payload !== undefined && typeof payload !== 'string') {
        throw new PoolError('BAD_REQUEST', 'give "payload" at most once in the query string');
      }
      checkPayload(payload ?? null);
      await handleWork(route, res, { payload: payload ?? null, ...forwarding(req, poolOf(res)) });
    });

    app.post(
      paths,
      admit(route),
      (req, _res, next) => {
        if (!req.is('application/json')) {
          throw new PoolError(
            'UNSUPPORTED_MEDIA_TYPE',
            'send the body as application/json: {"payload": <any JSON>}',
          );
        }
        next();
      },
      json,
      async (req, res) => {
        const body: unknown = req.body;
        if (
          typeof body !== 'object' ||
          body === null ||
          Array.isArray(body) ||
          !('payload' in body)
        ) {
          throw new PoolError('BAD_REQUEST', 'expected a JSON object {"payload": <any JSON>}');
        }
        const payload = (body as { payload: unknown }).payload;
        checkPayload(payload);
        await handleWork(route, res, { payload, ...forwarding(req, poolOf(res)) });
      },
    );

    // Requests refused before routing (bad body, size, headers) still count as work requests.
    app.use(paths, ((error, _req, res, next) => {
      const code = knownError(error)?.code ?? 'INTERNAL';
      const role = poolOf(res).election.isLeader() ? 'leader' : 'follower';
      metrics.workRequests.inc({ route, role, outcome: code.toLowerCase() });
      next(error);
    }) as ErrorRequestHandler);
  }

  app.use((req, res) => {
    sendError(res, new PoolError('NOT_FOUND', `no route ${req.method} ${req.path}`));
  });
  app.use(errorMiddleware(logger));
  return app;
}

/**
 * Runs the body parser once over a request built in memory. Its first use loads the charset
 * decoders (about 15 ms here) and compiles the parsing path; without this, the first request
 * forwarded to a freshly elected leader — in the middle of a failover — pays for it.
 */
function warmUp(parser: express.RequestHandler): void {
  const req = new http.IncomingMessage(new net.Socket());
  const body = Buffer.from('{"payload":null}');
  req.headers = { 'content-type': 'application/json', 'content-length': String(body.length) };
  req.push(body);
  req.push(null);
  void parser(req as express.Request, {} as express.Response, () => undefined);
}

/** Refuses a payload nested deeper than MAX_PAYLOAD_DEPTH or over MAX_PAYLOAD_BYTES. */
function checkPayload(payload: unknown): void {
  if (nestingDepth(payload, MAX_PAYLOAD_DEPTH) > MAX_PAYLOAD_DEPTH) {
    throw new PoolError(
      'BAD_REQUEST',
      `payload is nested deeper than ${MAX_PAYLOAD_DEPTH} levels of arrays and objects`,
    );
  }
  const size = Buffer.byteLength(JSON.stringify(payload) ?? 'null');
  if (size > MAX_PAYLOAD_BYTES) {
    throw new PoolError(
      'PAYLOAD_TOO_LARGE',
      `payload is ${size} bytes; the limit is ${MAX_PAYLOAD_BYTES}`,
    );
  }
}

/**
 * How deeply arrays and objects nest in a parsed JSON value, counted without recursion (the
 * value may be deeper than the stack); stops counting once past `limit`.
 */
function nestingDepth(value: unknown, limit: number): number {
  let deepest = 0;
  const pending: [unknown, number][] = [[value, 0]];
  while (pending.length > 0) {
    const [current, depth] = pending.pop()!;
    if (typeof current !== 'object' || current === null) continue;
    if (depth + 1 > deepest) deepest = depth + 1;
    if (deepest > limit) break;
    for (const child of Object.values(current)) pending.push([child, depth + 1]);
  }
  return deepest;
}

/** Reads and validates the headers a forwarding member adds. */
function forwardingHeaders(req: Request): Pick<IncomingWork, 'hops' | 'via' | 'termSeen'> {
  const hopsRaw = req.get(HOPS_HEADER);
  const termRaw = req.get(TERM_HEADER);
  const viaRaw = req.get(VIA_HEADER);
  if (hopsRaw === undefined) return { hops: 0, via: [] };
  if (!/^\d{1,3}$/.test(hopsRaw))
    throw new PoolError('BAD_REQUEST', `${HOPS_HEADER} must be a small whole number`);
  if (termRaw !== undefined && !/^\d{1,20}$/.test(termRaw)) {
    throw new PoolError('BAD_REQUEST', `${TERM_HEADER} must be a revision number`);
  }
  const via = viaRaw ? viaRaw.split(',').map((part) => part.trim()) : [];
  if (via.length > MAX_VIA || via.some((id) => !memberId.safeParse(id).success)) {
    throw new PoolError('BAD_REQUEST', `${VIA_HEADER} must list at most ${MAX_VIA} member ids`);
  }
  return {
    hops: Number(hopsRaw),
    via,
    ...(termRaw !== undefined ? { termSeen: BigInt(termRaw) } : {}),
  };
}

/**
 * The `:observer` view of the pool as this member sees it; with `router`, whether the leader
 * could be reached at its URL the last time this member forwarded to it.
 */
export function describePool(election: PoolElection, router?: WorkRouter) {
  const leader = election.leader();
  const view = election.view;
  const poolStrategy = poolStrategyMember(view.members)?.record.strategy;
  const own = election.memberRecord;
  return {
    pool: election.pool,
    /** The service the pool belongs to, and its strategy: its oldest member's naming one. */
    service: poolServiceMember(view.members)?.record.service ?? null,
    strategy: poolStrategy ?? null,
    self: {
      id: election.memberId,
      memberKey: election.memberKey ?? null,
      isLeader: election.isLeader(),
      ready: election.isReady(),
      leaseTimeLeftMs: election.leaseTimeLeftMs(),
      service: own.service ?? null,
      strategy: own.strategy ?? null,
      strategyDiffers: strategyDiffers(own.strategy, poolStrategy),
      candidate: own.candidate,
    },
    leader: leader
      ? {
          id: leader.id,
          url: leader.url,
          memberKey: leader.memberKey,
          term: Number(leader.term),
          unreachable: router?.unreachableReason(leader.url) ?? null,
        }
      : null,
    term: leader ? Number(leader.term) : null,
    /** Why the pool has no leader, where that is not a matter of time (no member may lead). */
    noLeaderReason: leader ? null : (whyNoCandidate(view.members) ?? null),
    revision: Number(view.revision),
    timeline: election.history,
    members: view.members.map((member) => ({
      id: member.record.id,
      url: member.record.url,
      memberKey: member.key,
      createRevision: Number(member.createRevision),
      startedAt: member.record.startedAt,
      pid: member.record.pid,
      version: member.record.version,
      weight: member.record.weight,
      labels: member.record.labels,
      leads: member.record.leads,
      service: member.record.service ?? null,
      strategy: member.record.strategy ?? null,
      strategyDiffers: strategyDiffers(member.record.strategy, poolStrategy),
      candidate: member.record.candidate,
      isLeader: leader?.memberKey === member.key,
    })),
  };
}
