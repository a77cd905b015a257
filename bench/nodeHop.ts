/**
 * A bare node:http hop in front of the leader, a reference of the throughput benchmark
 * (bench/throughput.ts): what one hop costs in Node.js on this machine with nothing in it —
 * no validation, metrics, fencing or retries — beside the follower's forward and nginx's.
 *
 * `nodeHop.ts <leader URL>`: a node:http server; each client connection gets one kept-alive
 * TCP connection of its own to the leader, and each request on it is written there as a GET
 * of the same path, one at a time in order (HTTP/1.1 without pipelining); the leader's answer
 * is read by the members' own answer reader (src/work/httpAnswer.ts; the leader sends a
 * Content-Length) and written back with its status and Content-Type. A leader connection that
 * fails, or bytes that are not an answer, end the client's connection: the load generator
 * counts that as an error.
 *
 * Prints its port to the parent over IPC once it listens (`{ port }`); exits when the parent
 * disconnects. Nothing blocks but the event loop's own I/O.
 */
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { AnswerReader, type HttpAnswer } from '../src/work/httpAnswer.js';

const [leaderUrl] = process.argv.slice(2);
if (leaderUrl === undefined) throw new Error('usage: nodeHop.ts <leader URL>');
const leader = new URL(leaderUrl);

/** The largest answer relayed: a forward's own limit (the leader's answers are small). */
const MAX_ANSWER_BYTES = 1024 * 1024;

/** The leader's answer to one request, as it is written back. */
type Answer = (answer: HttpAnswer) => void;

/** One client connection's connection to the leader: requests in order, answers in order. */
class LeaderConnection {
  private readonly socket: net.Socket;
  private readonly waiting: Answer[] = [];
  /** Reads the answer to the request sent first of those waiting (the project's reader). */
  private reader = new AnswerReader(MAX_ANSWER_BYTES);
  /** Set once closed here (its client left): what the socket says then is no failure. */
  private closed = false;

  constructor(private readonly onFailure: (error: Error) => void) {
    this.socket = net.connect(Number(leader.port), leader.hostname);
    this.socket.setNoDelay(true);
    this.socket.on('data', (chunk: Buffer) => this.read(chunk));
    this.socket.on('error', (error) => this.fail(error));
    this.socket.on('close', () => this.fail(new Error('the leader closed the connection')));
  }

  send(path: string, answer: Answer): void {
    this.waiting.push(answer);
    this.socket.write(`GET ${path} HTTP/1.1\r\nHost: ${leader.host}\r\n\r\n`);
  }

  close(): void {
    this.closed = true;
    this.socket.destroy();
  }

  private fail(error: Error): void {
    if (!this.closed) this.onFailure(error);
  }

  private read(chunk: Buffer): void {
    let answer: HttpAnswer | undefined;
    try {
      answer = this.reader.push(chunk);
    } catch (error) {
      this.fail(error as Error);
      return;
    }
    if (answer === undefined) return;
    this.reader = new AnswerReader(MAX_ANSWER_BYTES);
    this.waiting.shift()?.(answer);
  }
}

const upstreams = new WeakMap<net.Socket, LeaderConnection>();

const server = http.createServer((req, res) => {
  const client = req.socket;
  let upstream = upstreams.get(client);
  if (upstream === undefined) {
    const created = new LeaderConnection((error) => {
      console.error(`nodeHop: ${error.message}`);
      client.destroy();
      created.close();
    });
    client.once('close', () => created.close());
    upstreams.set(client, created);
    upstream = created;
  }
  req.resume();
  upstream.send(req.url ?? '/', ({ status, contentType, body }) => {
    const type = contentType ?? 'application/octet-stream';
    res.writeHead(status, ['Content-Type', type, 'Content-Length', String(body.length)]);
    res.end(body);
  });
});

server.listen(0, '127.0.0.1', () => {
  process.send?.({ port: (server.address() as AddressInfo).port });
});
process.on('disconnect', () => process.exit(0));
