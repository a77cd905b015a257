/**
 * A bare node:http hop in front of the leader, a reference of the throughput benchmark
 * (bench/throughput.ts): what one hop costs in Node.js on this machine with nothing in it —
 * no validation, metrics, fencing or retries — beside the follower's forward and nginx's.
 *
 * `nodeHop.ts <leader URL>`: a node:http server; each client connection gets one kept-alive
 * TCP connection of its own to the leader, and each request on it is written there as a GET
 * of the same path, one at a time in order (HTTP/1.1 without pipelining); the leader's answer
 * is read by its Content-Length (the leader always sends one) and written back with its
 * status and Content-Type. A leader connection that fails, or an answer without a
 * Content-Length, ends the client's connection: the load generator counts that as an error.
 *
 * Prints its port to the parent over IPC once it listens (`{ port }`); exits when the parent
 * disconnects. Nothing blocks but the event loop's own I/O.
 */
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';

const [leaderUrl] = process.argv.slice(2);
if (leaderUrl === undefined) throw new Error('usage: nodeHop.ts <leader URL>');
const leader = new URL(leaderUrl);

const HEAD_END = Buffer.from('\r\n\r\n');
const CONTENT_LENGTH = /\r\ncontent-length:[ \t]*(\d+)/i;
const CONTENT_TYPE = /\r\ncontent-type:[ \t]*([^\r]*)/i;

/** The leader's answer to one request, as it is written back. */
type Answer = (status: number, type: string, body: Buffer) => void;

/** One client connection's connection to the leader: requests in order, answers in order. */
class LeaderConnection {
  private readonly socket: net.Socket;
  private readonly waiting: Answer[] = [];
  private bytes: Buffer = Buffer.alloc(0);
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
    this.bytes = this.bytes.length === 0 ? chunk : Buffer.concat([this.bytes, chunk]);
    for (;;) {
      const end = this.bytes.indexOf(HEAD_END);
      if (end < 0) return;
      const head = this.bytes.toString('latin1', 0, end);
      const length = CONTENT_LENGTH.exec(head)?.[1];
      if (length === undefined) {
        this.fail(new Error(`an answer without Content-Length: ${head.split('\r\n')[0]}`));
        return;
      }
      const bodyEnd = end + HEAD_END.length + Number(length);
      if (this.bytes.length < bodyEnd) return;
      const body = this.bytes.subarray(end + HEAD_END.length, bodyEnd);
      this.bytes = this.bytes.subarray(bodyEnd);
      const type = CONTENT_TYPE.exec(head)?.[1] ?? 'application/octet-stream';
      this.waiting.shift()?.(Number(head.slice(9, 12)), type, body);
    }
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
  upstream.send(req.url ?? '/', (status, type, body) => {
    res.writeHead(status, ['Content-Type', type, 'Content-Length', String(body.length)]);
    res.end(body);
  });
});

server.listen(0, '127.0.0.1', () => {
  process.send?.({ port: (server.address() as AddressInfo).port });
});
process.on('disconnect', () => process.exit(0));
