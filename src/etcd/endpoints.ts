/**
 * The etcd client's endpoints, changed while it runs: what etcd's Go client does with its
 * auto-sync (`Sync`, then `SetEndpoints`), for the etcd3 client, which takes its hosts once.
 *
 * etcd3 (pinned at 1.1.2) keeps one `Host` per endpoint in its connection pool and picks among
 * them per call; the authenticator logs in on the pool's list of URLs. Both are replaced here:
 * a new endpoint gets a `Host` built like its siblings (same TLS credentials and gRPC
 * options), every host gets a fresh fault policy for the new count (connectEtcd's breaker
 * depends on it), and a dropped one is closed: new calls no longer go there, and a call that
 * meets the closed host is retried on another (connectEtcd). Streams already open on it (a
 * watch, a keep-alive stream) stay until the server ends them or the connection's ping times
 * out; a removed etcd member shuts down, which ends them at once.
 *
 * `openChannels` opens every host's KV channel ahead of the first call there.
 *
 * This reaches into etcd3's internals, so it checks their shape first and refuses with an
 * error naming the cause if they are not what it expects (test/unit/endpoints.test.ts pins
 * them); `openChannels`, an optimisation, then does nothing.
 */
import type { IPolicy } from 'cockatiel';
import type { Etcd3 } from 'etcd3';

interface Host {
  /** The URL without its scheme: how etcd3 names a host. */
  readonly host: string;
  readonly channelCredentials: unknown;
  readonly channelOptions: unknown;
  faultHandling: IPolicy;
  close(): void;
  /** The host's gRPC client of service `name` (KV, Lease, Watch…), made on first use. */
  getServiceClient(name: string): {
    getChannel(): { getConnectivityState(tryToConnect: boolean): number };
  };
}

type HostClass = new (url: string, credentials: unknown, channelOptions: unknown) => Host;

interface Pool {
  hosts: Host[];
  options: { hosts: string | string[]; faultHandling?: { host?: (url: string) => IPolicy } };
}

export interface EndpointChange {
  added: string[];
  removed: string[];
}

/**
 * What identifies an endpoint: the URL without its scheme (as etcd3 names its hosts) nor a
 * trailing slash, in lower case. Applied alike to etcd3's hosts and to the URLs asked for.
 */
export function hostOf(url: string): string {
  return url
    .replace(/^https?:\/\//i, '')
    .replace(/\/+$/, '')
    .toLowerCase();
}

function poolOf(etcd: Etcd3): Pool {
  const pool = (etcd as unknown as { pool?: Partial<Pool> }).pool;
  const first = pool?.hosts?.[0];
  if (
    !pool ||
    !Array.isArray(pool.hosts) ||
    !first ||
    typeof first.host !== 'string' ||
    typeof first.close !== 'function' ||
    !('channelCredentials' in first) ||
    !('faultHandling' in first) ||
    typeof pool.options !== 'object'
  ) {
    throw new Error(
      "the etcd3 client's connection pool is not the one this version expects (etcd3 1.1.2); its endpoints cannot change while it runs",
    );
  }
  return pool as Pool;
}

/**
 * Opens the KV channel of every host now, without a call. etcd3 picks a host per call and
 * makes a host's gRPC client on its first call there: a member's first transaction on a host
 * otherwise pays for the client, the name resolution and the connection (~2–4 ms of a cold
 * process here) — the handoff of a leaving leader among them, on the handover's critical
 * path. Never blocks; does nothing if etcd3's internals are not the expected ones.
 */
export function openChannels(etcd: Etcd3): void {
  let pool: Pool;
  try {
    pool = poolOf(etcd);
  } catch {
    return;
  }
  for (const host of pool.hosts) {
    if (typeof host.getServiceClient !== 'function') return;
    try {
      host.getServiceClient('KV').getChannel().getConnectivityState(true);
    } catch {
      // A closed host: calls skip it too.
    }
  }
}

/**
 * Makes `urls` (full URLs, scheme included, at least one) the client's endpoints. Does not
 * block; returns what was added (URLs as given) and removed (as etcd3 named them).
 */
export function setEndpoints(etcd: Etcd3, urls: readonly string[]): EndpointChange {
  if (urls.length === 0) throw new Error('an etcd client needs at least one endpoint');
  const pool = poolOf(etcd);
  const wanted = new Map(urls.map((url) => [hostOf(url), url]));
  const kept = pool.hosts.filter((host) => wanted.has(hostOf(host.host)));
  const dropped = pool.hosts.filter((host) => !wanted.has(hostOf(host.host)));
  const sibling = pool.hosts[0]!;
  const Host = sibling.constructor as HostClass;
  const added = [...wanted].filter(([key]) => !kept.some((host) => hostOf(host.host) === key));
  const fresh = added.map(
    ([, url]) => new Host(url, sibling.channelCredentials, sibling.channelOptions),
  );
  pool.options.hosts = [...wanted.values()];
  pool.hosts = [...kept, ...fresh];
  const policyFor = pool.options.faultHandling?.host;
  if (policyFor) for (const host of pool.hosts) host.faultHandling = policyFor(host.host);
  for (const host of dropped) host.close();
  return { added: added.map(([, url]) => url), removed: dropped.map((host) => host.host) };
}
