/**
 * How long a follower holds a request when the leader it sees cannot take it, and what the
 * answer then says. The election is a stand-in exposing only what the router reads (the
 * decision logic under test); the forwards are real HTTP to a local server.
 */
import { EventEmitter } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { pino } from 'pino';
import type { PoolElection } from '../../src/election/election.js';
import { currentWorkRoute } from '../../src/etcd/requestPurpose.js';
import { createMetrics } from '../../src/metrics/metrics.js';
import { Forwarder } from '../../src/work/forwarder.js';
import { WorkRouter } from '../../src/work/router.js';
import { LINK_PATH } from '../../src/work/linkFrames.js';
import { freePorts } from '../../src/demo/ports.js';
import { failureOf } from '../support/rejection.js';
import { memberView } from '../support/memberView.js';
import type { MemberView } from '../../src/election/poolView.js';

/** A follower's election: `leader` is another member's claim that never changes. */
class StandInElection extends EventEmitter {
  readonly pool = 'default';
  readonly memberId = 'b';
  readonly memberKey = '/p/pools/default/members/b';
  readonly term = undefined;
  /** The members the view holds: where a named successor must be registered. */
  readonly view: { members: MemberView[] } = { members: [] };
  constructor(public claim: { id: string; url: string; term: bigint }) {
    super();
  }
  isLeader() {
    return false;
  }
  leader() {
    return { ...this.claim, self: false };
  }
  waitFor(ready: (e: this) => boolean, timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => setTimeout(() => resolve(ready(this)), timeoutMs));
  }
}

/** A follower's router over `election`, forwarding with `forwarder` (the work never runs here). */
function followerRouter(
  election: StandInElection,
  forwarder: Forwarder,
  leaderlessWaitMs: number,
  logger = pino({ level: 'silent' }),
): WorkRouter {
  return new WorkRouter(
    undefined as never,
    election as unknown as PoolElection,
    () => Promise.resolve({}),
    undefined as never,
    forwarder,
    { leaderlessWaitMs, maxHops: 3, forwardTimeoutMs: 500 },
    createMetrics('test'),
    logger,
  );
}

function logLines() {
  const lines: Record<string, unknown>[] = [];
  const logger = pino(
    { level: 'info', base: null },
    { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) },
  );
  return { logger, lines };
}

