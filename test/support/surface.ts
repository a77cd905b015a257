/**
 * A member's HTTP surface on a server of its own, for tests of what it answers: the surface is
 * real (createPoolSurface on a node:http server, served as the member's own server serves it);
 * the election is a stand-in exposing only what the work router and the routes read.
 */
import { EventEmitter } from 'node:events';
import http from 'node:http';
import type net from 'node:net';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import type { PoolElection } from '../../src/election/election.js';
import { createPoolSurface, memberServerApp } from '../../src/http/app.js';
import type { LinkServer } from '../../src/http/linkServer.js';
import { createMetrics, createNodeMetricsRegistry } from '../../src/metrics/metrics.js';
import { Forwarder } from '../../src/work/forwarder.js';
import type { WorkHandler } from '../../src/work/handler.js';
import { WorkRouter } from '../../src/work/router.js';

export const FORWARD_TOKEN = 'forward-secret-0123456789';

/** An election that never changes: `term` set, this member leads; else `claim` does. */
export class StandInElection extends EventEmitter {
  readonly pool = 'default';
  constructor(
    readonly memberId: string,
    readonly term: bigint | undefined,
    private readonly claim: { id: string; url: string; term: bigint },
  ) {
    super();
  }
  isLeader() {
    return this.term !== undefined;
  }
  leader() {
    return { ...this.claim, self: this.isLeader() };
  }
  leaderAnswered() {}
  waitFor(ready: (e: this) => boolean, timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => setTimeout(() => resolve(ready(this)), timeoutMs));
  }
}

/** What the stand-in leader's handler answers: the work, who passed it on, its term. */
const handler: WorkHandler = (request, context) => ({
  payload: request.payload,
  via: request.via,
  term: context.term,
});

export interface Surface {
  url: string;
  metrics: ReturnType<typeof createMetrics>;
  /** Requests that reached the Express routes (not taken by the lean path). */
  throughExpress: number;
  /** HTTP requests its server received, by path. */
  received: string[];
  /** Emits `request` for each of them, once noted in `received`. */
  requests: EventEmitter;
  /** Its member links (with `links: true`, its server's upgrade listener). */
  links: LinkServer;
  close(): void;
}

/** A member's surface on its own server, tried as member.ts tries it: lean path, then Express. */
export async function serveSurface(
  election: StandInElection,
  {
    links: takesLinks = false,
    ...options
  }: {
    forwardToken?: string;
    maxPendingWork?: number;
    links?: boolean;
  } = {},
): Promise<Surface> {
  const metrics = createMetrics('test');
  const logger = pino({ level: 'silent' });
  const forwarder = new Forwarder(2000, undefined, (open) =>
    metrics.memberLinks.set({ direction: 'out' }, open),
  );
  const router = new WorkRouter(
    undefined as never,
    election as unknown as PoolElection,
    handler,
    undefined as never,
    forwarder,
    { leaderlessWaitMs: 500, maxHops: 3, forwardTimeoutMs: 2000 },
    metrics,
    logger,
  );
  const surface = {
    url: '',
    metrics,
    throughExpress: 0,
    received: [],
    requests: new EventEmitter(),
    close: () => undefined,
  } as unknown as Surface;
  const { routes, leanWork, links } = createPoolSurface({
    pools: [{ election: election as unknown as PoolElection, router }],
    metrics,
    nodeMetrics: createNodeMetricsRegistry(),
    logger,
    draining: () => false,
    simpleWork: false,
    onRequest: () => surface.throughExpress++,
    ...options,
  });
  const served = memberServerApp(routes, logger);
  const server = http.createServer((req, res) => {
    surface.received.push(req.url!);
    surface.requests.emit('request');
    if (!leanWork(req, res)) served(req, res);
  });
  surface.links = links;
  if (takesLinks)
    server.on('upgrade', (req, socket, head) =>
      links.accept(server, req, socket as net.Socket, head),
    );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  surface.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  surface.close = () => {
    forwarder.close();
    links.close();
    server.closeAllConnections();
    server.close();
  };
  return surface;
}

export interface Ask {
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
}

/**
 * An answer as the client sees it: status, the headers that matter, the body's text. By
 * node:http, not fetch, which sends a request again on a 421.
 */
export function ask(url: string, init: Ask = {}) {
  return new Promise<Record<string, unknown>>((resolve, reject) => {
    const req = http.request(url, { method: init.method ?? 'GET', headers: init.headers ?? {} });
    req.on('error', reject);
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      res.on('end', () =>
        resolve({
          status: res.statusCode,
          type: res.headers['content-type'],
          length: res.headers['content-length'],
          retryAfter: res.headers['retry-after'],
          authenticate: res.headers['www-authenticate'],
          connection: res.headers.connection,
          body,
        }),
      );
    });
    req.end(init.body);
  });
}

/** A forward as a member sends it, with the headers given over the usual ones. */
export function forward(body: string, headers: Record<string, string> = {}): Ask {
  return {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'x-pool-hops': '1',
      'x-pool-via': 'b',
      'x-pool-term': '7',
      ...headers,
    },
    body,
  };
}

export async function workRequests(surface: Surface, outcome: string): Promise<number> {
  const { values } = await surface.metrics.workRequests.get();
  return values.find((v) => v.labels.outcome === outcome && v.labels.role === 'leader')?.value ?? 0;
}
