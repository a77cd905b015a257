/**
 * One pool member: election, work routing and the HTTP surface wired together, with graceful
 * shutdown. This is what `service-pool-leader serve` runs and what the library exports.
 */
import http from 'node:http';
import { setMaxListeners } from 'node:events';
import type express from 'express';
import type { AddressInfo } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import type { Etcd3 } from 'etcd3';
import type { Logger } from 'pino';
import { DEFAULT_SERVICE_NAME, type Config } from './config/config.js';
import { checkEtcdAccess, EtcdAccessError, type EtcdProblem } from './etcd/access.js';
import { connectEtcd, type EtcdOptions } from './etcd/client.js';
import { LeaseThread } from './membership/leaseThread.js';
import { poolKeys } from './etcd/keys.js';
import { watchEtcdMembership } from './etcd/membership.js';
import { setEndpoints } from './etcd/endpoints.js';
import { currentWorkRoute } from './etcd/requestPurpose.js';
import { PoolError } from './errors.js';
import { PoolElection } from './election/election.js';
import { HandoverGate } from './election/preemption.js';
import { firstServiceConflict, type ServiceConflictError } from './election/poolIdentity.js';
import { describeStrategy, strategyFor, type LeaderStrategy } from './election/strategy.js';
import { reportStrategyDisagreement } from './election/strategyAgreement.js';
import { createHttpApp } from './http/app.js';
import { createBoundedServer } from './http/server.js';
import { statusSource } from './http/status.js';
import { statusRoutes, type StatusRouter } from './http/statusPage.js';
import { createLogger } from './log/logger.js';
import { checkAdvertiseUrl } from './membership/identity.js';
import { asError } from './util/errors.js';
import { monotonicNow, sleep } from './util/time.js';
import { createMetrics, createNodeMetricsRegistry, type PoolMetrics } from './metrics/metrics.js';
import { VERSION } from './version.js';
import { Forwarder } from './work/forwarder.js';
import { echoHandler, type WorkHandler } from './work/handler.js';
import { WorkRouter } from './work/router.js';
import { TicketSequence } from './work/tickets.js';
import { publishLeadership } from './election/publishedLeads.js';

/** While etcd stays unreachable, its reason is logged again this often, not only on change. */
const REMIND_EVERY_MS = 30_000;
/**
 * Milliseconds before the shutdown bound at which held requests are answered 503 (then, half
 * of it later, those still open 502): time enough to write the answers before the exit.
 */
const LAST_CALL_MS = 200;

export interface PoolMemberOptions {
  config: Config;
  /** What the leader does with work; defaults to the echo handler with tickets. */
  handler?: WorkHandler;
  /**
   * The service this member runs, e.g. `orders`; a pool admits one service (poolIdentity.ts).
   * Default: `config.service` (SERVICE_NAME, `service-pool-leader`).
   */
  service?: string;
  /** Who should lead; defaults to the oldest member. */
  strategy?: LeaderStrategy;
  /** False: this member routes work but never leads. Default: `config.candidate` (CANDIDATE). */
  candidate?: boolean;
  logger?: Logger;
  /**
   * Your own Express app, to embed the member in: your routes come first, the pool's routes
   * (/work, /pool, /healthz, ...) are mounted after them, and the member serves the whole app
   * on PORT, with its graceful shutdown.
   */
  app?: express.Express;
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

export class PoolMember {
  private draining = false;
  private inFlight = 0;
  /**
   * Shutdown's last calls (see HttpAppOptions): end the holding, then answer what is open.
   * Every pending request listens to them, up to MAX_PENDING_WORK at once (not a leak).
   */
  private readonly holding = listenedByMany(new AbortController());
  private readonly lastCall = listenedByMany(new AbortController());
  private stopMembershipCheck: (() => void) | undefined;
  private idle: (() => void) | undefined;
  private shuttingDown: Promise<boolean> | undefined;
  /** The status page's routes; its event streams are ended before draining. */
  private statusRouter: StatusRouter | undefined;

  private constructor(
    readonly config: Config,
    /** One election per pool, in the order of POOLS; the first is the pool of /work. */
    readonly elections: PoolElection[],
    readonly metrics: PoolMetrics,
    readonly logger: Logger,
    readonly server: http.Server,
    /** The member's etcd client, for your own reads and for building fenced writes. */
    readonly etcd: Etcd3,
    private readonly forwarder: Forwarder,
    private readonly leases: LeaseThread,
  ) {}

