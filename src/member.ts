/**
 * One pool member, assembled: the elections of its pools with their work routers
 * (member/pools.ts), the HTTP surface (http/app.ts) on a bounded server (http/server.ts) or
 * mounted in the library user's own app, and the etcd start-up diagnosis (etcd/diagnosis.ts).
 * This is what `service-pool-leader serve` runs and what the library exports.
 *
 * On SIGTERM the CLI calls `shutdown()`: the member turns not ready, leaves its elections (it
 * hands each claim to its successor in one etcd write), keeps answering for a short linger, drains what is in
 * flight, closes, and revokes its leases, all within SHUTDOWN_TIMEOUT_MS — member/shutdown.ts
 * has the steps and their reasons.
 */
import http from 'node:http';
import type express from 'express';
import type net from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Etcd3 } from 'etcd3';
import type { Logger } from 'pino';
import type { Config } from './config/config.js';
import { diagnoseEtcdAtStart } from './etcd/diagnosis.js';
import { poolKeys } from './etcd/keys.js';
import type { PoolElection } from './election/election.js';
import { electionApi, type Election } from './election/electionApi.js';
import type { LeadershipCallbacks } from './election/leadership.js';
import { firstServiceConflict, type ServiceConflictError } from './election/poolIdentity.js';
import type { LeaderStrategy } from './election/strategy.js';
import { createPoolSurface, memberServerApp, type PoolSurface } from './http/app.js';
import { InFlightRequests } from './http/inFlight.js';
import type { PoolRoutes } from './http/poolAddress.js';
import { closeServer, createBoundedServer, listen } from './http/server.js';
import { statusSource } from './http/statusPage/status.js';
import { statusRoutes, type StatusRouter } from './http/statusPage/statusPage.js';
import { createLogger } from './log/logger.js';
import { followEtcdMembers, openConnections } from './member/connections.js';
import { buildPools } from './member/pools.js';
import { serviceName } from './member/serviceName.js';
import { closeClients, LastCalls, shutDownGracefully } from './member/shutdown.js';
import { chooseStrategy } from './member/strategyChoice.js';
import { checkAdvertiseUrl } from './membership/identity.js';
import { asError } from './util/errors.js';
import type { LeaseThread } from './membership/leaseThread.js';
import { createMetrics, createNodeMetricsRegistry, type PoolMetrics } from './metrics/metrics.js';
import { VERSION } from './version.js';
import type { Forwarder } from './work/forwarder.js';
import { echoHandler, type WorkHandler } from './work/handler.js';

/** What `PoolMember.start` takes: the config, and what a service adds to the pool member. */
export interface PoolMemberOptions {
  /** The member's settings: `loadConfig(env)` (environment variables) or `configFrom({...})`. */
  config: Config;
  /** What the leader does with work; defaults to the echo handler with tickets. */
  handler?: WorkHandler;
  /**
   * The service this member runs, e.g. `orders`; a pool admits one service (poolIdentity.ts).
   * Default: `config.service` (SERVICE_NAME, `service-pool-leader`).
   */
  service?: string;
  /** Who should lead; defaults to the strategy ELECTION_STRATEGY names (`oldest`). */
  strategy?: LeaderStrategy;
  /** False: this member routes work but never leads. Default: `config.candidate` (CANDIDATE). */
  candidate?: boolean;
  /** A pino logger; default: JSON to stdout at LOG_LEVEL, or pretty with LOG_FORMAT=pretty. */
  logger?: Logger;
  /**
   * Your own Express app, to embed the member in: the pool's routes (/work, /pool, /healthz,
   * ...) are mounted on it at start, so your routes added before `start` are tried first and
   * those added after it are tried after the pool's; the member serves the whole app on PORT,
   * with its graceful shutdown, and answers 404 NOT_FOUND (JSON) to what nothing matched.
   * Not with `serve: false`.
   */
  app?: express.Express;
  /**
   * False: the member does not listen on PORT; mount `member.router` in your own app (under a
   * prefix if you like) and serve it yourself. Set ADVERTISE_URL to where the router answers,
   * prefix included, so that the other members can forward work to this one. Default: true.
   */
  serve?: boolean;
  /**
   * Whether to serve the status page `/` and its event stream `/events` (http/statusPage/).
   * Default: `config.statusPage` (STATUS_PAGE, true).
   */
  statusPage?: boolean;
  /**
   * Whether to serve the teaching path /simple-work, which reads etcd on every call
   * (http/simpleWork.ts). Default: `config.simpleWork` (SIMPLE_WORK, true).
   */
  simpleWork?: boolean;
  /**
   * Called when another process with this MEMBER_ID took over the registration while this one
   * was frozen or cut off (its election has stopped: two members with one id cannot be told
   * apart). The CLI shuts down and exits 3; a library user should do likewise.
   */
  onSuperseded?: (other: { memberKey: string; url: string; pid: number }) => void;
  /**
   * Called when a pool turned out to belong to another service after start-up (its member
   * registered at the same moment, before ours): this member withdrew from that pool and its
   * election has stopped. At start-up the same finding rejects `start` instead. The CLI shuts
   * down, prints the error's message and exits 1; a library user should do likewise.
   */
  onRefused?: (error: ServiceConflictError) => void;
}

