/**
 * The etcd client's endpoints, changed while it runs: what etcd's Go client does with its
 * auto-sync (`Sync`, then `SetEndpoints`), for the etcd3 client, which takes its hosts once.
 *
 * etcd3 (pinned at 1.1.2) keeps one `Host` per endpoint in its connection pool and picks among
 * them per call; the authenticator logs in on the pool's list of URLs. Both are replaced here:
 * a new endpoint gets a `Host` built like its siblings (same TLS credentials, gRPC options and
 * fault policy), a dropped one is closed, which ends its calls and streams so that they retry
 * on the others (watches and keep-alives do so within milliseconds). Calls already running
 * keep the host they started on.
 *
 * This reaches into etcd3's internals, so it checks their shape first and refuses with an
 * error naming the cause if they are not what it expects (test/unit/endpoints.test.ts pins
 * them).
 */
import type { Etcd3 } from 'etcd3';
import type { IPolicy } from 'cockatiel';

interface Host {
  /** host:port, without the scheme. */
  readonly host: string;
  readonly channelCredentials: unknown;
  readonly channelOptions: unknown;
  close(): void;
}

type HostClass = new (
  url: string,
  credentials: unknown,
  channelOptions: unknown,
  faultHandling?: IPolicy,
) => Host;

interface Pool {
  hosts: Host[];
  options: { hosts: string | string[]; faultHandling?: { host?: (url: string) => IPolicy } };
}

export interface EndpointChange {
  added: string[];
  removed: string[];
}

/** host:port of a URL, lower case: how etcd3 names a host. */
export function hostOf(url: string): string {
  try {
    return new URL(url).host.toLowerCase();
  } catch {
    return url
      .replace(/^[a-z]+:\/\//i, '')
      .replace(/\/+$/, '')
      .toLowerCase();
  }
}

function poolOf(etcd: Etcd3): Pool {
  const pool = (etcd as unknown as { pool?: Partial<Pool> }).pool;
  const hosts = pool?.hosts;
  const first = hosts?.[0];
  if (
    !pool ||
    !Array.isArray(hosts) ||
    !first ||
    typeof first.host !== 'string' ||
    typeof first.close !== 'function' ||
    !('channelCredentials' in first) ||
    typeof pool.options !== 'object'
  ) {
    throw new Error(
      "the etcd3 client's connection pool is not the one this version expects (etcd3 1.1.2); its endpoints cannot change while it runs",
    );
  }
  return pool as Pool;
}

/** The client's endpoints now, as host:port. */
export function currentEndpoints(etcd: Etcd3): string[] {
  return poolOf(etcd).hosts.map((host) => host.host);
}

/**
 * Makes `urls` (full URLs, scheme included, at least one) the client's endpoints. Does not
 * block; returns what was added and removed (URLs as given, host:port for removed ones).
 */
export function setEndpoints(etcd: Etcd3, urls: readonly string[]): EndpointChange {
  if (urls.length === 0) throw new Error('an etcd client needs at least one endpoint');
  const pool = poolOf(etcd);
  const wanted = new Map(urls.map((url) => [hostOf(url), url]));
  const kept = pool.hosts.filter((host) => wanted.has(host.host));
  const dropped = pool.hosts.filter((host) => !wanted.has(host.host));
  const sibling = pool.hosts[0]!;
  const Host = sibling.constructor as HostClass;
  const added = [...wanted].filter(([host]) => !kept.some((k) => k.host === host));
  const fresh = added.map(
    ([, url]) =>
      new Host(
        url,
        sibling.channelCredentials,
        sibling.channelOptions,
        pool.options.faultHandling?.host?.(url),
      ),
  );
  pool.hosts = [...kept, ...fresh];
  pool.options.hosts = [...urls];
  for (const host of dropped) host.close();
  return { added: added.map(([, url]) => url), removed: dropped.map((host) => host.host) };
}