  /**
   * Starts the HTTP server at once (so /healthz and /readyz answer), checks once that etcd lets
   * us in — rejecting with `EtcdAccessError` when it refuses for good — then registers and
   * joins the election in the background; /readyz turns 200 once registered and synced.
   */
  static async start(options: PoolMemberOptions): Promise<PoolMember> {
    const { config } = options;
    const logger =
      options.logger ??
      createLogger({
        level: config.log.level,
        format: config.log.format,
        base: { member: config.memberId },
      });
    const metrics = createMetrics(VERSION);
    const service = options.service ?? config.service;
    if (options.handler && service === DEFAULT_SERVICE_NAME) {
      logger.warn(
        { service },
        'a work handler of your own runs under the default service name: set SERVICE_NAME (or the service option) to your service, so that another service on this etcd cannot share its pool',
      );
    }
    const strategy = options.strategy ?? (await strategyFor(config.strategy));
    const etcdOptions: EtcdOptions = {
      endpoints: config.etcd.endpoints,
      callTimeoutMs: config.etcd.callTimeoutMs,
      ...(config.etcd.tls ? { tls: config.etcd.tls } : {}),
      ...(config.etcd.auth ? { auth: config.etcd.auth } : {}),
      onRequest: (operation) => {
        metrics.etcdRequests.inc({ operation });
        const route = currentWorkRoute();
        if (route) metrics.workEtcdRequests.inc({ route });
      },
    };
    const etcd = connectEtcd(etcdOptions);
    // Keep-alives on their own thread: a flood of requests on this one cannot delay them.
    const leases = new LeaseThread(etcd, etcdOptions, logger);
    const forwarder = new Forwarder(config.forwardTimeoutMs, config.forwardToken);
    const startedAt = new Date().toISOString();
    const handovers = new HandoverGate();
    const pools = config.pools.map((pool) => {
      const keys = poolKeys(config.etcd.prefix, pool);
      const election = new PoolElection(etcd, {
        pool,
        keys,
        record: {
          id: config.memberId,
          url: config.advertiseUrl,
          startedAt,
          pid: process.pid,
          version: VERSION,
          weight: config.weight,
          labels: config.labels,
          leads: [],
          service,
          strategy: describeStrategy(strategy),
          candidate: options.candidate ?? config.candidate,
        },
        leaseTtlSeconds: config.lease.ttlSeconds,
        safetyMarginMs: config.lease.safetyMarginMs,
        callTimeoutMs: config.etcd.callTimeoutMs,
        reconcileIntervalMs: config.reconcileIntervalMs,
        strategy,
        preemptAfterMs: config.strategy.preemptAfterMs,
        handovers,
        readOnClaim: [keys.ticketHighWater],
        leases,
        logger: logger.child({ pool }),
        metrics,
      });
      const tickets = new TicketSequence(
        etcd,
        election,
        keys.ticketHighWater,
        config.ticketBlockSize,
        metrics,
        logger.child({ pool }),
      );
      // On the claim's own answer, not on `leaderChanged`, which waits for our view to see
      // the claim come back through the watch.
      election.on('claimed', (term, reads) => tickets.prefetch(term, reads && { kv: reads[0] }));
      reportStrategyDisagreement(election, logger.child({ pool }));
      const router = new WorkRouter(
        etcd,
        election,
        options.handler ?? echoHandler,
        tickets,
        forwarder,
        { leaderlessWaitMs: config.leaderlessWaitMs, maxHops: config.forwardMaxHops },
        metrics,
        logger.child({ pool }),
      );
      return { election, router };
    });
    const elections = pools.map((pool) => pool.election);
    publishLeadership(elections);

    const server = createBoundedServer(config);
    // A flood of connections can hold this thread in one turn of the event loop for seconds,
    // accepting and answering: busy, not hung, so the keep-alive thread hears from it there too.
    server.on('connection', () => leases.alive());
    server.on('request', () => leases.alive());
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
    const status = statusSource({
      elections,
      metrics,
      member: { id: config.memberId, url: config.advertiseUrl, version: VERSION, startedAt },
    });
    const app = createHttpApp({
      pools,
      statusRoutes: (member.statusRouter = statusRoutes(status)),
      metrics,
      nodeMetrics: createNodeMetricsRegistry(),
      logger,
      draining: () => member.draining,
      stopHolding: member.holding.signal,
      maxPendingWork: config.maxPendingWork,
      lastCall: member.lastCall.signal,
      ...(config.forwardToken ? { forwardToken: config.forwardToken } : {}),
      ...(config.adminToken ? { adminToken: config.adminToken } : {}),
    });
    const handle = options.app ? options.app.use(app) : app;
    server.on('request', (req, res) => {
      member.track(req, res);
      handle(req, res);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.port, config.host, () => {
        server.off('error', reject);
        resolve();
      });
    }).catch(async (error: unknown) => {
      // Nothing was registered yet: release the etcd client and the keep-alive thread.
      await member.abandon();
      throw error;
    });
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
    member.stopMembershipCheck = watchEtcdMembership(
      etcd,
      config.etcd.endpoints,
      logger,
      config.etcd.membershipCheckMs,
      (urls) => {
        const change = setEndpoints(etcd, urls);
        leases.setEndpoints(urls);
        return change;
      },
    );
    // One bounded check before joining. A refusal that only an operator can fix (a wrong
    // password, a missing role, an untrusted certificate) stops start-up with one line naming
    // the cause: the process exits 1 and Kubernetes shows a crash loop with that line, where a
    // member retrying forever would look merely not ready. An etcd that does not answer is
    // different: members must tolerate etcd being down at start-up, so the member stays up,
    // not ready, says why, and joins once etcd answers.
    const firstKeys = poolKeys(config.etcd.prefix, config.pool);
    const access = () =>
      checkEtcdAccess(etcd, etcdOptions, { prefix: firstKeys.pool, key: firstKeys.leader });
    const problem = await access();
    if (problem?.permanent) {
      await member.abandon();
      throw new EtcdAccessError(problem);
    }
    if (problem) void member.explainEtcdUntilItAnswers(problem, access);
    // A pool of another service refuses us before we register; each election checks again.
    const conflict = problem ? undefined : await firstServiceConflict(elections);
    if (conflict) {
      await member.abandon();
      throw conflict;
    }
    for (const election of elections) {
      election
        .start()
        .catch((error: unknown) =>
          logger.error({ err: asError(error) }, 'election failed to start'),
        );
    }
    return member;
  }

