/**
 * A ClusterIP Service on the pod network: a container with the Service's DNS names that
 * accepts on the Service's ports and sends each connection to a ready, non-terminating pod
 * the selector matches (incontainer/serviceProxy.mjs), as kube-proxy does. The endpoints are
 * rewritten on every pod change and picked up within ~50 ms (kube-proxy's own propagation is
 * usually slower, which the chart's preStop sleep covers).
 *
 * What it is not: kube-proxy's iptables rules (a connection without endpoints is reset here
 * rather than rejected), session affinity, or NodePorts.
 */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { IService } from 'kubernetes-models/v1/Service';
import type { Cluster } from './cluster.js';
import { containerFlags } from './containerPod.js';
import { podman, podmanStream } from './podman.js';

const SCRIPT_DIR = fileURLToPath(new URL('./incontainer', import.meta.url));

export class ServiceProxy {
  private constructor(
    private readonly cluster: Cluster,
    readonly service: IService,
    private readonly containerName: string,
    private readonly endpointsFile: string,
    readonly exited: Promise<unknown>,
  ) {}

  /** Starts the Service's proxy from `nodeImage` (any image with `node`). */
  static async start(
    cluster: Cluster,
    service: IService,
    nodeImage: string,
  ): Promise<ServiceProxy> {
    const name = service.metadata!.name!;
    const dir = path.join(cluster.node.stateDir, 'services', name);
    const endpointsFile = path.join(dir, 'endpoints.json');
    await mkdir(dir, { recursive: true });
    await writeFile(endpointsFile, '{}');
    const containerName = `${cluster.node.runId}-svc-${name}`;
    const ports = service.spec!.ports!.map((p) => p.port).join(',');
    const { exited } = podmanStream(
      [
        'run',
        ...containerFlags(cluster.node, containerName),
        '--network-alias',
        cluster.node.network.serviceName(name),
        '--user',
        '0:0',
        '--env',
        `SERVICE_PORTS=${ports}`,
        '--volume',
        `${SCRIPT_DIR}:/proxy:ro`,
        '--volume',
        `${dir}:/endpoints:ro`,
        '--entrypoint',
        '["node"]',
        nodeImage,
        '/proxy/serviceProxy.mjs',
        '/endpoints/endpoints.json',
      ],
      (line) => cluster.node.log(`service ${name}: ${line}`),
    );
    const proxy = new ServiceProxy(cluster, service, containerName, endpointsFile, exited);
    cluster.on('change', () => void proxy.update());
    await proxy.update();
    return proxy;
  }

  /** The Service's ready endpoints per Service port: [pod IP, target port]. */
  endpoints(): Record<string, [string, number][]> {
    const selector = this.service.spec!.selector ?? {};
    const pods = this.cluster
      .podsMatching(selector)
      .filter((pod) => pod.serving)
      .sort((a, b) => a.name.localeCompare(b.name));
    const table: Record<string, [string, number][]> = {};
    for (const port of this.service.spec!.ports!) {
      table[port.port] = pods.map((pod) => [pod.ip, pod.port(port.targetPort ?? port.port)]);
    }
    return table;
  }

  private writing = Promise.resolve();

  private update(): Promise<void> {
    const text = JSON.stringify(this.endpoints());
    this.writing = this.writing.then(async () => {
      const temporary = `${this.endpointsFile}.next`;
      await writeFile(temporary, text);
      await rename(temporary, this.endpointsFile);
    });
    return this.writing;
  }

  async stop(): Promise<void> {
    await podman(['rm', '--force', '--time', '2', this.containerName], { allowFailure: true });
    await this.exited;
  }
}
