/**
 * The member's HTTP server, with a bound on every socket it accepts, whatever its client does.
 */
import http from 'node:http';
import type { Config } from '../config/config.js';

/** A server whose sockets all end, however slow or silent the client (see the bounds below). */
export function createBoundedServer(
  config: Pick<Config, 'leaderlessWaitMs' | 'forwardMaxHops' | 'forwardTimeoutMs'>,
): http.Server {
  // Node (18+) applies headersTimeout and requestTimeout only while a request is being *received*, counted from its first byte (for
  // a new connection, from its accept) — not while the handler works or waits for a leader,
  // nor while a keep-alive connection is idle. A request is a few headers and at most 65 KiB
  // of body, sent at once by members and load balancers, so the bounds are short: a client
  // that trickles or stops (slowloris) loses its socket after 5 s in the headers or 10 s in
  // all, answered Node's plain "408 Request Timeout". Node checks every
  // connectionsCheckingInterval (default 30 s, which would triple the bound).
  const server = http.createServer({
    connectionsCheckingInterval: 1_000,
    headersTimeout: 5_000,
    requestTimeout: 10_000,
    // Node's default, pinned so that --max-http-header-size cannot raise it; beyond, Node
    // answers 431. The GET form of /work carries its payload in the URL, hence within it.
    maxHeaderSize: 16 * 1024,
  });
  // Idle keep-alive sockets: longer than the forwarders' idle timeout (30 s), so that side
  // closes them first and never writes into a socket we are closing.
  server.keepAliveTimeout = 65_000;
  // A socket silent in both directions this long is destroyed. Only this catches a client
  // that sends requests and never reads the answers (Node stops parsing once the answers
  // fill the socket, so no timeout above runs). It must outlast the longest silence of a
  // legitimate /work: waiting for a leader, then every forward attempt up to its timeout —
  // and at least a minute, for the leader's own handler and its etcd calls.
  server.timeout = Math.max(
    60_000,
    config.leaderlessWaitMs + (config.forwardMaxHops + 1) * config.forwardTimeoutMs + 5_000,
  );
  return server;
}

/** Listens on `port` and `host`; rejects with the server's error (EADDRINUSE, EACCES, ...). */
export function listen(server: http.Server, port: number, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/**
 * Stops accepting and closes every connection at once, idle or not: call it when nothing is
 * in flight any more (or nothing can be waited for). Resolves when the server has closed.
 */
export function closeServer(server: http.Server): Promise<void> {
  return new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