  /** Undoes a start-up that cannot go on: nothing was registered, so nothing to leave. */
  private async abandon(): Promise<void> {
    this.stopMembershipCheck?.();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
    this.forwarder.close();
    await this.leases.close();
    this.etcd.close();
  }

  /**
   * While etcd does not answer after start-up, logs why in plain words — at first, whenever
   * the reason changes, and every 30 s — until it answers or the member is ready. The election
   * retries by itself meanwhile (its logs carry etcd3's raw errors); this only explains. A
   * permanent refusal found now (etcd came up but rejects us) is logged as an error: past
   * start-up the member does not exit on its own, it stays not ready.
   */
  private async explainEtcdUntilItAnswers(
    first: EtcdProblem,
    check: () => Promise<EtcdProblem | undefined>,
  ): Promise<void> {
    const report = (problem: EtcdProblem) =>
      this.logger[problem.permanent ? 'error' : 'warn'](
        { endpoints: this.config.etcd.endpoints, problem: problem.kind },
        `${problem.message} — not ready; retrying in the background`,
      );
    report(first);
    let last = { message: first.message, at: monotonicNow() };
    let delayMs = 500;
    for (;;) {
      // Unreferenced: this wait must not keep a library user's process alive.
      await delay(delayMs, undefined, { ref: false });
      delayMs = Math.min(delayMs * 2, 2000);
      if (this.draining) return;
      const problem = this.isReady() ? undefined : await check();
      if (this.draining) return;
      if (!problem) {
        this.logger.info({ endpoints: this.config.etcd.endpoints }, 'etcd answers');
        return;
      }
      if (problem.message !== last.message || monotonicNow() - last.at >= REMIND_EVERY_MS) {
        report(problem);
        last = { message: problem.message, at: monotonicNow() };
      }
    }
  }