/**
 * A pool member embedded in your service: it registers in etcd, takes part in the election of
 * each of its pools and serves the pool's HTTP routes. Made by `PoolMember.start`, ended by
 * `shutdown()`.
 */
export class PoolMember {
  /** Aborted when graceful shutdown begins: not ready, and connections are not kept alive. */
  private readonly draining = new AbortController();
  private readonly requests = new InFlightRequests();
  private readonly lastCalls = new LastCalls();
  private stopMembershipCheck: (() => void) | undefined;
  private shuttingDown: Promise<boolean> | undefined;
  /** The status page's routes; its event streams are ended before draining. */
  private statusRouter: StatusRouter | undefined;
  private poolSurface: PoolSurface | undefined;

  private constructor(
    readonly config: Config,
    /** One election per pool, in the order of POOLS; the first is the pool of /work. */
    private readonly elections: PoolElection[],
    /** The member's prom-client metrics, as /metrics serves them. */
    readonly metrics: PoolMetrics,
    readonly logger: Logger,
    /** The member's own server; undefined with `serve: false`. */
    readonly server: http.Server | undefined,
    /** The member's etcd client, for your own reads and for building fenced writes. */
    readonly etcd: Etcd3,
    private readonly forwarder: Forwarder,
    private readonly leases: LeaseThread,
  ) {}