describe('WorkRouter: a follower whose leader cannot take the request', function () {
  this.timeout(10_000);
  const WAIT_MS = 1200;
  let server: http.Server;
  let url: string;
  let forwards = 0;
  const forwarder = new Forwarder(500);

  before(async () => {
    // A leader whose claim still stands in etcd while it has stopped acting: 421 to all.
    server = http.createServer((req, res) => {
      forwards++;
      req.resume();
      req.on('end', () =>
        res.writeHead(421, { 'content-type': 'application/json' }).end('{"error":{}}'),
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => {
    forwarder.close();
    server.closeAllConnections();
    server.close();
  });

  function router(leaderUrl: string) {
    const { logger, lines } = logLines();
    const election = new StandInElection({ id: 'a', url: leaderUrl, term: 9n });
    const routing = followerRouter(election, forwarder, WAIT_MS, logger);
    return { routing, lines, election };
  }

  it('a leader answering "not leader": it waits LEADERLESS_WAIT_MS, then NO_LEADER names that leader', async () => {
    const { routing } = router(url);
    forwards = 0;
    const error = await failureOf(routing.route({ payload: 1, via: [], hops: 0 }));
    expect(error.code).to.equal('NO_LEADER');
    expect(error.details?.waitedMs).to.be.at.least(WAIT_MS);
    // At most one forward (500 ms timeout) past the wait, not a hop-count of short retries.
    expect(error.details?.waitedMs).to.be.below(WAIT_MS + 500);
    // Asked again with backoff (25 ms doubling, at most 1 s apart), not in a tight loop.
    expect(forwards).to.be.within(4, 10);
    expect(error.message).to.equal(
      `leader a (term 9) no longer acts as leader and no successor claimed within ${error.details?.waitedMs as number} ms`,
    );
  });

  it('an unreachable leader: LEADER_UNREACHABLE with its URL and why, logged once with the URL', async () => {
    const [closedPort] = await freePorts(1);
    const closed = `http://127.0.0.1:${closedPort}`;
    const { routing, lines } = router(closed);
    const errors = await Promise.all(
      [1, 2].map(() => failureOf(routing.route({ payload: 1, via: [], hops: 0 }))),
    );
    for (const error of errors) {
      expect(error.code).to.equal('LEADER_UNREACHABLE');
      expect(error.details?.waitedMs).to.be.at.least(WAIT_MS);
      expect(error.message).to.match(
        new RegExp(`^leader a at ${closed} could not be reached for \\d+ ms \\(ECONNREFUSED\\)$`),
      );
    }
    const warnings = lines.filter((line) => line.level === 40);
    expect(warnings, JSON.stringify(lines)).to.have.length(1);
    expect(warnings[0]).to.include({ leader: 'a', url: closed, reason: 'ECONNREFUSED' });
  });

  it('a new leader starts the backoff over: a refusal by it is asked again soon, not after the last wait', async () => {
    const [closedPort] = await freePorts(1);
    const { routing, election } = router(`http://127.0.0.1:${closedPort}`);
    const waits: number[] = [];
    const done = new AbortController();
    // Each wait ends at once; after four refusals by the unreachable leader, another claims.
    election.waitFor = (ready, timeoutMs) => {
      waits.push(timeoutMs);
      if (waits.length === 4) election.claim = { id: 'c', url, term: 10n };
      if (waits.length === 6) done.abort();
      return Promise.resolve(ready(election));
    };
    await failureOf(routing.route({ payload: 1, via: [], hops: 0 }, () => done.signal));
    expect(waits.slice(0, 4)).to.deep.equal([25, 50, 100, 200]);
    expect(waits.slice(4)).to.deep.equal([25, 50]);
  });

  it('the client going away ends the wait at once', async () => {
    const { routing } = router(url);
    const gone = new AbortController();
    const startedAt = Date.now();
    setTimeout(() => gone.abort(), 100);
    const error = await failureOf(
      routing.route({ payload: 1, via: [], hops: 0 }, () => gone.signal),
    );
    expect(error.code).to.equal('NO_LEADER');
    expect(Date.now() - startedAt).to.be.below(WAIT_MS);
  });
});

describe('WorkRouter: a leaving leader that names its successor', function () {
  this.timeout(10_000);
  const servers: http.Server[] = [];
  const forwarder = new Forwarder(500);
  const asked: string[] = [];

  /** A member at a local URL answering every forward with `status` and `body`, noting `name`. */
  async function member(name: string, status: number, body: unknown): Promise<string> {
    const server = http.createServer((req, res) => {
      // A member of a version without links: forwards come by HTTP.
      if (req.url === LINK_PATH) return void res.writeHead(404).end();
      asked.push(`${name} term ${String(req.headers['x-pool-term'])}`);
      req.resume();
      req.on('end', () =>
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body)),
      );
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  after(() => {
    forwarder.close();
    for (const server of servers) {
      server.closeAllConnections();
      server.close();
    }
  });

  /** A 421 from the leaver naming `successor` as it leaves. */
  const naming = (successor: unknown) => ({
    error: { code: 'NOT_LEADER', message: 'leaving', details: { successor } },
  });

  /**
   * A follower (b) whose view shows a's claim at term 9 and never moves, with `members`
   * registered; every wait it makes is noted and ends at once, and `done` aborts at the
   * `waitsBeforeDone`th.
   */
  function follower(leaverUrl: string, members: MemberView[], waitsBeforeDone = 1) {
    const election = new StandInElection({ id: 'a', url: leaverUrl, term: 9n });
    election.view.members = members;
    const waits: number[] = [];
    const done = new AbortController();
    election.waitFor = (ready, timeoutMs) => {
      waits.push(timeoutMs);
      if (waits.length >= waitsBeforeDone) done.abort();
      return Promise.resolve(ready(election));
    };
    const routing = followerRouter(election, forwarder, 1000);
    asked.length = 0;
    return { routing, waits, done };
  }

  it('the request goes to the successor at once, under the term handed over, before the view moves', async () => {
    const successorUrl = await member('c', 200, { performedBy: 'c' });
    const leaverUrl = await member('a', 421, naming({ id: 'c', url: successorUrl }));
    const { routing, waits } = follower(leaverUrl, [
      memberView('a', 1n, { url: leaverUrl }),
      memberView('c', 3n, { url: successorUrl }),
    ]);
    const outcome = await routing.route({ payload: 1, via: [], hops: 0 });
    expect(outcome).to.deep.include({ role: 'follower', status: 200 });
    const { relayed } = outcome as { relayed: { bytes: Buffer } };
    expect(JSON.parse(relayed.bytes.toString())).to.deep.equal({ performedBy: 'c' });
    expect(asked).to.deep.equal(['a term 9', 'c term 9']);
    expect(waits, 'no wait between the two').to.deep.equal([]);
  });

  it('followed once per request: asked again, the leaver’s naming the same successor is not followed again', async () => {
    const cUrl = await member('c', 421, { error: { code: 'NOT_LEADER', message: 'not yet' } });
    const leaverUrl = await member('a', 421, naming({ id: 'c', url: cUrl }));
    // The view never moves; the second wait is the last.
    const { routing, done } = follower(
      leaverUrl,
      [memberView('a', 1n, { url: leaverUrl }), memberView('c', 3n, { url: cUrl })],
      2,
    );
    const error = await failureOf(
      routing.route({ payload: 1, via: [], hops: 0 }, () => done.signal),
    );
    expect(error.code).to.equal('NO_LEADER');
    expect(asked).to.deep.equal(['a term 9', 'c term 9', 'a term 9']);
  });

  it('a successor the view does not have there — unregistered, another URL, us, not a candidate, malformed — is not followed', async () => {
    const elsewhere = await member('x', 200, { performedBy: 'x' });
    for (const [successor, members] of [
      [{ id: 'c', url: elsewhere }, []],
      [{ id: 'c', url: elsewhere }, [memberView('c', 3n)]],
      [{ id: 'b', url: elsewhere }, [memberView('b', 2n, { url: elsewhere })]],
      [{ id: 'd', url: elsewhere }, [memberView('d', 4n, { url: elsewhere, candidate: false })]],
      [{ id: 'c', url: 'ftp://x' }, [memberView('c', 3n, { url: 'ftp://x' })]],
      ['c', [memberView('c', 3n)]],
    ] as const) {
      const leaverUrl = await member('a', 421, naming(successor));
      const { routing, done } = follower(leaverUrl, [
        memberView('a', 1n, { url: leaverUrl }),
        ...members,
      ]);
      const error = await failureOf(
        routing.route({ payload: 1, via: [], hops: 0 }, () => done.signal),
      );
      expect(error.code, JSON.stringify(successor)).to.equal('NO_LEADER');
      expect(asked, JSON.stringify(successor)).to.deep.equal(['a term 9']);
    }
  });

  it('the client going away while the leaver answers: the named successor is not asked', async () => {
    const gone = new AbortController();
    const successorUrl = await member('c', 200, { performedBy: 'c' });
    const leaverUrl = await member('a', 421, naming({ id: 'c', url: successorUrl }));
    servers.at(-1)!.prependListener('request', () => gone.abort());
    const { routing } = follower(leaverUrl, [
      memberView('a', 1n, { url: leaverUrl }),
      memberView('c', 3n, { url: successorUrl }),
    ]);
    const error = await failureOf(
      routing.route({ payload: 1, via: [], hops: 0 }, () => gone.signal),
    );
    expect(error.code).to.equal('NO_LEADER');
    expect(asked).to.deep.equal(['a term 9']);
  });
});

describe('WorkRouter: what executing a request costs in etcd counts for its route', () => {
  /** A leader's election: it leads under term 5. */
  class LeaderElection extends EventEmitter {
    readonly pool = 'default';
    readonly memberId = 'a';
    readonly term = 5n;
    isLeader() {
      return true;
    }
  }

  it('the handler runs as done for the route that asked: /work, or /simple-work', async () => {
    const seen: (string | undefined)[] = [];
    const routing = new WorkRouter(
      undefined as never,
      new LeaderElection() as unknown as PoolElection,
      () => {
        seen.push(currentWorkRoute());
        return Promise.resolve({});
      },
      undefined as never,
      { keepWarm: () => undefined } as never,
      { leaderlessWaitMs: 100, maxHops: 3, forwardTimeoutMs: 500 },
      createMetrics('test'),
      pino({ level: 'silent' }),
    );
    await routing.route({ payload: 1, via: [], hops: 0 });
    await routing.route({ payload: 1, via: [], hops: 0 }, undefined, 'simple-work');
    expect(seen).to.deep.equal(['work', 'simple-work']);
    expect(currentWorkRoute(), 'outside execution').to.equal(undefined);
  });
});
