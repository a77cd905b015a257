/**
 * A one-node cluster for the rehearsal: the pod network, the node (the container kubelet's
 * settings) and every pod that runs on it, with a 'change' event whenever a pod is created,
 * turns ready or not ready, starts terminating or is gone. Controllers (workloads.ts) create
 * and delete pods; Services (serviceProxy.ts) and scrape targets follow the pods.
 *
 * Everything this run creates carries its run id: close() removes exactly that.
 */
import { EventEmitter } from 'node:events';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { IProbe } from 'kubernetes-models/v1/Probe';
import type { Manifest } from '../../chart/support/tools.js';
import { ContainerPod, type Node, type PodDefinition } from './containerPod.js';
import { podman } from './podman.js';
import { PodNetwork } from './podNetwork.js';

export interface ClusterOptions {
  namespace: string;
  objects: Manifest[];
  images: Record<string, string>;
  adjustProbe?: (image: string, probe: IProbe) => IProbe;
  log: (line: string) => void;
}

export class Cluster extends EventEmitter {
  readonly pods = new Set<ContainerPod>();

  private constructor(readonly node: Node) {
    super();
    this.setMaxListeners(100);
  }

  static async create(options: ClusterOptions): Promise<Cluster> {
    const runId = `spl-rh-${process.pid.toString(36)}${Date.now().toString(36).slice(-4)}`;
    const stateDir = await mkdtemp(path.join(os.tmpdir(), `${runId}-`));
    await mkdir(path.join(stateDir, 'logs'));
    const network = await PodNetwork.create(runId, options.namespace);
    return new Cluster({
      network,
      runId,
      label: `io.service-pool-leader.rehearsal=${runId}`,
      objects: options.objects,
      images: options.images,
      stateDir,
      ...(options.adjustProbe ? { adjustProbe: options.adjustProbe } : {}),
      log: options.log,
    });
  }

  get logDir(): string {
    return path.join(this.node.stateDir, 'logs');
  }

  /** Creates a pod and starts its container; 'change' fires as it progresses. */
  runPod(definition: PodDefinition): ContainerPod {
    const pod = new ContainerPod(this.node, definition);
    this.pods.add(pod);
    pod.on('change', () => this.emit('change'));
    void pod.finished().then(() => {
      this.pods.delete(pod);
      this.emit('change');
    });
    this.emit('change');
    return pod;
  }

  podsMatching(selector: Record<string, string>): ContainerPod[] {
    return [...this.pods].filter((pod) =>
      Object.entries(selector).every(([key, value]) => pod.labels[key] === value),
    );
  }

  pod(name: string): ContainerPod {
    const found = [...this.pods].find((pod) => pod.name === name && !pod.isTerminating);
    if (!found) throw new Error(`no live pod ${name}`);
    return found;
  }

  /**
   * Resolves once `condition` holds, checked at every change and every 200 ms; rejects after
   * `timeoutMs` with `what`.
   */
  async until(what: string, condition: () => boolean | Promise<boolean>, timeoutMs: number) {
    const deadline = Date.now() + timeoutMs;
    while (!(await condition())) {
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.off('change', done);
          resolve();
        };
        const timer = setTimeout(done, 200);
        this.on('change', done);
      });
    }
  }

  /** Removes every container and the network of this run, and its state directory. */
  async close(): Promise<void> {
    for (const pod of this.pods) pod.abandon();
    const ids = await podman(['ps', '--all', '--quiet', '--filter', `label=${this.node.label}`], {
      allowFailure: true,
    });
    const list = ids.stdout.split('\n').filter(Boolean);
    if (list.length > 0) {
      await podman(['rm', '--force', '--time', '0', ...list], {
        allowFailure: true,
        timeoutMs: 120_000,
      });
    }
    await Promise.all([...this.pods].map((pod) => pod.finished().catch(() => undefined)));
    await this.node.network.remove();
    await rm(this.node.stateDir, { recursive: true, force: true });
  }
}