  /**
   * Starts the HTTP server at once (so /healthz and /readyz answer; with `serve: false` there
   * is none: mount `router`), checks once that etcd lets us in — rejecting with
   * `EtcdAccessError` when it refuses for good, and with `ServiceConflictError` when a pool
   * belongs to another service — then registers and joins the elections in the background;
   * /readyz turns 200 once registered and synced. Blocks on loading a module strategy, on
   * listening and on the access check (bounded by the etcd call deadline); a start-up that
   * fails releases everything it took. Rejects with a TypeError, before anything starts, for
   * `app` with `serve: false`.
   */
  static async start(options: PoolMemberOptions): Promise<PoolMember> {
    const { config } = options;
    const serving = options.serve ?? true;
    if (!serving && options.app) {
      throw new TypeError('PoolMember.start: with serve: false, mount member.router in your app');
    }
    const logger =
      options.logger ??
      createLogger({
        level: config.log.level,
        format: config.log.format,
        base: { member: config.memberId },
      });
    const metrics = createMetrics(VERSION);
    const service = serviceName(options.service, config, Boolean(options.handler), logger);
    const strategy = await chooseStrategy(options.strategy, config.strategy);
    const connections = openConnections(config, metrics, logger);
    const { etcd, etcdOptions, leases, forwarder } = connections;
    const startedAt = new Date().toISOString();
    const pools = buildPools(
      config,
      { service, strategy, candidate: options.candidate ?? config.candidate, startedAt },
      { etcd, leases, forwarder, handler: options.handler ?? echoHandler, metrics, logger },
    );
    const elections = pools.map((pool) => pool.election);

    const server = serving ? createBoundedServer(config) : undefined;
    const member = new PoolMember(
      config,
      elections,
      metrics,
      logger,
      server,
      etcd,
      forwarder,
      leases,
    );
    for (const election of elections) {
      election.once('superseded', (other) => options.onSuperseded?.(other));
      election.once('refused', (error) => options.onRefused?.(error));
    }
    member.poolSurface = member.createSurface(options, pools, startedAt);
    if (server) {
      const served = memberServerApp(options.app?.use(member.router) ?? member.router, logger);
      // Work requests skip Express, unless your app's routes come first: they may want to see
      // every request.
      const lean = options.app ? () => false : member.poolSurface.leanWork;
      // A flood of connections can hold this thread in one turn of the event loop for seconds,
      // accepting and answering: busy, not hung, so the keep-alive thread hears from it there
      // too.
      server.on('connection', () => leases.alive());
      server.on('request', (req, res) => {
        member.activity(req, res);
        if (!lean(req, res)) served(req, res);
      });
      // Member links take the forwards of the lean way in, so they go where it goes: with your
      // app's routes first, forwards come by HTTP, through them.
      const links = options.app ? undefined : member.poolSurface.links;
      if (links) {
        server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
          leases.alive();
          links.accept(server, req, socket, head);
        });
      }
      await member.abandonOnFailure(() => listen(server, config.port, config.host));
      logger.info(
        {
          url: config.advertiseUrl,
          listen: `${config.host}:${member.port}`,
          pool: config.pool,
          version: VERSION,
        },
        'listening',
      );
      void checkAdvertiseUrl({ url: config.advertiseUrl, memberId: config.memberId }, logger);
    }
    member.stopMembershipCheck = followEtcdMembers(connections, config, logger);
    await member.abandonOnFailure(async () => {
      // One bounded check before joining: a refusal only an operator can fix stops start-up,
      // an etcd that does not answer is explained until it does (etcd/diagnosis.ts).
      const firstKeys = poolKeys(config.etcd.prefix, config.pool);
      const etcdAnswers = await diagnoseEtcdAtStart(etcd, etcdOptions, {
        scope: { prefix: firstKeys.pool, key: firstKeys.leader },
        logger,
        isReady: () => member.isReady(),
        signal: member.draining.signal,
      });
      // A pool of another service refuses us before we register; each election checks again.
      const conflict = etcdAnswers ? await firstServiceConflict(elections) : undefined;
      if (conflict) throw conflict;
    });
    for (const election of elections) {
      election
        .start()
        .catch((error: unknown) =>
          logger.error({ err: asError(error) }, 'election failed to start'),
        );
    }
    return member;
  }

  /**
   * The pool's routes and its lean way in for members' forwards, with the modules `options`
   * leave in (http/app.ts). Without a server of its own (`serve: false`) the member sees the
   * requests that reach its routes: it counts them for the drain, and the first one says the
   * user's server listens, so that its ADVERTISE_URL can be checked then.
   */
  private createSurface(
    options: PoolMemberOptions,
    pools: PoolRoutes[],
    startedAt: string,
  ): PoolSurface {
    const { config, logger, metrics } = this;
    if (options.statusPage ?? config.statusPage) {
      const status = statusSource({
        elections: this.elections,
        metrics,
        member: { id: config.memberId, url: config.advertiseUrl, version: VERSION, startedAt },
      });
      this.statusRouter = statusRoutes(status);
    }
    let advertiseUrlChecked = false;
    const onRequest = (req: express.Request, res: express.Response) => {
      this.activity(req, res);
      if (advertiseUrlChecked) return;
      advertiseUrlChecked = true;
      void checkAdvertiseUrl({ url: config.advertiseUrl, memberId: config.memberId }, logger);
    };
    return createPoolSurface({
      pools,
      statusRoutes: this.statusRouter,
      simpleWork: options.simpleWork ?? config.simpleWork,
      ...(this.server ? {} : { onRequest }),
      metrics,
      nodeMetrics: createNodeMetricsRegistry(),
      logger,
      draining: () => this.draining.signal.aborted,
      stopHolding: this.lastCalls.stopHolding,
      maxPendingWork: config.maxPendingWork,
      lastCall: this.lastCalls.lastCall,
      trackForward: () => this.requests.hold(),
      ...(config.forwardToken ? { forwardToken: config.forwardToken } : {}),
      ...(config.adminToken ? { adminToken: config.adminToken } : {}),
    });
  }

  /** A request arrived: counted in flight until answered, and a sign of life for the leases. */
  private activity(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.leases.alive();
    this.requests.track(req, res);
  }

  /**
   * Runs a start-up step; if it rejects, undoes the start-up (nothing was registered, so
   * nothing to leave: the server, the forwarder, the keep-alive thread and the etcd client are
   * closed) and rejects with the step's error.
   */
  private async abandonOnFailure<T>(step: () => Promise<T>): Promise<T> {
    try {
      return await step();
    } catch (error) {
      this.stopMembershipCheck?.();
      this.poolSurface?.links.close();
      if (this.server) await closeServer(this.server);
      await closeClients({ forwarder: this.forwarder, leases: this.leases, etcd: this.etcd });
      throw error;
    }
  }

  /**
   * The pool's routes (/work, /pool, /pools/..., /healthz, /readyz, /metrics, /resign, and
   * unless left out the status page and /simple-work), to mount in your own Express app:
   * `app.use(member.router)`, or `app.use('/pool-api', member.router)` under a prefix. What
   * they do not match goes on to your routes after them; their errors are answered with the
   * JSON error body. With `serve: false` the member answers nothing until you mount it and
   * listen; otherwise its own server already serves it on PORT.
   */
  get router(): express.Router {
    return this.poolSurface!.routes;
  }

  /** The elections as `electionOf` hands them out, made at its first call. */
  private electionApis: Map<string, Election> | undefined;

  /** The election of the first pool (the pool of /work). Never blocks. */
  get election(): Election {
    return this.electionOf(this.config.pool);
  }

  /**
   * The election of `pool`, one of `config.pools`; the same object at every call. Never
   * blocks; throws when this member is in no such pool.
   */
  electionOf(pool: string): Election {
    this.electionApis ??= new Map(
      this.elections.map((election) => [
        election.pool,
        electionApi(election, (error) =>
          this.logger.error(
            { err: asError(error), pool: election.pool },
            'leadership callback threw',
          ),
        ),
      ]),
    );
    const election = this.electionApis.get(pool);
    if (!election) throw new Error(`this member is in no pool named ${pool}`);
    return election;
  }

  /**
   * `electionOf(pool).leadership(callbacks)`, for `pool` or the first pool: calls `callbacks`
   * as this member's leadership starts and ends, and as the pool's leader changes
   * (election/leadership.ts). Returns the unsubscribe. Never blocks; the callbacks are called
   * synchronously, in the order `onStoppedLeading`, `onNewLeader`, `onStartedLeading`. What
   * a callback throws is logged.
   */
  leadership(callbacks: LeadershipCallbacks, pool: string = this.config.pool): () => void {
    return this.electionOf(pool).leadership(callbacks);
  }

  /** Ready in every pool. */
  isReady(): boolean {
    return this.elections.every((election) => election.isReady());
  }

  /** The port the member's own server listens on; undefined with `serve: false`. */
  get port(): number | undefined {
    return (this.server?.address() as AddressInfo | undefined)?.port;
  }

  /**
   * Graceful shutdown (SIGTERM, `kubectl delete pod`): turn not-ready, hand each claim to its
   * successor in one etcd write (or else delete it, for the successor to claim), keep forwarding new work to it for a short linger,
   * drain in-flight requests, revoke the lease, close (member/shutdown.ts). Resolves true when
   * everything finished within `SHUTDOWN_TIMEOUT_MS`, false when the bound cut it short; never
   * rejects. Calling it again returns the same promise.
   */
  shutdown(): Promise<boolean> {
    this.shuttingDown ??= shutDownGracefully({
      server: this.server,
      links: this.poolSurface?.links,
      forwarder: this.forwarder,
      leases: this.leases,
      etcd: this.etcd,
      elections: this.elections,
      requests: this.requests,
      draining: this.draining,
      stopMembershipCheck: this.stopMembershipCheck,
      statusRouter: this.statusRouter,
      lastCalls: this.lastCalls,
      logger: this.logger,
      timeoutMs: this.config.shutdownTimeoutMs,
      lingerMs: this.config.shutdownLingerMs,
    });
    return this.shuttingDown;
  }
}
