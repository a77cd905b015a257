/**
 * One pool member: election, work routing and the HTTP surface wired together, with graceful
 * shutdown. This is what `service-pool-leader serve` runs and what the library exports.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Etcd3 } from 'etcd3';
import type { Logger } from 'pino';
import type { Config } from './config/config.js';
import { connectEtcd } from './etcd/client.js';
import { poolKeys } from './etcd/keys.js';
import { PoolElection } from './election/election.js';
import { sleep } from './election/poolView.js';
import type { LeaderStrategy } from './election/strategy.js';
import { createHttpApp } from './http/app.js';
import { createLogger } from './log/logger.js';
import { asError } from './membership/lease.js';
import { createMetrics, createNodeMetricsRegistry, type PoolMetrics } from './metrics/metrics.js';
import { VERSION } from './version.js';
import { Forwarder } from './work/forwarder.js';
import { echoHandler, type WorkHandler } from './work/handler.js';
import { WorkRouter } from './work/router.js';
import { TicketSequence } from './work/tickets.js';

export interface PoolMemberOptions {
  config: Config;
  /** What the leader does with work; defaults to the echo handler with tickets. */
  handler?: WorkHandler;
  /** Who should lead; defaults to the oldest member. */
  strategy?: LeaderStrategy;
  logger?: Logger;
}

export class PoolMember {
  private draining = false;
  private inFlight = 0;
  private idle: (() => void) | undefined;
  private shuttingDown: Promise<boolean> | undefined;

  private constructor(
    readonly config: Config,
    readonly election: PoolElection,
    readonly metrics: PoolMetrics,
    readonly logger: Logger,
    readonly server: http.Server,
    private readonly etcd: Etcd3,
    private readonly forwarder: Forwarder,
  ) {}

  /**
   * Starts the HTTP server at once (so /healthz and /readyz answer), then registers and joins
   * the election in the background; /readyz turns 200 once registered and synced.
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
    const etcd = connectEtcd({
      endpoints: config.etcd.endpoints,
      callTimeoutMs: config.etcd.callTimeoutMs,
      onRequest: (operation) => metrics.etcdRequests.inc({ operation }),
    });
    const keys = poolKeys(config.etcd.prefix, config.pool);
    const election = new PoolElection(etcd, {
      pool: config.pool,
      keys,
      record: {
        id: config.memberId,
        url: config.advertiseUrl,
        startedAt: new Date().toISOString(),
        pid: process.pid,
        version: VERSION,
        weight: 1,
        labels: {},
        leads: [],
      },
      leaseTtlSeconds: config.lease.ttlSeconds,
      safetyMarginMs: config.lease.safetyMarginMs,
      callTimeoutMs: config.etcd.callTimeoutMs,
      reconcileIntervalMs: config.reconcileIntervalMs,
      strategy: options.strategy,
      logger: logger.child({ pool: config.pool }),
      metrics,
    });
    const forwarder = new Forwarder(config.forwardTimeoutMs);
    const tickets = new TicketSequence(
      etcd,
      election,
      keys.ticketHighWater,
      config.ticketBlockSize,
      metrics,
    );
    const router = new WorkRouter(
      etcd,
      election,
      options.handler ?? echoHandler,
      tickets,
      forwarder,
      { leaderlessWaitMs: config.leaderlessWaitMs, maxHops: config.forwardMaxHops },
      metrics,
      logger,
    );

    const server = http.createServer();
    // Longer than the forwarders' idle timeout (30 s), so that side closes idle sockets first.
    server.keepAliveTimeout = 65_000;
    server.headersTimeout = 66_000;
    server.requestTimeout = Math.max(30_000, config.leaderlessWaitMs + config.forwardTimeoutMs * 2);
    const member = new PoolMember(config, election, metrics, logger, server, etcd, forwarder);
    const app = createHttpApp({
      election,
      router,
      metrics,
      nodeMetrics: createNodeMetricsRegistry(),
      logger,
      draining: () => member.draining,
    });
    server.on('request', (req, res) => {
      member.track(req, res);
      app(req, res);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.port, config.host, () => {
        server.off('error', reject);
        resolve();
      });
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
    election
      .start()
      .catch((error: unknown) => logger.error({ err: asError(error) }, 'election failed to start'));
    return member;
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
    const startedAt = Date.now();
    const bound = this.config.shutdownTimeoutMs;
    this.draining = true;
    this.logger.info({ inFlight: this.inFlight, timeoutMs: bound }, 'shutting down');
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), bound);
    });
    const steps = (async () => {
      const step = (name: string) =>
        this.logger.debug({ step: name, atMs: Date.now() - startedAt }, 'shutdown step done');
      await this.election.leave();
      step('left the election');
      // Peers learn of the release within milliseconds; until they do they may still forward
      // here. Keep answering (forwards get "not leader", every answer says Connection: close)
      // so no peer writes a request into a connection we are closing.
      await sleep(this.config.shutdownLingerMs);
      await this.drained();
      step('drained');
      // Nothing is in flight any more, so every remaining connection is idle or broken (one
      // whose client gave up while this process was paused never reads as idle): close all.
      await new Promise<void>((resolve) => {
        this.server.close(() => resolve());
        this.server.closeAllConnections();
      });
      step('server closed');
      await this.election.close();
      return true as const;
    })();
    const clean = await Promise.race([steps, timedOut]);
    clearTimeout(timer);
    this.server.closeAllConnections();
    this.forwarder.close();
    this.etcd.close();
    this.logger.info(
      { clean, tookMs: Date.now() - startedAt },
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