  /** The election of the first pool (the pool of /work). */
  get election(): PoolElection {
    return this.elections[0]!;
  }

  /** Ready in every pool. */
  isReady(): boolean {
    return this.elections.every((election) => election.isReady());
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /**
   * Counts a request as in flight until its response closes — or its socket does: answers
   * queued behind others on a pipelined connection never get a socket of their own, so their
   * `close` never comes when the client hangs up.
   */
  private track(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.inFlight++;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      res.off('close', finish);
      req.socket.off('close', finish);
      this.inFlight--;
      if (this.inFlight === 0) this.idle?.();
    };
    if (req.socket.destroyed) {
      finish();
      return;
    }
    res.once('close', finish);
    req.socket.once('close', finish);
  }

  /**
   * Graceful shutdown (SIGTERM, `kubectl delete pod`): turn not-ready, release the claim so the
   * successor claims within milliseconds, keep forwarding new work to it for a short linger,
   * drain in-flight requests, revoke the lease, close. Resolves true when everything finished within
   * `SHUTDOWN_TIMEOUT_MS`, false when the bound cut it short.
   */
  shutdown(): Promise<boolean> {
    this.shuttingDown ??= this.runShutdown();
    return this.shuttingDown;
  }

  private async runShutdown(): Promise<boolean> {
    const startedAt = monotonicNow();
    const bound = this.config.shutdownTimeoutMs;
    this.draining = true;
    this.stopMembershipCheck?.();
    this.logger.info({ inFlight: this.inFlight, timeoutMs: bound }, 'shutting down');
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), bound);
    });
    // Before the bound, every request accepted gets its answer: first those still waiting for
    // a leader (nothing was sent), then those still with the leader or its handler.
    const margin = Math.min(LAST_CALL_MS, bound / 2);
    const lastCalls = [
      setTimeout(() => {
        this.holding.abort(
          new PoolError(
            'SHUTTING_DOWN',
            'this member is shutting down and no leader took the request: ask another member',
          ),
        );
      }, bound - margin),
      setTimeout(
        () => {
          this.lastCall.abort(
            new PoolError(
              'UPSTREAM_FAILED',
              'this member shut down before the work finished; it may or may not have executed',
            ),
          );
        },
        bound - margin / 2,
      ),
    ];
    const steps = (async () => {
      const step = (name: string) =>
        this.logger.debug(
          { step: name, atMs: Math.round(monotonicNow() - startedAt) },
          'shutdown step done',
        );
      await Promise.all(this.elections.map((election) => election.leave()));
      step('left the elections');
      // Peers learn of the release within milliseconds; until they do they may still forward
      // here. Keep answering (forwards get "not leader", every answer says Connection: close)
      // so no peer writes a request into a connection we are closing.
      await sleep(this.config.shutdownLingerMs);
      // Event streams of the status page never end by themselves: end them, or they would
      // hold the drain until the shutdown bound.
      this.statusRouter?.endAll();
      await this.drained();
      step('drained');
      // Nothing is in flight any more, so every remaining connection is idle or broken (one
      // whose client gave up while this process was paused never reads as idle): close all.
      await new Promise<void>((resolve) => {
        this.server.close(() => resolve());
        this.server.closeAllConnections();
      });
      step('server closed');
      await Promise.all(this.elections.map((election) => election.close()));
      return true as const;
    })();
    const clean = await Promise.race([steps, timedOut]);
    clearTimeout(timer);
    for (const lastCall of lastCalls) clearTimeout(lastCall);
    this.server.closeAllConnections();
    this.forwarder.close();
    await this.leases.close();
    this.etcd.close();
    this.logger.info(
      { clean, tookMs: Math.round(monotonicNow() - startedAt) },
      clean ? 'stopped' : 'shutdown timed out',
    );
    return clean;
  }

  /** Resolves when no request is in flight (this one excluded: there is none during shutdown). */
  private drained(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => (this.idle = resolve));
  }
}

/** An AbortController whose signal may have any number of listeners without a warning. */
function listenedByMany(controller: AbortController): AbortController {
  setMaxListeners(0, controller.signal);
  return controller;
}
