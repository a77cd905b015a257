/**
 * A TCP proxy between one pool member and etcd that a test can cut, heal and slow down: a
 * network partition and a slow network without root. Loopback only.
 *
 * - `cut('blackhole')` (default): connections stay open but no byte passes, new connections
 *   are accepted and held — what a partition looks like; clients notice only by timeouts.
 * - `cut('refuse')`: every connection is reset and new ones are closed at once.
 * - `heal()`: traffic flows again; connections held during the cut are reset so that clients
 *   reconnect (TCP would have given up on them in a real partition of this length).
 * - `delayMs`: every chunk waits this long in each direction (an etcd answering slowly).
 */
import net from 'node:net';

export type CutMode = 'blackhole' | 'refuse';

interface Pair {
  client: net.Socket;
  upstream: net.Socket;
}

export class TcpProxy {
  private readonly pairs = new Set<Pair>();
  private mode: CutMode | undefined;
  /** Added latency per chunk, each direction. */
  delayMs = 0;

  private constructor(
    private readonly server: net.Server,
    readonly target: { host: string; port: number },
  ) {}

  /** Listens on a free loopback port and forwards to `target` (an http:// URL or host:port). */
  static async start(target: string): Promise<TcpProxy> {
    const url = new URL(target.includes('://') ? target : `tcp://${target}`);
    const destination = { host: url.hostname, port: Number(url.port) };
    const server = net.createServer();
    const proxy = new TcpProxy(server, destination);
    server.on('connection', (client) => proxy.accept(client));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    return proxy;
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  /** The proxy's address in the form of an etcd endpoint. */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get isCut(): boolean {
    return this.mode !== undefined;
  }

  cut(mode: CutMode = 'blackhole'): void {
    this.mode = mode;
    if (mode === 'refuse') for (const pair of this.pairs) this.drop(pair);
  }

  heal(): void {
    if (this.mode === 'blackhole') for (const pair of this.pairs) this.drop(pair);
    this.mode = undefined;
  }

  async close(): Promise<void> {
    for (const pair of this.pairs) this.drop(pair);
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: net.Socket): void {
    if (this.mode === 'refuse') {
      client.resetAndDestroy();
      return;
    }
    const upstream = net.connect(this.target.port, this.target.host);
    const pair = { client, upstream };
    this.pairs.add(pair);
    this.pipe(client, upstream);
    this.pipe(upstream, client);
    const end = () => this.drop(pair);
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  }

  private pipe(from: net.Socket, to: net.Socket): void {
    // Chunks leave in order even when `delayMs` is lowered while some are still waiting.
    let releaseAt = 0;
    from.on('data', (chunk: Buffer) => {
      if (this.mode !== undefined) return; // a cut swallows every byte
      const now = Date.now();
      releaseAt = Math.max(now + this.delayMs, releaseAt);
      if (releaseAt <= now) {
        if (to.writable) to.write(chunk);
      } else {
        setTimeout(() => to.writable && to.write(chunk), releaseAt - now);
      }
    });
  }

  private drop(pair: Pair): void {
    if (!this.pairs.delete(pair)) return;
    pair.client.resetAndDestroy();
    pair.upstream.resetAndDestroy();
  }
}
