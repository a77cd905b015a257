/**
 * The cluster's pod network: one podman network of this run (a /24 no other network or route
 * of this machine uses), pod IPs handed out from it, and the DNS names a cluster would give.
 * aardvark-dns answers for the aliases of the containers on the network; every container gets
 * the search path and ndots of a pod's resolv.conf, so the short names a chart writes
 * (`etcd-0.etcd`, `my-service`) resolve through the same search list as in a cluster.
 *
 * Traffic stays on this machine: the network's addresses belong to containers this run made.
 */
import { execFileSync } from 'node:child_process';
import { podman } from './podman.js';

export const CLUSTER_DOMAIN = 'cluster.local';
/** Pod IPs end at .191; podman's own range is .192/26. */
const LAST_POD_HOST = 191;

export class PodNetwork {
  private next = 2;
  private readonly inUse = new Set<string>();

  private constructor(
    readonly name: string,
    /** The first three octets, e.g. `10.231.7`. */
    private readonly prefix: string,
    readonly namespace: string,
  ) {}

  /** Creates the network; `name` must be unique to this run. */
  static async create(name: string, namespace: string): Promise<PodNetwork> {
    const taken = await takenSubnets();
    for (let third = 0; third < 256; third++) {
      const prefix = `10.231.${(third * 37 + Number(process.pid)) % 256}`;
      if (taken.has(prefix)) continue;
      // Pods get .2–.191, chosen here; podman hands out .192–.254 to the other containers
      // (Service proxies, clients), so the two never collide.
      await podman([
        'network',
        'create',
        '--subnet',
        `${prefix}.0/24`,
        '--ip-range',
        `${prefix}.192/26`,
        name,
      ]);
      return new PodNetwork(name, prefix, namespace);
    }
    throw new Error('no free /24 under 10.231.0.0/16 for the pod network');
  }

  get gateway(): string {
    return `${this.prefix}.1`;
  }

  /** A pod IP not held by a live pod; addresses are not reused while others are free. */
  allocate(): string {
    for (let i = 0; i < LAST_POD_HOST; i++) {
      const host = this.next;
      this.next = this.next >= LAST_POD_HOST ? 2 : this.next + 1;
      const ip = `${this.prefix}.${host}`;
      if (!this.inUse.has(ip)) {
        this.inUse.add(ip);
        return ip;
      }
    }
    throw new Error(`the pod network ${this.name} is full`);
  }

  release(ip: string): void {
    this.inUse.delete(ip);
  }

  /** A Service's name as the cluster's DNS serves it. */
  serviceName(service: string): string {
    return `${service}.${this.namespace}.svc.${CLUSTER_DOMAIN}`;
  }

  /** podman flags that give a container the resolv.conf of a pod in this namespace. */
  dnsFlags(): string[] {
    return [
      ...[
        `${this.namespace}.svc.${CLUSTER_DOMAIN}`,
        `svc.${CLUSTER_DOMAIN}`,
        CLUSTER_DOMAIN,
      ].flatMap((domain) => ['--dns-search', domain]),
      '--dns-option',
      'ndots:5',
    ];
  }

  async remove(): Promise<void> {
    await podman(['network', 'rm', '--force', this.name], { allowFailure: true });
  }
}

/** The /24 prefixes of 10.231.0.0/16 that podman networks or host routes already use. */
async function takenSubnets(): Promise<Set<string>> {
  const taken = new Set<string>();
  const networks = await podman([
    'network',
    'ls',
    '--format',
    '{{range .Subnets}}{{.Subnet}} {{end}}',
  ]);
  const routes = execFileSync('ip', ['-4', 'route', 'show'], { encoding: 'utf8' });
  for (const match of `${networks.stdout} ${routes}`.matchAll(/\b10\.231\.(\d+)\.\d+/g)) {
    taken.add(`10.231.${match[1]}`);
  }
  return taken;
}
