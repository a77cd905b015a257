/**
 * The connections a member keeps to the members it forwards to: reused while the peer keeps
 * them, replaced when it does not, and every failure saying whether the request was sent —
 * the forward's retry rule stands on that.
 */
import { once } from 'node:events';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { expect } from 'chai';
import {
  MemberConnections,
  type MemberOrigin,
  type PendingExchange,
} from '../../src/work/memberConnections.js';

const REQUEST = Buffer.from('POST /w HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}');

function originOf(server: net.Server): MemberOrigin {
  const { port } = server.address() as AddressInfo;
  return { authority: `127.0.0.1:${port}`, host: '127.0.0.1', port, tls: false };
}

/** The servers a test opened: closed after it, their connections with them. */
const opened: net.Server[] = [];

async function listening<T extends net.Server>(server: T): Promise<T> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  opened.push(server);
  return server;
}

async function answerOf(exchange: PendingExchange) {
  const outcome = await exchange.outcome;
  if (outcome.answer === undefined)
    throw new Error(`the exchange failed: ${String(outcome.failure)}`);
  return outcome.answer;
}

/** How a failed exchange failed: a system error's code or another error's message; sent? */
async function failureOf(exchange: PendingExchange): Promise<{ reason: string; sent: boolean }> {
  const outcome = await exchange.outcome;
  if (outcome.answer !== undefined) throw new Error('expected the exchange to fail');
  const failure = outcome.failure as NodeJS.ErrnoException;
  return { reason: failure.syscall ? failure.code! : failure.message, sent: outcome.sent };
}

/** A member's server that answers `{}` and counts the connections its requests came on. */
async function countingServer(onRequest: (res: http.ServerResponse) => void = () => undefined) {
  const sockets = new Set<net.Socket>();
  const server = await listening(
    http.createServer((req, res) => {
      sockets.add(req.socket);
      onRequest(res);
      req.resume().on('end', () => res.end('{}'));
    }),
  );
  return { server, sockets };
}

describe('MemberConnections', () => {
  let connections: MemberConnections;
  beforeEach(() => (connections = new MemberConnections()));
  afterEach(() => {
    connections.close();
    for (const server of opened.splice(0)) {
      if (server instanceof http.Server) server.closeAllConnections();
      if (server.listening) server.close();
    }
  });
  /** One request to `server`, answered. */
  const ask = (server: net.Server) =>
    answerOf(connections.exchange(originOf(server), REQUEST, 1024));

  it('sends requests one after the other on one kept-alive connection', async () => {
    const { server, sockets } = await countingServer();
    for (let i = 0; i < 5; i++) expect((await ask(server)).status).to.equal(200);
    expect(sockets.size).to.equal(1);
  });

  it('opens a new connection after an answer that closes its own', async () => {
    let close = true;
    const { server, sockets } = await countingServer((res) => {
      if (close) res.setHeader('Connection', 'close');
    });
    await ask(server);
    close = false;
    await ask(server);
    await ask(server);
    expect(sockets.size).to.equal(2);
  });

  it('a member kept warm has a connection open before the first request, which uses it', async () => {
    const sockets: net.Socket[] = [];
    const server = await listening(
      http.createServer((req, res) => req.resume().on('end', () => res.end('{}'))),
    );
    server.on('connection', (socket: net.Socket) => sockets.push(socket));
    const connected = once(server, 'connection');
    connections.keepWarm([originOf(server)]);
    connections.keepWarm([originOf(server)]);
    await connected;
    await answerOf(connections.exchange(originOf(server), REQUEST, 1024));
    await answerOf(connections.exchange(originOf(server), REQUEST, 1024));
    expect(sockets).to.have.length(1);
  });

  it('an idle connection the member ended is not reused: the next request goes on a new one', async () => {
    let received = 0;
    const server = await listening(
      net.createServer({ allowHalfOpen: true }, (socket) =>
        socket.on('data', () => {
          received++;
          // Answered, then ended by the member, as a member shutting down ends its own.
          socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}', () => socket.end());
        }),
      ),
    );
    await answerOf(connections.exchange(originOf(server), REQUEST, 1024));
    // The member's end read on our side, the connection not closed yet: the moment a
    // request written into it would be lost and reported as possibly executed.
    const idle = (connections as unknown as { idle: Map<string, { socket: net.Socket }[]> }).idle;
    await once(idle.get(originOf(server).authority)![0]!.socket, 'end');
    const second = await answerOf(connections.exchange(originOf(server), REQUEST, 1024));
    expect([second.status, received]).to.deep.equal([200, 2]);
  });

  it("a connection is not reused past the member's Keep-Alive timeout, less a second", async () => {
    const { server, sockets } = await countingServer();
    // Node announces it: Keep-Alive: timeout=1 — nothing left once the second is taken off.
    server.keepAliveTimeout = 1000;
    await ask(server);
    await ask(server);
    expect(sockets.size).to.equal(2);
  });

  it('a refused connection failed before anything was sent', async () => {
    const server = await listening(net.createServer());
    const origin = originOf(server);
    await new Promise((resolve) => server.close(resolve));
    expect(await failureOf(connections.exchange(origin, REQUEST, 1024))).to.deep.equal({
      reason: 'ECONNREFUSED',
      sent: false,
    });
  });

  it('a connection that closes after the request, or answers garbage, failed after it was sent', async () => {
    const server = await listening(
      net.createServer((socket) =>
        socket.once('data', (bytes) => {
          if (bytes.includes('garbage')) socket.write('SMTP ready\r\n\r\n');
          else socket.destroy();
        }),
      ),
    );
    const closed = await failureOf(connections.exchange(originOf(server), REQUEST, 1024));
    expect(closed).to.deep.equal({
      reason: 'the connection closed before the answer was complete',
      sent: true,
    });
    const garbage = Buffer.from('GET /garbage HTTP/1.1\r\n\r\n');
    const outcome = await connections.exchange(originOf(server), garbage, 1024).outcome;
    expect([outcome.answer, outcome.answer ?? outcome.sent]).to.deep.equal([undefined, true]);
    expect(String(outcome.answer ?? outcome.failure)).to.equal(
      'AnswerFormatError: not an HTTP/1.x status line: "SMTP ready"',
    );
  });

  it('cancelling an exchange closes its connection and fails it with the reason given', async () => {
    const server = await listening(net.createServer(() => undefined));
    const exchange = connections.exchange(originOf(server), REQUEST, 1024);
    await new Promise((resolve) => setTimeout(resolve, 20));
    exchange.cancel(new Error('given up'));
    expect(await failureOf(exchange)).to.deep.equal({ reason: 'given up', sent: true });
  });

  it('close() fails the exchanges under way', async () => {
    const server = await listening(net.createServer(() => undefined));
    const exchange = connections.exchange(originOf(server), REQUEST, 1024);
    await new Promise((resolve) => setTimeout(resolve, 20));
    connections.close();
    expect((await failureOf(exchange)).reason).to.equal('closed');
    expect(() => connections.exchange(originOf(server), REQUEST, 1024)).to.throw('closed');
  });
});
